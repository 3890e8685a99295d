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


def test_raster_colours_inside_and_deterministic():
    pts = np.clip(_face(scale=200, dx=20, dy=20, angle=0.0), 0, 255)
    a = rasterize(pts, 256)
    b = rasterize(pts, 256)
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    colours = {tuple(c) for c in a.reshape(-1, 3)}
    assert (0, 0, 0) in colours
    assert set(COLOURS.values()) & colours
    x = to_model(a)
    assert x.shape == (3, 256, 256) and x.min() >= -1 and x.max() <= 1
