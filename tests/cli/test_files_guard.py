"""monalisa.files: the ledger of what monalisa wrote, the output guards, folders that keep what
monalisa did not write, stale temporaries."""

import os
import socket
import subprocess
import sys

import pytest

from monalisa.errors import InputError
from monalisa.files import (LEDGER, atomic_dir, atomic_path, check_out_dir, check_out_file, check_writes, is_ours,
                            remove_stale_temps, write_bytes, write_json)

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


def test_the_ledger_knows_what_monalisa_wrote(tmp_path):
    write_bytes(tmp_path / "sheet.png", b"png")
    write_json(tmp_path / "a" / "manifest.json", {"x": 1})
    with atomic_path(tmp_path / "movie.mp4") as tmp:
        tmp.write_bytes(b"mp4")
    (tmp_path / "results.csv").write_text("a user's table")
    assert all(is_ours(tmp_path / n) for n in ("sheet.png", "a/manifest.json", "movie.mp4"))
    assert not is_ours(tmp_path / "results.csv") and not is_ours(tmp_path / "missing.png")
    (tmp_path / "sheet.png").write_bytes(b"PNG")  # a user's file put there since, of the same size
    assert not is_ours(tmp_path / "sheet.png")
    copy = tmp_path / "copy"  # a copied folder (new mtimes) keeps its files monalisa's: sizes and hashes match
    copy.mkdir()
    for name in ("movie.mp4", LEDGER):
        (copy / name).write_bytes((tmp_path / name).read_bytes())
    assert is_ours(copy / "movie.mp4")
    (tmp_path / LEDGER).write_text("[not a ledger")  # a broken ledger: nothing is ours, nothing is lost
    assert not is_ours(tmp_path / "movie.mp4")


def test_check_writes_never_replaces_a_users_file(tmp_path):
    write_bytes(tmp_path / "mona.contact_sheet.png", b"ours")
    user = tmp_path / "mona.preview.mp4"
    user.write_bytes(b"a user's movie")
    assert check_writes([tmp_path / "mona.contact_sheet.png", tmp_path / "new.png"]) == \
        [tmp_path / "mona.contact_sheet.png", tmp_path / "new.png"]
    with pytest.raises(InputError, match=r"mona.preview.mp4: exists and was not written by monalisa.*--preview"):
        check_writes([tmp_path / "mona.contact_sheet.png", user], flag="--preview")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_writes([tmp_path / "dir.png"])
    assert user.read_bytes() == b"a user's movie"


def test_a_users_file_of_a_name_monalisa_writes_is_refused_even_with_overwrite(tmp_path):
    user = _user_folder(tmp_path)
    (user / "contact_sheet.png").write_bytes(b"a user's sheet")
    for overwrite in (False, True):
        with pytest.raises(InputError, match=r"contact_sheet.png: exists and was not written by monalisa"):
            check_out_dir(user, OURS, overwrite=overwrite)
    with pytest.raises(InputError, match="contact_sheet.png: exists and was not written"):
        with atomic_dir(user, ours=OURS) as tmp:  # the folder writer refuses it too, moving nothing
            (tmp / "identity.json").write_text("new")
            (tmp / "contact_sheet.png").write_text("new")
    assert (user / "contact_sheet.png").read_bytes() == b"a user's sheet" and not (user / "identity.json").exists()
    clip = user / "clip_a"  # a user's subfolder of a name monalisa writes (evaluate's per-clip folder)
    clip.mkdir()
    (clip / "contact_sheet.png").write_bytes(b"mine")
    (user / "contact_sheet.png").unlink()
    with pytest.raises(InputError, match="clip_a: exists and was not written"):
        check_out_dir(user, (*OURS, "clip_a"), overwrite=True)


