"""A small real shot shared by the plugin tests: the bundled MIT portrait scaled to 256 px, a 6-frame
dlib track of the bundled clip, and one reference render of all six frames (CPU, a few seconds)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plugin_shot import CLIP, FRAMES, MONALISA, PORTRAIT, Shot, run


@pytest.fixture(scope="session")
def shot(tmp_path_factory) -> Shot:
    import cv2

    root = tmp_path_factory.mktemp("shot")
    image = cv2.imread(str(PORTRAIT))
    h, w = image.shape[:2]
    scale = 256 / max(h, w)
    still = root / "still.png"
    cv2.imwrite(str(still), cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA))
    track = root / "track.json"
    r = run(MONALISA, "track", CLIP, "--out", track, "--start", FRAMES[0], "--end", FRAMES[-1])
    assert r.returncode == 0, r.stderr
    reference = root / "reference"
    r = run(MONALISA, "render", "--still", still, "--track", track, "--out", reference / "s.####.exr")
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in reference.iterdir()) == [f"s.{f:04d}.exr" for f in FRAMES]
    return Shot(still, track, reference)


@pytest.fixture
def render_copy(shot, tmp_path) -> Path:
    """A private copy of the reference render to damage."""
    dst = tmp_path / "render"
    shutil.copytree(shot.reference, dst)
    return dst
