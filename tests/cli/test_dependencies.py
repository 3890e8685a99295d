"""Dependencies declared where they are used (pyproject.toml), and nothing declared that no code uses.

Every third-party import of the runtime (monalisa/, nodes/, plugin/) comes from the runtime
dependencies or the extra of the command that needs it; every one of the training side (models/,
export/) from those or `train`; the tests' from any of them or `dev`. The few packages not declared
are listed below with the reason.
"""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: imported, deliberately not declared
UNDECLARED = {
    "bpy": "Blender's own module (the add-on runs inside Blender)",
    "nuke": "Nuke's own module",
    "monalisa_nuke": "the Nuke plug-in's own module, on Nuke's plug-in path",
    "face_alignment": "optional detector backend; installed with --no-deps (README: it declares opencv-python)",
    "torch": "in the runtime only behind the optional face-alignment backend (nodes/detect.py)",
    "onnx": "the runtime's optional ONNX validator in publish (skipped without it); the export side declares it",
    "plugin_shot": "a test helper module of tests/plugin",
}
#: import name -> distribution, where the installed metadata does not say (or says several)
DISTRIBUTION = {"dlib": "dlib-bin", "openjd": "openjd-cli", "yaml": "pyyaml", "cv2": "opencv-python-headless",
                "skimage": "scikit-image", "PyOpenColorIO": "opencolorio", "OpenImageIO": "openimageio"}
#: declared, used without an import statement
USED_OTHERWISE = {"face-recognition-models": "its model files are found with importlib.util.find_spec (nodes/detect.py)",
                  "openjd-cli": "the tests run the `openjd` command"}
RUNTIME_EXTRAS = ("cpu", "gpu", "publish")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = lambda reqs: {_norm(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in reqs}  # noqa: E731
    return names(meta["dependencies"]), {k: names(v) for k, v in meta["optional-dependencies"].items()}


def _imports(folders) -> dict:
    """top-level third-party module -> files that import it."""
    out = {}
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for top in {m.split(".")[0] for m in mods} - set(sys.stdlib_module_names) - {"monalisa"}:
                    out.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return out


def _distribution(module: str) -> str:
    if module in DISTRIBUTION:
        return DISTRIBUTION[module]
    found = importlib.metadata.packages_distributions().get(module)
    assert found, f"{module}: imported but not installed here, so its distribution is unknown; add it to DISTRIBUTION"
    return _norm(found[0])


@pytest.mark.parametrize("folders, extras", [
    (("monalisa", "nodes", "plugin"), RUNTIME_EXTRAS),
    (("models", "export"), RUNTIME_EXTRAS + ("train",)),
    (("tests", "benchmarks", "assets"), RUNTIME_EXTRAS + ("train", "dev")),
])
def test_every_import_is_declared_where_it_is_used(folders, extras):
    runtime, optional = _declared()
    allowed = runtime.union(*(optional[e] for e in extras))
    missing = {m: sorted(files)[:3] for m, files in _imports(folders).items()
               if m not in UNDECLARED and _norm(_distribution(m)) not in allowed}
    assert not missing, f"imported but not declared for {folders}: {missing}"


def test_nothing_declared_goes_unused():
    runtime, optional = _declared()
    known = importlib.metadata.packages_distributions()
    used = {_norm(_distribution(m)) for m in _imports(("monalisa", "nodes", "plugin", "models", "export", "tests",
                                                       "benchmarks", "assets")) if m in DISTRIBUTION or m in known}
    declared = runtime.union(*optional.values())
    unused = declared - used - set(USED_OTHERWISE) - {"onnxruntime-gpu"}  # the gpu build of onnxruntime
    assert not unused, f"declared but never imported: {sorted(unused)}"


def test_runtime_and_train_declare_nothing_only_a_test_uses():
    runtime, optional = _declared()
    only_tests = set(_imports(("tests",))) - set(_imports(("monalisa", "nodes", "plugin", "models", "export")))
    leaked = {m for m in only_tests if m not in UNDECLARED
              and _norm(_distribution(m)) in runtime | optional["train"]}
    assert not leaked, f"declared for the runtime or train, imported only by tests: {sorted(leaked)}"
