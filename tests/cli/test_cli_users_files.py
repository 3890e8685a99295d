"""A user's file at a name a command writes is never replaced (issue 17 item 1): each command is run
with someone's file already there, refused in one line (exit 2) before any work, and the file is
compared byte for byte afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import monalisa
from monalisa.cli import main
from monalisa.nodes import trackfile

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "assets" / "clips" / "liveportrait_d0.mp4"
REFERENCE = Path(monalisa.__file__).parent / "weights" / "reference"


def users(folder: Path, *names: str) -> dict:
    """Put a user's file at each of ``names`` below ``folder``; -> {path: bytes}."""
    files = {}
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"a user's {name}\n".encode())
        files[path] = path.read_bytes()
    return files


def refused(capsys, argv, files, *words):
    assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"monalisa {argv[0]}: error: ") and "not written by monalisa" in err, err
    for w in words:
        assert w in err, err
    for path, data in files.items():
        assert path.read_bytes() == data, path


@pytest.fixture
def track(tmp_path):
    path = tmp_path / "in" / "t.json"
    pts = np.full((2, 68, 2), 100.0, np.float32) + np.arange(68, dtype=np.float32)[None, :, None]
    trackfile.save(trackfile.Track(np.arange(2), pts, (256, 256)), path)
    return path


@pytest.mark.parametrize("taken", ["mona.preview.mp4", "mona.contact_sheet.png"])
def test_render_preview_keeps_a_users_preview_and_sheet(taken, track, tmp_path, capsys):
    out = tmp_path / "shot"
    files = users(out, taken)
    argv = ["render", "--still", str(tmp_path / "unread.png"), "--track", str(track), "--out",
            str(out / "mona.####.exr"), "--preview"]
    refused(capsys, argv, files, str(out / taken), "choose another --out")
    assert sorted(p.name for p in out.iterdir()) == [taken]


def test_render_plate_keeps_a_users_track_file(tmp_path, capsys):
    out = tmp_path / "shot"
    files = users(out, "mona.track.json")
    argv = ["render", "--still", str(tmp_path / "unread.png"), "--plate", str(CLIP), "--out", str(out / "mona.####.exr")]
    refused(capsys, argv, files, "mona.track.json")
    assert sorted(p.name for p in out.iterdir()) == ["mona.track.json"]


@pytest.mark.parametrize("taken", ["results.csv", f"{CLIP.stem}/contact_sheet.png"])
def test_evaluate_keeps_a_users_results_and_clip_folder(taken, tmp_path, capsys):
    out = tmp_path / "eval"
    files = users(out, taken)
    refused(capsys, ["evaluate", str(CLIP), "--baselines-only", "--out", str(out)], files, taken.split("/")[0])


def test_prepare_keeps_a_users_manifest(tmp_path, capsys):
    out = tmp_path / "data"
    files = users(out, "manifest.json")
    for extra in ([], ["--overwrite"]):
        refused(capsys, ["prepare", str(CLIP), "--out", str(out), *extra], files, "manifest.json")
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


def test_finetune_keeps_a_users_contact_sheet(tmp_path, capsys):
    out = tmp_path / "pack"
    files = users(out, "contact_sheet.png")
    for extra in ([], ["--overwrite"]):
        refused(capsys, ["finetune", str(REFERENCE), "--stills", str(CLIP), "--out", str(out), "--steps", "1", *extra],
                files, "contact_sheet.png")
    assert [p.name for p in out.iterdir()] == ["contact_sheet.png"]
