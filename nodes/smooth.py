"""One-Euro filter (Casiez et al. 2012) applied per landmark coordinate along a track."""

from dataclasses import dataclass

import numpy as np


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
