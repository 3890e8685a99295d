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
