import numpy as np
import pytest

from monalisa.errors import ShapeError
from monalisa.nodes.crop import align_face
from monalisa.nodes.landmarks import PARTS, check_points, inter_ocular
from monalisa.nodes.facecrop import to_model
from monalisa.nodes.raster import COLOURS, rasterize


def _face(scale=100.0, dx=200.0, dy=150.0, angle=0.2):
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (68, 2))
    base[36] = (0.25, 0.4)
    base[45] = (0.75, 0.4)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return (base @ rot.T * scale + (dx, dy)).astype(np.float32)


def test_parts_cover_all_points():
    idx = sorted(i for ind, _ in PARTS.values() for i in ind)
    assert idx == list(range(68))


def test_check_points_errors():
    with pytest.raises(ShapeError, match=r"expected shape \[68, 2\]"):
        check_points(np.zeros((67, 2)))
    bad = np.zeros((68, 2))
    bad[5, 0] = np.nan
    with pytest.raises(ShapeError, match="non-finite"):
        check_points(bad)


def test_inter_ocular():
    assert inter_ocular(_face()) == pytest.approx(50.0, rel=1e-5)


def test_crop_round_trip_and_scaled():
    pts = _face()
    tf = align_face(pts, 256)
    crop = tf.apply(pts)
    np.testing.assert_allclose(tf.invert(crop), pts, atol=1e-3)
    big = tf.scaled(512)
    np.testing.assert_allclose(big.apply(pts), crop * 2, atol=1e-3)
    img = np.zeros((400, 500, 3), np.uint8)
    assert tf.warp(img).shape == (256, 256, 3)


def _real_face(size=256):
    """68 real landmarks (the first frame of the bundled calibration set, in its 128 square) scaled to ``size``."""
    from monalisa.export.verify import default_calibration_path

    with np.load(default_calibration_path()) as data:
        return data["landmarks"][0].astype(np.float32) * (size / 128)


def test_raster_draws_every_part_in_its_own_colour():
    """Each of the nine parts is drawn, in its own colour, along its own points (closed for eyes and
    lips, open for the rest), and nothing else is drawn; the same points give the same bytes."""
    import cv2

    pts = _real_face()
    a = rasterize(pts, 256)
    np.testing.assert_array_equal(a, rasterize(pts, 256))
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    assert len(set(COLOURS.values())) == 9
    colour_of = {name: np.all(a == np.array(COLOURS[name], np.uint8), axis=-1) for name in PARTS}
    drawn = np.any(a != 0, axis=-1)
    assert not np.any(drawn & ~np.any(np.stack(list(colour_of.values())), axis=0))  # only the part colours
    for name, (indices, _) in PARTS.items():
        mine = colour_of[name]
        assert mine.sum() >= 3 * len(indices), f"{name}: {mine.sum()} pixels"
        # every pixel of its colour lies on its own polyline (within the 2 px line width), not elsewhere
        near = np.zeros((256, 256), np.uint8)
        cv2.polylines(near, [np.round(pts[list(indices)]).astype(np.int32).reshape(-1, 1, 2)], True, 1, 5)
        assert not np.any(mine & (near == 0)), name
        # and the polyline passes through each of its points
        for x, y in np.round(pts[list(indices)]).astype(int):
            assert mine[max(0, y - 2):y + 3, max(0, x - 2):x + 3].any(), (name, x, y)
    closing = {name: pts[[indices[-1], indices[0]]].mean(axis=0) for name, (indices, _) in PARTS.items()}
    for name in ("right_eye", "left_eye", "outer_lips", "inner_lips"):  # closed: the last point joins the first
        x, y = np.round(closing[name]).astype(int)
        assert colour_of[name][y - 1:y + 2, x - 1:x + 2].any(), name
    x, y = np.round(closing["jaw"]).astype(int)  # open: no line across the face from ear to ear
    assert not colour_of["jaw"][y - 1:y + 2, x - 1:x + 2].any()
    x = to_model(a)
    assert x.shape == (3, 256, 256) and x.min() == -1 and x.max() == 1
