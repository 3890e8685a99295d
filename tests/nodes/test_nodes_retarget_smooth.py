import numpy as np
import pytest

from monalisa.nodes.landmarks import inter_ocular
from monalisa.nodes.retarget import retarget
from monalisa.nodes.smooth import Cutoffs, OneEuro, jitter, lag, lowpass, one_euro, zero_phase


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


def _talking(n=120, fps=25.0, noise=0.6, seed=0):
    """A face turning and nodding, its mouth opening for 4 frames every second, with detector noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    face = _face(3)
    face[60:68] = [(115, 202), (125, 200), (135, 199), (145, 200), (155, 202), (145, 204), (135, 205), (125, 204)]
    truth = np.empty((n, 68, 2))
    for i in range(n):
        p = face.copy()
        p[[61, 62, 63]] -= (0, 4 * (i % int(fps) in (10, 11, 12, 13)))  # upper inner lip up ...
        p[[65, 66, 67]] += (0, 6 * (i % int(fps) in (10, 11, 12, 13)))  # ... lower inner lip down
        truth[i] = _move(p, 0.15 * np.sin(2 * np.pi * 0.4 * t[i]), (30 * np.sin(2 * np.pi * 0.3 * t[i]), 0))
    return truth, truth + rng.normal(0, noise, truth.shape)


def _opening(p):
    return np.linalg.norm(p[:, 66] - p[:, 62], axis=-1)


def test_zero_phase_removes_jitter_and_keeps_the_mouth():
    truth, noisy = _talking()
    smooth = zero_phase(noisy, 25.0)
    assert jitter(smooth) < 0.4 * jitter(noisy)
    assert lag(truth, smooth) == 0
    # a 4-frame mouth opening keeps most of its height; the causal One-Euro filter loses more and lags
    peaks = np.arange(len(truth)) % 25 == 11
    kept = _opening(smooth)[peaks].mean() - _opening(truth)[~peaks].mean()
    full = _opening(truth)[peaks].mean() - _opening(truth)[~peaks].mean()
    euro = _opening(one_euro(noisy, 25.0))[peaks].mean() - _opening(truth)[~peaks].mean()
    assert kept > 0.8 * full and euro < 0.7 * full
    # the head's motion (a turn and a sway) goes through: mean error well under a pixel
    assert np.linalg.norm(smooth - truth, axis=-1).mean() < 0.5


def test_zero_phase_regions_strength_and_short_tracks():
    truth, noisy = _talking(seed=1)
    default = zero_phase(noisy, 25.0)
    steadier = zero_phase(noisy, 25.0, Cutoffs().scaled(2.0))
    assert jitter(steadier) < jitter(default)
    # the outline (jaw) is smoothed more than the lips: less of its noise is left
    left = lambda s, idx: np.diff(s[:, idx] - truth[:, idx], axis=0).std()  # noqa: E731
    assert left(default, list(range(0, 17))) < 0.8 * left(default, list(range(48, 68)))
    # a still face stays put; tracks of 1-2 frames come back unchanged
    still = np.repeat(_face(4)[None], 30, axis=0)
    assert np.allclose(zero_phase(still, 24.0), still, atol=1e-3)
    assert np.allclose(zero_phase(noisy[:2], 24.0), noisy[:2], atol=1e-4)
    # a cutoff above the Nyquist frequency leaves that part unfiltered
    assert np.allclose(lowpass(noisy[:, 0], 30.0, 24.0), noisy[:, 0])


def test_drive_smoothing_rate_strength_and_off():
    from monalisa.errors import ConfigError
    from monalisa.nodes.drive import drive
    from monalisa.nodes.trackfile import Track

    truth, noisy = _talking(seed=2)
    track = Track(np.arange(len(noisy)), noisy.astype(np.float32), (400, 400), provenance={})
    still = _face(3)
    off = drive(track, still, smooth=False).points
    on = drive(track, still).points
    strong = drive(track, still, strength=3.0).points
    assert jitter(strong) < jitter(on) < 0.5 * jitter(off)
    # the track's frame rate drives the filter (24 when it gives none): the same cutoffs in Hz are a
    # lower fraction of 100 fps (steadier per frame), a higher one of 12 fps
    track.provenance["fps"] = 100.0
    assert jitter(drive(track, still).points) < 0.6 * jitter(on)
    track.provenance["fps"] = 12.0
    assert jitter(drive(track, still).points) > 1.5 * jitter(on)
    assert np.allclose(drive(track, still, fps=24.0).points, on)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="smoothing strength"):
            drive(track, still, strength=bad)


def _mouthed(seed, opening, eyes=0.3):
    """_face(seed) with a mouth open by ``opening`` (inner-lip height / width) and eyes open by ``eyes``."""
    p = _face(seed)
    cx, cy, half = 150.0, 202.0, 28.0
    angles = np.linspace(np.pi, -np.pi, 12, endpoint=False)  # 48 = left corner, round via the top
    p[48:60] = np.stack([cx + half * np.cos(angles), cy - 10 * np.sin(angles)], 1)
    gap = opening * 2 * half
    p[60], p[64] = (cx - 0.8 * half, cy), (cx + 0.8 * half, cy)
    for k, (up, low) in enumerate(((61, 67), (62, 66), (63, 65))):
        x = cx + (k - 1) * 0.4 * half
        p[up], p[low] = (x, cy - gap / 2), (x, cy + gap / 2)
    for corner, (a, b), (c, d) in ((36, (37, 41), (38, 40)), (42, (43, 47), (44, 46))):
        x0, x1 = p[corner][0], p[corner][0] + 32
        p[corner + 3] = (x1, p[corner][1])
        for (u, lo), x in (((a, b), x0 + 11), ((c, d), x0 + 21)):
            p[u], p[lo] = (x, p[corner][1] - 16 * eyes), (x, p[corner][1] + 16 * eyes)
    return p


def test_landmark_openings_and_uncrossed_lips():
    from monalisa.nodes.landmarks import eye_opening, mouth_opening, uncross_lips

    assert mouth_opening(_mouthed(1, 0.3)) == pytest.approx(0.3, abs=1e-6)
    assert eye_opening(_mouthed(1, 0.0, eyes=0.3)) == pytest.approx(0.3, abs=1e-6)
    assert eye_opening(_mouthed(1, 0.0, eyes=0.05)) < 0.1
    crossed = _mouthed(1, -0.2)
    fixed = uncross_lips(crossed)
    assert mouth_opening(crossed) < -0.19 and mouth_opening(fixed) == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(fixed[:60], crossed[:60])  # nothing but the crossing inner lips moves
    assert np.allclose(uncross_lips(_mouthed(1, 0.2)), _mouthed(1, 0.2))  # an open mouth is left alone


def test_drive_neutral_is_a_closed_mouth_with_open_eyes():
    """A performer who starts mid-word: the first frame's open mouth must not become the still's closed
    one (the still's lips would cross whenever the performer's mouth is less open than at frame 0)."""
    from monalisa.errors import ConfigError
    from monalisa.nodes.drive import drive, neutral_index
    from monalisa.nodes.landmarks import mouth_opening
    from monalisa.nodes.trackfile import Track

    openings = [0.4, 0.3, 0.1, 0.0, 0.0, 0.2, 0.45, 0.05]
    eyes = [0.3, 0.3, 0.3, 0.05, 0.3, 0.3, 0.3, 0.3]  # frame 3: closed mouth, but a blink
    plate = np.stack([_mouthed(1, o, e) for o, e in zip(openings, eyes)]).astype(np.float32)
    assert neutral_index(plate, np.arange(8)) == 4
    track = Track(np.arange(1001, 1009), plate, (400, 400), provenance={})
    still = _mouthed(2, 0.0)
    driving = drive(track, still, smooth=False)
    assert driving.neutral == 1005
    got = [mouth_opening(p) for p in driving.points]
    assert min(got) >= 0.0  # never crossed
    assert got[6] > 0.35 and got[4] == pytest.approx(0.0, abs=1e-3)  # the still opens as wide as the plate
    # naming the neutral frame: the old rule (frame 0) keeps every frame closed but 6, whose lips cross
    first = drive(track, still, smooth=False, neutral_frame=1001)
    assert first.neutral == 1001 and [round(mouth_opening(p), 3) for p in first.points][:5] == [0.0] * 5
    with pytest.raises(ConfigError, match="neutral frame 99 is not a usable frame"):
        drive(track, still, smooth=False, neutral_frame=99)


def test_smoothing_does_not_move_the_neutral_frame():
    """The neutral frame is chosen on the plate's own points: a one-frame closed mouth among open
    ones stays the neutral though smoothing opens it more than a longer half-closed run."""
    from monalisa.nodes.drive import drive
    from monalisa.nodes.trackfile import Track

    truth, _ = _talking(n=100, noise=0.0)
    gap = np.full(len(truth), 6.0)
    gap[30], gap[60:64] = 0.0, 1.5
    for i, g in enumerate(gap):
        truth[i, [65, 66, 67]] = truth[i, [63, 62, 61]] + (0, g)
    track = Track(np.arange(len(truth)) + 1001, truth.astype(np.float32), (400, 400), provenance={})
    assert drive(track, _face(3), smooth=False).neutral == 1031
    assert drive(track, _face(3)).neutral == 1031
