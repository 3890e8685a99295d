"""Build the Blender extension: ``python plugin/blender/package.py OUT.zip`` (Install from Disk),
or ``--folder DIR`` for an unpacked copy (an extensions or add-ons folder). Either carries the
host-agnostic ``plugin/core.py`` and the standard-library modules it runs (``nodes/frames.py``, ``nodes/trackschema.py``)
beside the operators, so the installed extension needs nothing from this checkout. Standard library only; runs with any Python 3.8+."""
import argparse
import shutil
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = {"blender_manifest.toml": HERE / "blender_manifest.toml", "__init__.py": HERE / "__init__.py",
         "operators.py": HERE / "operators.py", "core.py": HERE.parent / "core.py",
         "frames.py": HERE.parents[1] / "nodes" / "frames.py",  # core.py's frame grammar
         "trackschema.py": HERE.parents[1] / "nodes" / "trackschema.py"}  # and its track reader


def write_zip(path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, src in FILES.items():
            z.write(src, name)
    tmp.replace(path)
    return path


def write_folder(path) -> Path:
    path = Path(path)
    if path.exists() and not (path / "blender_manifest.toml").is_file():
        raise SystemExit(f"package.py: {path} exists and is not a monalisa extension folder; choose another")
    path.mkdir(parents=True, exist_ok=True)
    for name, src in FILES.items():
        shutil.copyfile(src, path / name)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", help="the zip to write, or the folder with --folder")
    p.add_argument("--folder", action="store_true", help="write an unpacked extension folder instead of a zip")
    args = p.parse_args(argv)
    print((write_folder if args.folder else write_zip)(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
