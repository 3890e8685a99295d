"""Fixtures for the render path: a small real still and a short real track, made once per session
from the bundled MIT assets (assets/portraits, assets/clips), so these tests need no ../shared."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
STILL = REPO / "assets" / "portraits" / "liveportrait_s3.jpg"
CLIP = REPO / "assets" / "clips" / "liveportrait_d0.mp4"
FRAMES = 8


def monalisa(*args, cwd=None, env=None, timeout=300):
    """Run the installed command; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "monalisa", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="session")
def small_still(tmp_path_factory) -> Path:
    """The bundled painting at half size (282x364 PNG)."""
    path = tmp_path_factory.mktemp("still") / "portrait.png"
    img = cv2.imread(str(STILL))
    cv2.imwrite(str(path), cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA))
    return path


@pytest.fixture(scope="session")
def short_track(tmp_path_factory) -> Path:
    """dlib track of the bundled clip's first FRAMES frames (frames 0..FRAMES-1)."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.track import track_plate

    path = tmp_path_factory.mktemp("track") / "track.json"
    trackfile.save(track_plate(str(CLIP), end=FRAMES - 1), path)
    return path


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, small_still, short_track) -> Path:
    """A whole uninterrupted render of the short track: out/s.####.exr."""
    out = tmp_path_factory.mktemp("render") / "s.####.exr"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--threads", 1)
    assert done.returncode == 0, done.stderr
    return out


def frame(pattern, n) -> Path:
    return Path(str(pattern).replace("####", f"{n:04d}"))


def read_exr(path):
    """(pixels float32 (H, W, C), channel names, monalisa:* attributes)."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    spec = inp.spec()
    pixels = inp.read_image(oiio.FLOAT)
    inp.close()
    attrs = {a.name: a.value for a in spec.extra_attribs if a.name.startswith("monalisa:")}
    return np.asarray(pixels), tuple(spec.channelnames), attrs
