"""Bad input to `monalisa export`: one line on stderr, exit 2, nothing left in (or beside) DIR."""

from __future__ import annotations

import os
import shutil

import pytest

from monalisa.cli import main


def run_cli(capsys, *argv):
    code = main(["export", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(code, err, *words):
    assert code == 2, err
    assert err.startswith("monalisa export: error: ") and "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err


def assert_nothing_left(parent):
    assert [p.name for p in parent.iterdir() if p.name != "keep"] == []


def test_missing_checkpoint(tmp_path, capsys):
    code, err = run_cli(capsys, tmp_path / "nope", "--out", tmp_path / "out")
    assert_one_line_error(code, err, str(tmp_path / "nope"), "missing")
    assert_nothing_left(tmp_path)


def test_corrupt_checkpoint(tmp_path, capsys, reference):
    bad = tmp_path / "keep"
    bad.mkdir()
    shutil.copy(reference / "checkpoint.json", bad / "checkpoint.json")
    (bad / "model.safetensors").write_bytes(b"\x00" * 64 + b"not safetensors")
    code, err = run_cli(capsys, bad, "--out", tmp_path / "out")
    assert_one_line_error(code, err, "model.safetensors", "corrupt")
    assert_nothing_left(tmp_path)


def test_identity_pack_from_another_base_checkpoint(tmp_path, capsys, reference, reference_ckpt, pack_maker):
    keep = tmp_path / "keep"
    keep.mkdir()
    other = pack_maker(keep / "other", reference_ckpt, base_sha="ab" * 32)
    code, err = run_cli(capsys, reference, "--identity", other, "--out", tmp_path / "out")
    assert_one_line_error(code, err, str(other), "abababababab", "base checkpoint")
    assert_nothing_left(tmp_path)


def test_missing_identity_pack(tmp_path, capsys, reference):
    code, err = run_cli(capsys, reference, "--identity", tmp_path / "nopack", "--out", tmp_path / "out")
    assert_one_line_error(code, err, "identity.json", "missing")
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("opset", ["16", "11", "99", "x"])
def test_unsupported_opset(tmp_path, capsys, reference, opset):
    code, err = run_cli(capsys, reference, "--out", tmp_path / "out", "--opset", opset)
    # refused at parse time (a whole number, 17 to 30) or by the exporter (17 to what it writes)
    assert_one_line_error(code, err, "--opset", opset, "17 to")
    assert_nothing_left(tmp_path)


def test_unwritable_output_dir(tmp_path, capsys, reference):
    code, err = run_cli(capsys, reference, "--out", "/sys/monalisa-export-test")  # read-only even for root
    assert_one_line_error(code, err, "/sys/monalisa-export-test", "writable")
    assert not os.path.exists("/sys/monalisa-export-test")
    if os.geteuid() != 0:  # permission bits bind only non-root users
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, err = run_cli(capsys, reference, "--out", locked / "out")
        assert_one_line_error(code, err, "writable")
        assert list(locked.iterdir()) == []


def test_output_is_a_file_or_holds_other_files(tmp_path, capsys, reference):
    f = tmp_path / "keep"
    f.write_text("x")
    code, err = run_cli(capsys, reference, "--out", f)
    assert_one_line_error(code, err, "not a folder")
    assert f.read_text() == "x"
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, reference, "--out", home)
    assert_one_line_error(code, err, "notes.txt", "new or empty")
    assert [p.name for p in home.iterdir()] == ["notes.txt"]


def test_missing_or_bad_calibration(tmp_path, capsys, reference):
    code, err = run_cli(capsys, reference, "--out", tmp_path / "out", "--calibration", tmp_path / "none.npz")
    assert_one_line_error(code, err, "none.npz", "--calibration")
    bad = tmp_path / "keep"
    bad.write_bytes(b"garbage")
    code, err = run_cli(capsys, reference, "--out", tmp_path / "out", "--calibration", bad)
    assert_one_line_error(code, err, "keep", "calibration")
    assert not (tmp_path / "out").exists()


def test_without_torch_says_what_to_install(tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from monalisa.cli import main\n"
            f"sys.exit(main(['export', 'ckpt', '--out', {str(tmp_path / 'out')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "\n" not in err and "monalisa[train,cpu]" in err
    assert not (tmp_path / "out").exists()


def test_calibration_set_ships_in_the_package():
    """The default calibration set lives inside monalisa.export and pyproject ships it, so an
    installed wheel exports without --calibration."""
    import tomllib
    from pathlib import Path

    import monalisa.export
    from monalisa.export.verify import default_calibration_path

    path = default_calibration_path()
    assert path.is_file() and path.parent == Path(monalisa.export.__file__).resolve().parent
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert path.name in data["monalisa.export"]
