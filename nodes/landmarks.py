"""The iBUG-68 landmark layout as data, and checks on (68, 2) point arrays."""

import numpy as np

from monalisa.errors import ShapeError

NUM_POINTS = 68

#: part name -> (point indices, closed polyline?)
PARTS = {
    "jaw": (tuple(range(0, 17)), False),
    "right_brow": (tuple(range(17, 22)), False),
    "left_brow": (tuple(range(22, 27)), False),
    "nose_bridge": (tuple(range(27, 31)), False),
    "nostrils": (tuple(range(31, 36)), False),
    "right_eye": (tuple(range(36, 42)), True),
    "left_eye": (tuple(range(42, 48)), True),
    "outer_lips": (tuple(range(48, 60)), True),
    "inner_lips": (tuple(range(60, 68)), True),
}

RIGHT_EYE_OUTER = 36
LEFT_EYE_OUTER = 45


def check_points(points, what="landmarks"):
    """Return ``points`` as float32 (68, 2); raise ShapeError if the shape is wrong or values non-finite."""
    arr = np.asarray(points, dtype=np.float32)
    if arr.shape != (NUM_POINTS, 2):
        raise ShapeError(what, (NUM_POINTS, 2), arr.shape)
    if not np.isfinite(arr).all():
        bad = sorted(set(np.nonzero(~np.isfinite(arr))[0].tolist()))
        raise ShapeError(f"{what} (non-finite values at points {bad})", (NUM_POINTS, 2), arr.shape)
    return arr


def inter_ocular(points):
    """Distance between the outer eye corners (points 36 and 45), in the points' units."""
    arr = check_points(points)
    return float(np.linalg.norm(arr[LEFT_EYE_OUTER] - arr[RIGHT_EYE_OUTER]))


def _mouth_frame(arr):
    """(width, down): the mouth's width and its unit "down", perpendicular to the corners 48-54."""
    across = arr[54] - arr[48]
    width = max(float(np.linalg.norm(across)), 1e-9)
    return width, np.array([-across[1], across[0]]) / width


#: inner-lip pairs (upper, lower), left to right
LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
#: eyelid pairs (upper, lower) of each eye
LID_PAIRS = (((37, 41), (38, 40)), ((43, 47), (44, 46)))


def mouth_opening(points) -> float:
    """Inner-lip height / mouth width: the mean gap of the pairs 61-67, 62-66, 63-65 measured along the
    face's own "down" (perpendicular to the mouth corners 48-54), so lips that cross read negative."""
    p = np.asarray(points, np.float64)
    width, down = _mouth_frame(p)
    upper, lower = (list(i) for i in zip(*LIP_PAIRS))
    return float(((p[lower] - p[upper]) @ down).mean() / width)


def eye_opening(points) -> float:
    """Eye aspect ratio of both eyes: mean lid gap / eye width (points 36-47), ~0.25-0.35 open, <0.1 shut."""
    p = np.asarray(points, np.float64)
    ratios = []
    for (a, b), corners in zip(LID_PAIRS, ((36, 39), (42, 45))):
        width = max(float(np.linalg.norm(p[corners[1]] - p[corners[0]])), 1e-9)
        ratios.append((np.linalg.norm(p[a[0]] - p[a[1]]) + np.linalg.norm(p[b[0]] - p[b[1]])) / (2 * width))
    return float(np.mean(ratios))


def uncross_lips(points) -> np.ndarray:
    """``points`` with no inner lip crossing the other: a pair whose upper point lies below its lower
    point (along the mouth's "down") meets at their midpoint, so the mouth is closed, not inside out."""
    p = np.array(points, np.float32)
    _, down = _mouth_frame(p.astype(np.float64))
    for upper, lower in LIP_PAIRS:
        gap = float((p[lower] - p[upper]) @ down)
        if gap < 0:
            mid = (p[lower] + p[upper]) / 2
            p[upper] = p[lower] = mid
    return p
