"""The README's import directions (section "The pipeline"): export uses models; models and plugin
may use nodes; nodes uses none of them; the runtime side never imports torch. Read from the source
(every ``import`` statement at any depth of a module), not from what a run happens to import."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: folder -> (package it is imported as, modules it must never import)
RULES = {
    "models": ("monalisa.models", ("monalisa.export", "monalisa.plugin")),
    "export": ("monalisa.export", ("monalisa.plugin",)),
    "nodes": ("monalisa.nodes", ("monalisa.models", "monalisa.export", "monalisa.plugin", "torch")),
    "plugin": ("monalisa.plugin", ("monalisa.models", "monalisa.export", "torch")),
}
#: (file, module) -> why it is allowed all the same
EXCEPTIONS = {("nodes/detect.py", "torch"): "the optional face-alignment backend (--backend face-alignment) "
              "runs FAN, a torch model; imported only when that backend is chosen"}


def imported(source: str, module: str) -> set:
    """Every module name the imports in ``source`` (the module ``module``, dotted) name: relative
    imports resolved, ``from monalisa import export`` read as ``monalisa.export`` too."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*module.split(".")[:-node.level], *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def breaks(names, forbidden) -> list:
    return sorted(n for n in names for f in forbidden if n == f or n.startswith(f + "."))


@pytest.mark.parametrize("folder", sorted(RULES))
def test_imports_go_one_way(folder):
    package, forbidden = RULES[folder]
    files = sorted((REPO / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    wrong = {}
    for path in files:
        module = ".".join([package, *path.relative_to(REPO / folder).with_suffix("").parts])
        found = [n for n in breaks(imported(path.read_text(encoding="utf-8"), module), forbidden)
                 if (str(path.relative_to(REPO)), n) not in EXCEPTIONS]
        if found:
            wrong[str(path.relative_to(REPO))] = found
    assert not wrong


@pytest.mark.parametrize("source", [
    "import monalisa.export.pipeline",
    "from monalisa.export.pipeline import export_checkpoint",
    "from monalisa import export",
    "def f():\n    from monalisa.export import pipeline",
    "from ..export import pipeline",
    "from .. import export",
])
def test_an_import_of_export_from_models_is_caught(source):
    assert breaks(imported(source, "monalisa.models.finetune"), RULES["models"][1])


def test_allowed_imports_pass():
    source = "from monalisa.nodes.warp import dense_warp\nfrom . import losses\nimport numpy\nfrom ..errors import InputError"
    assert not breaks(imported(source, "monalisa.models.finetune"), RULES["models"][1])
