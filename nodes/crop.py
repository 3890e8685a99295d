"""Crop geometry as data: the similarity transform from a face's landmarks to the aligned square."""

from dataclasses import dataclass

import cv2
import numpy as np

from monalisa.nodes.landmarks import check_points

#: stable points used for alignment: outer/inner eye corners, nose tip, mouth corners
STABLE = (36, 39, 42, 45, 30, 48, 54)

# Canonical positions of STABLE in a unit square framing jaw, brows and some forehead
# (before margin). x to the right, y down.
_TEMPLATE = np.array(
    [
        [0.25, 0.40],  # 36 right eye outer
        [0.41, 0.40],  # 39 right eye inner
        [0.59, 0.40],  # 42 left eye inner
        [0.75, 0.40],  # 45 left eye outer
        [0.50, 0.60],  # 30 nose tip
        [0.36, 0.76],  # 48 mouth right corner
        [0.64, 0.76],  # 54 mouth left corner
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class CropTransform:
    """``matrix`` (2x3 float64) maps image pixels to crop pixels of a ``size`` x ``size`` square."""

    matrix: np.ndarray
    size: int

    def inverse_matrix(self):
        return cv2.invertAffineTransform(np.asarray(self.matrix, dtype=np.float64))

    def apply(self, points):
        pts = np.asarray(points, dtype=np.float64)
        return (pts @ self.matrix[:, :2].T + self.matrix[:, 2]).astype(np.float32)

    def invert(self, points):
        inv = self.inverse_matrix()
        pts = np.asarray(points, dtype=np.float64)
        return (pts @ inv[:, :2].T + inv[:, 2]).astype(np.float32)

    def warp(self, image, border=cv2.BORDER_REFLECT101):
        return cv2.warpAffine(
            image, self.matrix, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=border
        )

    def scaled(self, new_size):
        factor = new_size / self.size
        return CropTransform(np.asarray(self.matrix, dtype=np.float64) * factor, int(new_size))


def align_face(points, size, margin=0.15):
    """Similarity transform from ``points`` (68, 2) to the canonical template in a ``size`` square.

    ``margin`` shrinks the template towards the centre by that fraction of the square on each side.
    """
    pts = check_points(points, "align_face points").astype(np.float64)
    scale = size * (1.0 - 2.0 * margin)
    dst = _TEMPLATE * scale + size * margin
    matrix, _ = cv2.estimateAffinePartial2D(pts[list(STABLE)], dst, method=cv2.LMEDS)
    return CropTransform(np.asarray(matrix, dtype=np.float64), int(size))
