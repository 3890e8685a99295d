"""The EXR conventions a compositor relies on: the still's windows and pixel aspect kept, the matte in
its own layer, forward motion vectors in Nuke's channels with y up (a head moving up has v > 0)."""
from __future__ import annotations

import numpy as np

from monalisa.nodes.writer import EXR_CHANNELS, MATTE, matte_channel

from .conftest import frame, monalisa, read_exr


def test_channels_are_named_for_nuke_and_blender():
    assert EXR_CHANNELS == ("R", "G", "B", "A", "Vector.X", "Vector.Y", "Vector.Z", "Vector.W", "forward.u",
                            "forward.v", "matte.A")
    assert matte_channel(EXR_CHANNELS) == MATTE == "matte.A"
    assert matte_channel(("R", "G", "B", "A", "matte", "motion.u", "motion.v")) == "matte"  # older frames
    assert matte_channel(("R", "G", "B")) is None


def test_an_upward_head_motion_has_positive_forward_v(tmp_path, small_still, short_track):
    """A plate whose face moves 4 px up per frame: the rendered face moves up, so in the file the
    forward vectors inside the matte point up (v > 0, y up as in Nuke) and hardly sideways."""
    from monalisa.nodes import trackfile

    track = trackfile.load(short_track)
    first = track.points[0]
    shifted = np.stack([first + np.array([0.0, -4.0 * i], np.float32) for i in range(3)])
    moving = trackfile.Track(np.arange(3), shifted, track.image_size, provenance={"source": "shifted up"})
    path = tmp_path / "up.json"
    trackfile.save(moving, path)
    out = tmp_path / "r" / "s.####.exr"
    done = monalisa("render", "--still", small_still, "--track", path, "--out", out, "--frames", "0-1",
                    "--no-smooth", "--threads", 1)
    assert done.returncode == 0, done.stderr
    pixels, names, _ = read_exr(frame(out, 0))
    assert names == EXR_CHANNELS
    matte = pixels[..., names.index("matte.A")]
    face = matte > 0.9
    u = pixels[..., names.index("forward.u")][face]
    v = pixels[..., names.index("forward.v")][face]
    assert face.sum() > 500
    assert np.median(v) > 1.0 and np.median(v) > 5 * abs(np.median(u)), (np.median(u), np.median(v))
    assert (v > 0).mean() > 0.95
    for name, same in (("Vector.X", "forward.u"), ("Vector.Y", "forward.v"), ("Vector.Z", "forward.u"),
                       ("Vector.W", "forward.v")):  # Blender's Vector pass: the same motion, y up
        assert np.array_equal(pixels[..., names.index(name)], pixels[..., names.index(same)])


def _overscan_still(src, dst, pad=16, aspect=2.0):
    """``src`` (8-bit sRGB) as a linear EXR whose data window reaches ``pad`` px past its display
    window on every side, with pixel aspect ``aspect``."""
    import cv2
    import OpenImageIO as oiio

    from monalisa.nodes import colour

    srgb = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
    linear = colour.convert(srgb, colour.SRGB, colour.LINEAR)
    h, w = linear.shape[:2]
    data = np.pad(linear, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    spec = oiio.ImageSpec(w + 2 * pad, h + 2 * pad, 3, oiio.HALF)
    spec.x, spec.y = -pad, -pad
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, w, h
    spec.attribute("PixelAspectRatio", aspect)
    out = oiio.ImageOutput.create(str(dst))
    assert out.open(str(dst), spec), out.geterror()
    out.write_image(np.ascontiguousarray(data.astype(np.float16)))
    out.close()
    return w, h


def test_overscan_and_anamorphic_still_keep_their_windows(tmp_path, small_still, short_track):
    """The frames keep the still's data window (its overscan), display window and pixel aspect."""
    import OpenImageIO as oiio

    still = tmp_path / "overscan.exr"
    w, h = _overscan_still(small_still, still)
    out = tmp_path / "r" / "s.####.exr"
    done = monalisa("render", "--still", still, "--track", short_track, "--out", out, "--frames", "0",
                    "--threads", 1)
    assert done.returncode == 0, done.stderr
    spec = oiio.ImageInput.open(str(frame(out, 0))).spec()
    assert (spec.x, spec.y, spec.width, spec.height) == (-16, -16, w + 32, h + 32)
    assert (spec.full_x, spec.full_y, spec.full_width, spec.full_height) == (0, 0, w, h)
    assert spec.getattribute("PixelAspectRatio") == 2.0
