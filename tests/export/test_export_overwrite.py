"""`monalisa export --out DIR` over what is already there: monalisa replaces only its own files (those
the folder's ledger, monalisa.files, lists as written by monalisa and unchanged), for every model
kind; a user's files stay byte for byte, with or without --overwrite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import monalisa
from monalisa.cli import main
from monalisa.files import LEDGER, sha256_file

pytest.importorskip("onnx")

WEIGHTS = Path(monalisa.__file__).parent / "weights"


def _bundled(name):
    if not (WEIGHTS / name / "checkpoint.json").is_file():
        pytest.skip(f"no bundled {name} checkpoint in this checkout")
    return WEIGHTS / name


def _hashes(folder):
    return {p.name: sha256_file(p) for p in folder.iterdir()}


def _names(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != LEDGER)


def _one_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for w in words:
        assert w in err[0], err[0]


def test_bundled_default_over_an_earlier_export_with_overwrite(tmp_path, capsys):
    """The README's default model (warp) exported over its own bundled export plus a user's files:
    refused without --overwrite (nothing changes); with it, monalisa's files are replaced, the earlier
    export's files this one does not make are removed, the user's stay byte for byte."""
    warp = _bundled("warp")
    out = tmp_path / "onnx"
    shutil.copytree(warp / "onnx", out)  # an earlier export, with fp16 files (and its ledger)
    assert (out / LEDGER).is_file()
    (out / "my_model.onnx").write_bytes((warp / "onnx" / "warp_generator.onnx").read_bytes()[:5000])
    (out / "notes.txt").write_text("take 3 is the good one\n")
    user = {n: sha256_file(out / n) for n in ("my_model.onnx", "notes.txt")}
    before = _hashes(out)

    assert main(["export", str(warp), "--out", str(out)]) == 2
    _one_line(capsys, "my_model.onnx", "notes.txt", "--overwrite")
    assert _hashes(out) == before

    assert main(["export", str(warp), "--out", str(out), "--overwrite"]) == 0
    assert {n: sha256_file(out / n) for n in user} == user
    assert _names(out) == ["embedder.onnx", "export.json", "my_model.onnx", "notes.txt",
                           "warp_generator.onnx"]  # the earlier fp16 files were ours
    side = json.loads((out / "export.json").read_text())
    assert side["format"] == "monalisa-export" and side["version"] == 2 and side["config"]["generator"] == "warp"
    assert side["crop"] == json.loads((warp / "checkpoint.json").read_text())["crop"]
    assert {f["name"]: f["sha256"] for f in side["files"]} == {
        n: sha256_file(out / n) for n in ("embedder.onnx", "warp_generator.onnx")}
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no temporaries left beside it


@pytest.mark.parametrize("name", ["warp_small", "reference"])
def test_a_users_onnx_alone_in_the_folder_is_never_deleted(tmp_path, capsys, name):
    """Issue 17: `export CKPT --out DIR` with the user's my_model.onnx the only file in DIR."""
    ckpt = _bundled(name)
    out = tmp_path / "models"
    out.mkdir()
    mine = out / "my_model.onnx"
    shutil.copyfile(WEIGHTS / "warp_small" / "onnx" / "embedder.onnx", mine)  # a real ONNX file, but the user's
    want = mine.read_bytes()

    assert main(["export", str(ckpt), "--out", str(out)]) == 2
    _one_line(capsys, "my_model.onnx", "--overwrite")
    assert _names(out) == ["my_model.onnx"] and mine.read_bytes() == want

    assert main(["export", str(ckpt), "--out", str(out), "--overwrite"]) == 0
    assert mine.read_bytes() == want
    side = json.loads((out / "export.json").read_text())
    assert "my_model.onnx" not in {f["name"] for f in side["files"]}

    # a re-export over that folder: the files of the first are ours now, the user's still is not
    capsys.readouterr()
    assert main(["export", str(ckpt), "--out", str(out), "--overwrite", "--no-slim"]) == 0
    assert mine.read_bytes() == want


def test_a_users_file_under_an_export_name_is_refused_even_with_overwrite(tmp_path, capsys):
    """A file named like one the export writes (embedder.onnx) that monalisa did not write (not in
    the folder's ledger, or changed since) would be replaced: refused, --overwrite or not."""
    ckpt = _bundled("warp_small")
    out = tmp_path / "models"
    out.mkdir()
    (out / "embedder.onnx").write_bytes(b"the user's own embedder")
    for extra in ([], ["--overwrite"]):
        assert main(["export", str(ckpt), "--out", str(out), *extra]) == 2
        _one_line(capsys, "embedder.onnx", "not written by monalisa")
        assert _names(out) == ["embedder.onnx"]
        assert (out / "embedder.onnx").read_bytes() == b"the user's own embedder"

    # an export's own file changed by the user afterwards is theirs now
    shutil.rmtree(out)
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    (out / "warp_generator.onnx").write_bytes(b"edited")
    capsys.readouterr()
    assert main(["export", str(ckpt), "--out", str(out), "--overwrite"]) == 2
    _one_line(capsys, "warp_generator.onnx")
    assert (out / "warp_generator.onnx").read_bytes() == b"edited"
