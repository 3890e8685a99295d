"""Bad input to every command: one line, exit 2, checked before any work, nothing of the user's lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import monalisa
from monalisa.cli import main

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "assets" / "clips" / "liveportrait_d0.mp4"
REFERENCE = Path(monalisa.__file__).parent / "weights" / "reference"


def one_line(capsys, *words, command=None):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"monalisa {command}: error: " if command else "monalisa "), err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture
def user(tmp_path):
    """A shot folder with someone's comp and renders in it."""
    shot = tmp_path / "shot"
    (shot / "renders").mkdir(parents=True)
    (shot / "comp.nk").write_text("comp")
    (shot / "renders" / "beauty.0001.exr").write_bytes(b"\0" * 16)
    return shot


def intact(shot):
    return sorted(p.name for p in shot.rglob("*")) == ["beauty.0001.exr", "comp.nk", "renders"]


@pytest.fixture
def still(tmp_path):
    p = tmp_path / "still.png"
    p.write_bytes(b"not read: the output is refused first")
    return p


def test_commands_refuse_a_users_folder(user, still, tmp_path, capsys):
    commands = {
        "finetune": ["finetune", str(REFERENCE), "--stills", str(still), "--out", str(user), "--steps", "1"],
        "prepare": ["prepare", str(CLIP), "--out", str(user)],
        "train": ["train", "--data", str(tmp_path / "nodata"), "--out", str(user)],
    }
    for name, argv in commands.items():
        assert main(argv) == 2, name
        one_line(capsys, str(user), "comp.nk, renders", "--overwrite", command=name)
        assert intact(user), name


def test_commands_refuse_a_file_for_a_folder_and_the_reverse(user, still, tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    for argv in (["finetune", str(REFERENCE), "--stills", str(still), "--out", str(f)],
                 ["finetune", str(REFERENCE), "--stills", str(still), "--out", str(f / "pack")],
                 ["prepare", str(CLIP), "--out", str(f)],
                 ["train", "--data", str(tmp_path), "--out", str(f)]):
        assert main(argv) == 2, argv
        one_line(capsys, "is a file, not a folder", command=argv[0])
    assert main(["track", str(CLIP), "--out", str(user)]) == 2
    one_line(capsys, "is a folder", "file name", command="track")
    assert main(["track", str(CLIP), "--out", str(f)]) == 2  # a file monalisa did not write
    one_line(capsys, "not written by monalisa", "--overwrite", command="track")
    assert main(["track", str(CLIP), "--out", "/proc/monalisa-test/t.json"]) == 2  # unwritable, even for root
    one_line(capsys, "cannot write", command="track")
    assert f.read_text() == "mine" and intact(user)


@pytest.mark.parametrize("flags, words", [
    (["--face", "abc"], ["--face 'abc'", "largest, an INDEX"]),
    (["--face", "-1"], ["--face -1"]),
    (["--face", "99999,99999"], ["--face 99999,99999: no face there in the first frame", "give a pixel on one of them"]),
    (["--face", "inf,3"], ["--face 'inf,3'"]),
    (["--face", "7"], ["--face 7: only 1 faces found"]),
    (["--upsample", "-1"], ["argument --upsample: -1 is out of range", "from 0 to 4"]),
    (["--fps", "-5", "--smooth"], ["argument --fps: -5 is out of range", "above 0 and at most 1000"]),
    (["--fps", "inf", "--smooth"], ["argument --fps: inf is not a finite number"]),
    (["--start", "9", "--end", "3"], ["--start 9 is after --end 3"]),
    (["--min-cutoff", "0"], ["--min-cutoff"]),
])
def test_track_flags(flags, words, tmp_path, capsys):
    assert main(["track", str(CLIP), "--out", str(tmp_path / "t.json"), *flags]) == 2
    one_line(capsys, *words, command="track")
    assert list(tmp_path.iterdir()) == []


def cut_movie(path):
    """The bundled clip re-muxed with its index at the start, then cut in half."""
    import av

    whole = path.with_name("whole.mp4")
    with av.open(str(CLIP)) as inp, av.open(str(whole), "w", format="mp4", options={"movflags": "faststart"}) as out:
        src = inp.streams.video[0]
        dst = out.add_stream_from_template(src)
        for packet in inp.demux(src):
            if packet.dts is not None:
                packet.stream = dst
                out.mux(packet)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    whole.unlink()
    return path


def test_a_movie_cut_in_half_is_refused_before_decoding(tmp_path, capsys):
    cut = cut_movie(tmp_path / "cut.mp4")
    assert main(["track", str(cut), "--out", str(tmp_path / "t.json")]) == 2
    one_line(capsys, "cut.mp4: the movie is cut short", "of 64 frames", command="track")
    assert main(["prepare", str(cut), "--out", str(tmp_path / "p")]) == 2
    one_line(capsys, "cut.mp4: the movie is cut short", command="prepare")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_without_torch_says_what_to_install(command, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\nfrom monalisa.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    argv = {"train": ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")],
            "finetune": ["finetune", str(REFERENCE), "--stills", str(CLIP), "--out", str(tmp_path / "p")]}[command]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "\n" not in err and f"monalisa {command} needs torch" in err and "monalisa[train,cpu]" in err


def test_interrupt_message_says_what_a_rerun_does(tmp_path):
    import argparse

    from monalisa.cli import _after_interrupt

    args = argparse.Namespace(command="train", out=tmp_path / "run", checkpoint_every=500)
    assert "no checkpoint was written yet" in _after_interrupt(args) and "resume" not in _after_interrupt(args)
    (tmp_path / "run" / "checkpoints" / "step_0000500").mkdir(parents=True)
    assert "resume from step_0000500" in _after_interrupt(args)
    assert "nothing was written" in _after_interrupt(argparse.Namespace(command="finetune"))
    prep = argparse.Namespace(command="prepare", out=tmp_path / "data")
    assert "no clip was finished" in _after_interrupt(prep)
    (tmp_path / "data" / "clip_a").mkdir(parents=True)
    (tmp_path / "data" / "clip_a" / "frames.json").write_text("{}")
    assert "1 clip(s) finished" in _after_interrupt(prep)


def test_help_keeps_example_lines_and_documents_every_option(capsys):
    from monalisa.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        p = sub.choices[name]
        undocumented = [a.option_strings for a in p._actions if a.option_strings and not a.help]
        assert not undocumented, (name, undocumented)
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    out = capsys.readouterr().out
    assert "\n  monalisa track plate.####.exr --out track.json\n" in out  # the example keeps its own line
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "{small,medium,paper" in out and "--threads" in out and "--overwrite" in out


def test_track_replaces_its_own_track_file(tmp_path):
    """A long track (over 1 MB) that monalisa wrote is recognised as its own and may be replaced."""
    import numpy as np

    from monalisa.nodes import trackfile
    from monalisa.nodes.trackschema import is_track as _is_track

    n = 1000
    pts = np.random.default_rng(0).uniform(10, 200, (n, 68, 2)).astype(np.float32)
    trackfile.save(trackfile.Track(np.arange(n), pts, (256, 256)), tmp_path / "t.json")
    assert (tmp_path / "t.json").stat().st_size > 1 << 20 and _is_track(tmp_path / "t.json")
    (tmp_path / "other.json").write_text('{"format": "someone.else", "frames": []}')
    assert not _is_track(tmp_path / "notes.txt") and not _is_track(tmp_path / "other.json")
