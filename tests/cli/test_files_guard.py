"""monalisa.files: the output guard, folders that keep what monalisa did not write, stale temporaries."""

import os
import subprocess
import sys

import pytest

from monalisa.errors import InputError
from monalisa.files import atomic_dir, atomic_path, check_out_dir, check_out_file, remove_stale_temps

OURS = ("identity.json", "identity.safetensors", "contact_sheet.png")


def _user_folder(tmp_path):
    user = tmp_path / "shot"
    (user / "renders").mkdir(parents=True)
    (user / "comp.nk").write_text("comp")
    return user


def test_guard_refuses_a_folder_monalisa_did_not_write(tmp_path):
    user = _user_folder(tmp_path)
    with pytest.raises(InputError, match=r"comp.nk, renders.*--overwrite"):
        check_out_dir(user, OURS)
    assert check_out_dir(user, OURS, overwrite=True) == user
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", OURS)
    check_out_dir(tmp_path / "new" / "deeper", OURS)


def test_guard_refuses_files_for_folders_and_the_reverse(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_out_dir(f, OURS)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_out_dir(f / "pack", OURS)
    with pytest.raises(InputError, match="is a folder"):
        check_out_file(tmp_path)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_out_file(f / "t.json")
    with pytest.raises(InputError, match="not written by monalisa"):
        check_out_file(f, ours=lambda p: False)
    check_out_file(f, ours=lambda p: False, overwrite=True)


def test_guard_refuses_an_unwritable_place():
    with pytest.raises(InputError, match="cannot write|is a file"):
        check_out_file("/proc/monalisa-test/track.json")
    with pytest.raises(InputError, match="cannot write|is a file"):
        check_out_dir("/proc/monalisa-test")


def test_atomic_dir_keeps_what_monalisa_did_not_write(tmp_path):
    user = _user_folder(tmp_path)
    (user / "identity.json").write_text("old")
    (user / "contact_sheet.png").write_text("stale")
    with atomic_dir(user, ours=OURS) as tmp:
        (tmp / "identity.json").write_text("new")
        (tmp / "identity.safetensors").write_text("w")
    assert (user / "comp.nk").read_text() == "comp" and (user / "renders").is_dir()
    assert (user / "identity.json").read_text() == "new" and (user / "identity.safetensors").is_file()
    assert not (user / "contact_sheet.png").exists()  # a stale file of ours goes
    assert [p.name for p in tmp_path.iterdir()] == ["shot"]


def test_atomic_dir_swaps_a_folder_of_its_own_and_refuses_a_file(tmp_path):
    out = tmp_path / "pack"
    with atomic_dir(out, ours=OURS) as tmp:
        (tmp / "identity.json").write_text("1")
        (tmp / "contact_sheet.png").write_text("1")
    with atomic_dir(out, ours=OURS) as tmp:
        (tmp / "identity.json").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["identity.json"]
    f = tmp_path / "file"
    f.write_text("mine")
    with pytest.raises(InputError):
        with atomic_dir(f) as tmp:
            pass
    assert f.read_text() == "mine"


def test_stale_temps_of_a_killed_process_are_removed_and_live_ones_kept(tmp_path):
    code = ("import os, sys\nfrom monalisa.files import atomic_dir, atomic_path\n"
            f"with atomic_dir({str(tmp_path / 'out')!r}) as d, atomic_path({str(tmp_path / 'f.json')!r}) as p:\n"
            "    (d / 'x').write_text('x'); p.write_text('{')\n    os._exit(9)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 9
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and all(n.startswith((".out.", ".f.json.")) and n.endswith(".tmp") for n in left)
    with atomic_path(tmp_path / "f.json") as live:
        live.write_text("{}")
        assert remove_stale_temps(tmp_path, "out") and remove_stale_temps(tmp_path) and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]
    foreign = tmp_path / ".f.json.~1@another-host~abc.tmp"
    foreign.write_text("")
    assert remove_stale_temps(tmp_path) == [] and foreign.exists()
    assert os.getpid()  # this process's own temporaries are never stale