def test_atomic_dir_keeps_what_monalisa_did_not_write(tmp_path):
    user = tmp_path / "shot"
    with atomic_dir(user, ours=OURS) as tmp:  # an earlier pack of ours
        (tmp / "identity.json").write_text("old")
        (tmp / "contact_sheet.png").write_text("stale")
    (user / "renders").mkdir()
    (user / "comp.nk").write_text("comp")
    with atomic_dir(user, ours=OURS) as tmp:
        (tmp / "identity.json").write_text("new")
        (tmp / "identity.safetensors").write_text("w")
    assert (user / "comp.nk").read_text() == "comp" and (user / "renders").is_dir()
    assert (user / "identity.json").read_text() == "new" and (user / "identity.safetensors").is_file()
    assert not (user / "contact_sheet.png").exists()  # a stale file of ours goes
    assert [p.name for p in tmp_path.iterdir()] == ["shot"]
    assert is_ours(user / "identity.json") and not is_ours(user / "comp.nk")


def test_atomic_dir_without_names_keeps_a_users_files(tmp_path):
    """No ``ours``: the folder is swapped only when all of it is monalisa's (the farm-bundle loss)."""
    out = tmp_path / "bundle"
    with atomic_dir(out) as tmp:
        (tmp / "template.yaml").write_text("1")
        (tmp / "old.json").write_text("1")
    (out / "comp.nk").write_text("comp")
    with atomic_dir(out) as tmp:
        (tmp / "template.yaml").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [LEDGER, "comp.nk", "template.yaml"]
    assert (out / "template.yaml").read_text() == "2" and (out / "comp.nk").read_text() == "comp"


def test_atomic_dir_swaps_a_folder_of_its_own_and_refuses_a_file(tmp_path):
    out = tmp_path / "pack"
    with atomic_dir(out, ours=OURS) as tmp:
        (tmp / "identity.json").write_text("1")
        (tmp / "contact_sheet.png").write_text("1")
    with atomic_dir(out, ours=OURS) as tmp:
        (tmp / "identity.json").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [LEDGER, "identity.json"]
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
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "f.json"]
    foreign = tmp_path / ".f.json.~1@another-host~abc.tmp"
    foreign.write_text("")
    assert remove_stale_temps(tmp_path) == [] and foreign.exists()
    foreign.unlink()
    # another process of this host: its temporary stays while it runs, and goes once it is killed
    # (as soon as it is a zombie, before anyone reaps it)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / f".f.json.~{child.pid}@{socket.gethostname() or 'host'}~abc.tmp"
        theirs.write_text("")
        assert remove_stale_temps(tmp_path) == [] and theirs.exists()
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, left a zombie: not reaped
        assert remove_stale_temps(tmp_path) == [theirs] and not theirs.exists()
    finally:
        child.kill()
        child.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEDGER, "f.json"]


def test_rendered_exr_frames_carry_the_mark_in_their_header_not_in_the_ledger(tmp_path):
    """Farm tasks write frames side by side: each EXR frame's header says monalisa wrote it. PNG
    frames keep no custom header attributes, so the ledger lists them."""
    import numpy as np
    import OpenImageIO as oiio

    from monalisa.nodes.writer import write_frame

    rgb, ones = np.full((8, 8, 3), 0.5, np.float32), np.ones((8, 8), np.float32)
    for ext in ("exr", "png"):
        write_frame(tmp_path / f"m.0001.{ext}", rgb, ones, ones, np.zeros((8, 8, 2), np.float32),
                    {"monalisa:synthetic": 1, "monalisa:frame": 1}, display=lambda x: x)
    assert is_ours(tmp_path / "m.0001.exr") and is_ours(tmp_path / "m.0001.png")
    listed = (tmp_path / LEDGER).read_text()
    assert "m.0001.png" in listed and "m.0001.exr" not in listed
    user = oiio.ImageBuf(oiio.ImageSpec(8, 8, 3, oiio.HALF))  # a user's EXR, of the same name pattern
    assert user.write(str(tmp_path / "m.0002.exr"))
    assert not is_ours(tmp_path / "m.0002.exr")
