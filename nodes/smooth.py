"""Landmark smoothing along a track.

:func:`zero_phase` is the render's smoother: the whole track is filtered forward and backward
(Butterworth, ``scipy.signal.sosfiltfilt``), so nothing lags and a mouth that opens for three
frames still opens. The head's rigid motion (a similarity fitted on the eye corners and the nose)
is separated from the face's own shape; each is filtered with its own cutoff (``Cutoffs``): the
rigid head and the outline (jaw, brows, nose) steadily, the eyes and lips with a cutoff high
enough to keep blinks and speech. docs/landmarks.md gives the measurement behind the defaults.

:func:`one_euro` (Casiez et al. 2012) is the causal filter ``monalisa track --smooth`` bakes into a
track file, for hosts that need a filter that never looks ahead.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: points of the rigid head fit: nose bridge and base, the four eye corners (they do not move with
#: speech; blinks move the lids, not the corners)
RIGID = (27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45)
#: region -> point indices of the face's own shape (in the head's frame)
REGIONS = {"outline": tuple(range(0, 36)), "eyes": tuple(range(36, 48)), "lips": tuple(range(48, 68))}
ORDER = 2  # Butterworth order of each pass (forward + backward: 4th-order magnitude, no phase)


@dataclass(frozen=True)
class Cutoffs:
    """Cutoff frequencies (Hz) of :func:`zero_phase`: ``head`` for the rigid motion (translation,
    rotation, scale), then the shape of each region in the head's frame."""

    head: float = 6.0
    outline: float = 4.0
    eyes: float = 8.0
    lips: float = 8.0

    def scaled(self, strength: float) -> "Cutoffs":
        """Cutoffs divided by ``strength`` (> 1 smooths more)."""
        return replace(self, **{k: v / strength for k, v in self.__dict__.items()})


def lowpass(x, cutoff: float, fps: float):
    """Zero-phase Butterworth low-pass of ``x`` along axis 0 (unchanged when ``cutoff`` is at or
    above the Nyquist frequency or the track is too short to filter)."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(x, np.float64)
    nyquist = 0.5 * float(fps)
    if len(x) < 3 or cutoff >= nyquist:
        return x
    sos = butter(ORDER, cutoff / nyquist, output="sos")
    return sosfiltfilt(sos, x, axis=0, padlen=min(len(x) - 1, 3 * (2 * len(sos) + 1)))


def _similarity(src, dst):
    """Least-squares similarity (Umeyama) src -> dst, (K, 2) each: (a, b, tx, ty) with
    dst ~ [[a, -b], [b, a]] @ src + t."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s ** 2).sum()
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    t = md - np.array([a * ms[0] - b * ms[1], b * ms[0] + a * ms[1]])
    return a, b, t


def zero_phase(points, fps: float, cutoffs: Cutoffs = Cutoffs()):
    """Filter (N, 68, 2) points over the whole track, forward and backward -> float32 (N, 68, 2)."""
    x = np.asarray(points, np.float64)
    if len(x) < 3:
        return x.astype(np.float32)
    ref = x[:, RIGID].mean(0)
    ref = ref - ref.mean(0)
    pose = np.empty((len(x), 4))  # log scale, angle, tx, ty
    shape = np.empty_like(x)
    for i, p in enumerate(x):
        a, b, t = _similarity(ref, p[list(RIGID)])
        pose[i] = np.log(np.hypot(a, b)), np.arctan2(b, a), *t
        m = np.array([[a, -b], [b, a]])
        shape[i] = (p - t) @ np.linalg.inv(m).T  # the face in the head's frame
    pose[:, 1] = np.unwrap(pose[:, 1])
    pose = lowpass(pose, cutoffs.head, fps)
    for region, idx in REGIONS.items():
        shape[:, idx] = lowpass(shape[:, idx], getattr(cutoffs, region), fps)
    scale, angle = np.exp(pose[:, 0]), pose[:, 1]
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    out = np.stack([c[:, None] * shape[..., 0] - s[:, None] * shape[..., 1],
                    s[:, None] * shape[..., 0] + c[:, None] * shape[..., 1]], axis=-1) + pose[:, None, 2:]
    return out.astype(np.float32)


@dataclass(frozen=True)
class OneEuro:
    """``min_cutoff`` (Hz): smoothing at rest; ``beta``: how fast the cutoff opens with speed
    (speed in inter-ocular distances per second); ``d_cutoff`` (Hz): derivative smoothing."""

    min_cutoff: float = 1.0
    beta: float = 1.0
    d_cutoff: float = 1.0


def _alpha(cutoff, dt):
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(points, fps, params=OneEuro(), scale=None):
    """Filter (N, 68, 2) points over time; ``scale`` normalises speed (default: median inter-ocular)."""
    x = np.asarray(points, np.float64)
    if len(x) < 2:
        return x.astype(np.float32)
    if scale is None:
        scale = float(np.median(np.linalg.norm(x[:, 45] - x[:, 36], axis=-1))) or 1.0
    dt = 1.0 / float(fps)
    out = np.empty_like(x)
    out[0] = x[0]
    dx_prev = np.zeros_like(x[0])
    a_d = _alpha(params.d_cutoff, dt)
    for i in range(1, len(x)):
        dx = (x[i] - out[i - 1]) / dt
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        cutoff = params.min_cutoff + params.beta * np.abs(dx_hat) / scale
        a = _alpha(cutoff, dt)
        out[i] = a * x[i] + (1 - a) * out[i - 1]
        dx_prev = dx_hat
    return out.astype(np.float32)


def jitter(points):
    """Mean frame-to-frame acceleration magnitude (pixels/frame^2) of a (N, 68, 2) track."""
    x = np.asarray(points, np.float64)
    if len(x) < 3:
        return 0.0
    return float(np.linalg.norm(np.diff(x, n=2, axis=0), axis=-1).mean())


def lag(raw, smoothed, max_lag=10):
    """Frames of delay of ``smoothed`` behind ``raw`` (argmax of the cross-correlation of velocities)."""
    r = np.diff(np.asarray(raw, np.float64).reshape(len(raw), -1), axis=0)
    s = np.diff(np.asarray(smoothed, np.float64).reshape(len(smoothed), -1), axis=0)
    best, best_k = -np.inf, 0
    for k in range(0, max_lag + 1):
        c = float((r[: len(r) - k] * s[k:]).sum())
        if c > best:
            best, best_k = c, k
    return best_k
