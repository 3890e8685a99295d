"""The one frame reader and the one H.264 writer of nodes/preview.py: exact frame rates, every
pixel read (a truncated frame is a one-line error), and a render's preview at the clip's rate."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from monalisa.errors import InputError, MediaError
from monalisa.nodes import preview


def _frames(n=5, h=33, w=47):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _rate_and_count(path):
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        return stream.average_rate, frames


@pytest.mark.parametrize("fps,rate", [(25, Fraction(25)), (23.976, Fraction(2997, 125)),
                                      (24000 / 1001, Fraction(24000, 1001)), (29.97, Fraction(2997, 100)),
                                      (Fraction(30000, 1001), Fraction(30000, 1001)), (12.5, Fraction(25, 2))])
def test_write_movie_keeps_the_frame_rate_exactly(tmp_path, fps, rate):
    path = preview.write_movie(tmp_path / "m.mp4", iter(_frames()), fps)
    got, frames = _rate_and_count(path)
    assert got == rate
    assert len(frames) == 5 and frames[0].shape == (32, 46, 3)  # cropped to even


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf"), 1e9, "abc"])
def test_write_movie_refuses_a_bad_rate_before_writing(tmp_path, fps):
    with pytest.raises(InputError, match="frame rate"):
        preview.write_movie(tmp_path / "m.mp4", _frames(), fps)
    assert list(tmp_path.iterdir()) == []


def test_write_movie_without_frames_leaves_nothing(tmp_path):
    with pytest.raises(MediaError, match="no frames"):
        preview.write_movie(tmp_path / "m.mp4", [], 24)
    assert list(tmp_path.iterdir()) == []


def _exr(path, rgb):
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.HALF)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec)
    out.write_image(rgb.astype(np.float32))
    out.close()


def test_read_srgb8_converts_linear_exr_and_refuses_a_truncated_one(tmp_path):
    lin = np.full((40, 60, 3), 0.214, np.float32)  # linear 0.214 is sRGB ~0.5
    _exr(tmp_path / "f.exr", lin)
    srgb = preview.read_srgb8(tmp_path / "f.exr")
    assert srgb.shape == (40, 60, 3) and abs(int(srgb[0, 0, 0]) - 128) <= 1
    _exr(tmp_path / "noise.exr", np.random.default_rng(1).random((200, 300, 3), np.float32))
    data = (tmp_path / "noise.exr").read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError) as err:
        preview.read_srgb8(tmp_path / "cut.exr")
    assert "cut.exr: cannot be read completely" in str(err.value) and "\n" not in str(err.value)


def test_write_preview_uses_the_clip_rate(tmp_path):
    paths = []
    for i, rgb in enumerate(_frames(3, 40, 60)):
        _exr(tmp_path / f"s.{i:04d}.exr", rgb.astype(np.float32) / 255)
        paths.append(tmp_path / f"s.{i:04d}.exr")
    movie, sheet = preview.write_preview(paths, tmp_path / "s.####.exr", "lin_rec709", fps=24000 / 1001)
    rate, frames = _rate_and_count(movie)
    assert rate == Fraction(24000, 1001) and len(frames) == 3  # not rounded to 24
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
