import numpy as np
import pytest

from monalisa.nodes.landmarks import inter_ocular
from monalisa.nodes.retarget import retarget
from monalisa.nodes.smooth import OneEuro, jitter, lag, one_euro


def _face(seed, w=1.0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0.1, 0.9, (68, 2))
    pts[36], pts[39], pts[42], pts[45], pts[30], pts[48], pts[54] = (
        (0.25, 0.4), (0.41, 0.4), (0.59, 0.4), (0.75, 0.4), (0.5, 0.6), (0.36, 0.76), (0.64, 0.76))
    pts[:, 0] = 0.5 + (pts[:, 0] - 0.5) * w
    return pts * 200 + 50


def _move(pts, angle, t):
    c, s = np.cos(angle), np.sin(angle)
    return pts @ np.array([[c, -s], [s, c]]).T + t


def test_relative_retarget_keeps_still_shape():
    neutral = _face(1)
    still = _face(2, w=1.3) * 1.7 + 40  # different proportions and size
    assert np.allclose(retarget(neutral, neutral, still), still, atol=1e-3)
    opened = neutral.copy()
    opened[65:68] += (0, 12)  # the lower inner lip drops: the mouth opens by 12 px at the plate's scale
    moved = _move(opened, 0.3, (30, -20))
    out = retarget(moved, neutral, still)
    # the still keeps its own proportions ...
    assert inter_ocular(out) == pytest.approx(inter_ocular(still), rel=0.02)
    jaw = lambda p: np.linalg.norm(p[16] - p[0])
    assert jaw(out) == pytest.approx(jaw(still), rel=0.02)
    # ... the mouth opens like the plate's, scaled to the still (inner-lip gap, pose removed) ...
    angle = lambda p: np.arctan2(*(p[45] - p[36])[::-1])

    def drop(p):  # how far the lower inner lip sits below the upper one, along the face's own "down"
        c, s = np.cos(-angle(p)), np.sin(-angle(p))
        return (np.array([[c, -s], [s, c]]) @ (p[66] - p[62]))[1]

    scale = inter_ocular(still) / inter_ocular(neutral)
    assert drop(out) - drop(still) == pytest.approx(12 * scale, rel=0.15)
    # ... and the head turns with the plate (eye line rotated by the plate's 0.3 rad) and moves
    assert angle(out) - angle(still) == pytest.approx(0.3, abs=0.02)
    assert np.linalg.norm(out.mean(0) - still.mean(0)) > 20
    absolute = retarget(moved, neutral, still, mode="absolute")
    assert absolute.shape == (68, 2) and not np.allclose(absolute, still, atol=5)


def test_one_euro_lowers_jitter_with_small_lag():
    rng = np.random.default_rng(0)
    n = 200
    t = np.arange(n) / 25.0
    base = np.tile(_face(3)[None], (n, 1, 1))
    base[..., 0] += (40 * np.sin(2 * np.pi * 0.5 * t))[:, None]
    noisy = base + rng.normal(0, 1.0, base.shape)
    smooth = one_euro(noisy, 25.0, OneEuro())
    assert jitter(smooth) < 0.6 * jitter(noisy)
    assert lag(base, smooth) <= 1


def test_one_euro_lowers_jitter_on_real_track(shared_file):
    from monalisa.nodes.track import track_plate
    clip = shared_file("clips/liveportrait_d0.mp4")
    tr = track_plate(clip, end=60)
    smooth = one_euro(tr.points, 25.0)
    assert jitter(smooth) < 0.6 * jitter(tr.points)
