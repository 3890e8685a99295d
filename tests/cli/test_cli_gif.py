"""A GIF as the still (issue 17): an animated one is refused in one line (exit 2) by render and
finetune, naming the file and what to do; a one-frame GIF is read like any still."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import monalisa
from monalisa.cli import main
from monalisa.nodes import trackfile
from monalisa.nodes.media import read_still

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "assets" / "clips" / "liveportrait_d0.mp4"


def gif(path: Path, frames: int) -> Path:
    """The clip's first ``frames`` frames as a GIF, written by FFmpeg (PyAV)."""
    import av

    with av.open(str(CLIP)) as inp, av.open(str(path), "w", format="gif") as out:
        s = out.add_stream("gif", rate=10)
        s.width, s.height, s.pix_fmt = 128, 128, "rgb8"
        for i, frame in enumerate(inp.decode(video=0)):
            if i == frames:
                break
            for packet in s.encode(frame.reformat(width=128, height=128, format="rgb8")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


def test_a_one_frame_gif_is_a_still(tmp_path):
    still = read_still(gif(tmp_path / "one.gif", 1))
    assert still.pixels.shape == (128, 128, 3) and still.srgb.std() > 10 and still.alpha is None


@pytest.mark.parametrize("command", ["render", "finetune"])
def test_an_animated_gif_is_refused_in_one_line(command, tmp_path, capsys):
    still = gif(tmp_path / "anim.gif", 3)
    track = tmp_path / "in" / "t.json"
    trackfile.save(trackfile.Track(np.arange(2), np.full((2, 68, 2), 60.0, np.float32), (128, 128)), track)
    argv = {"render": ["render", "--still", str(still), "--track", str(track), "--out", str(tmp_path / "o" / "m.####.exr")],
            "finetune": ["finetune", str(Path(monalisa.__file__).parent / "weights" / "reference"), "--stills",
                         str(still), "--out", str(tmp_path / "pack"), "--steps", "1"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err == (f"monalisa {command}: error: {still}: an animated GIF holds several frames, and "
                                       "a still is one picture; save the frame you want as a PNG and give that")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif", "in"]  # nothing written
