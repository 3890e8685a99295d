"""Paste a generated face square back into the full-resolution (warped) still, under a soft matte.

The face comes back through the inverse of its crop transform (bicubic); the matte is the face's
outline (jaw, brows lifted to the hairline) in still pixels, pulled in and feathered by a fraction
of the eye distance, and kept inside the crop square so nothing from the square's border shows.
Both are computed only over the square's bounding box; the rest of the frame is left as it is.
"""
from __future__ import annotations

import cv2
import numpy as np

from monalisa.nodes.crop import CropTransform
from monalisa.nodes.landmarks import inter_ocular

#: default feather of the matte, in eye distances
FEATHER = 0.25
_JAW, _BROWS = list(range(0, 17)), list(range(17, 27))


def face_outline(points) -> np.ndarray:
    """(N, 2) outline of the face: the jaw, then the brows lifted towards the hairline."""
    pts = np.asarray(points, np.float64)
    up = pts[27] - pts[8]  # chin -> nose bridge: the face's vertical
    lift = 0.25 * up
    return np.concatenate([pts[_JAW], pts[_BROWS][::-1] + lift])


def square_box(transform: CropTransform, width: int, height: int, pad: int = 2):
    """(x0, y0, x1, y1): the crop square's bounding box in still pixels, clipped to the frame."""
    s = transform.size
    corners = transform.invert(np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float64))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + pad
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def face_matte(points, transform: CropTransform, width: int, height: int, feather: float = FEATHER) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 over the face, 0 outside it and outside the crop square."""
    matte = np.zeros((height, width), np.float32)
    x0, y0, x1, y1 = square_box(transform, width, height)
    if x1 <= x0 or y1 <= y0:
        return matte
    eyes = inter_ocular(points)
    sigma = max(0.5, feather * eyes / 2.0)
    shrink = int(round(sigma))  # pull the outline in so the feather's half-way line sits inside it
    region = np.zeros((y1 - y0, x1 - x0), np.float32)
    poly = np.round((face_outline(points) - (x0, y0)) * 16).astype(np.int32)
    cv2.fillPoly(region, [cv2.convexHull(poly)], 1.0, lineType=cv2.LINE_AA, shift=4)
    if shrink > 0:
        region = cv2.erode(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1,) * 2))
    # inside the crop square, away from its border by the feather too
    s = transform.size
    inset = min(s / 4.0, max(1.0, 2.0 * sigma / _scale(transform)))  # crop pixels
    square = np.array([[inset, inset], [s - inset, inset], [s - inset, s - inset], [inset, s - inset]])
    sq = np.zeros_like(region)
    cv2.fillPoly(sq, [np.round((transform.invert(square) - (x0, y0)) * 16).astype(np.int32)], 1.0,
                 lineType=cv2.LINE_AA, shift=4)
    region = np.minimum(region, sq)
    region = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_CONSTANT)
    matte[y0:y1, x0:x1] = np.clip(region, 0.0, 1.0)
    return matte


def _scale(transform: CropTransform) -> float:
    """Still pixels per crop pixel."""
    m = np.asarray(transform.matrix)
    return 1.0 / float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def uncrop(face, transform: CropTransform, width: int, height: int):
    """(face in still pixels over the square's box, box): the face square mapped back (bicubic)."""
    x0, y0, x1, y1 = square_box(transform, width, height)
    shifted = np.asarray(transform.matrix, np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)  # box pixel -> crop pixel
    back = cv2.warpAffine(np.asarray(face, np.float32), shifted, (x1 - x0, y1 - y0),
                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return back, (x0, y0, x1, y1)


def composite(base, face, matte, transform: CropTransform) -> np.ndarray:
    """``base`` (H, W, 3) with ``face`` (R, R, 3, same colour space) laid over it through ``matte``."""
    h, w = base.shape[:2]
    out = np.array(base, np.float32, copy=True)
    back, (x0, y0, x1, y1) = uncrop(face, transform, w, h)
    if x1 <= x0 or y1 <= y0:
        return out
    m = matte[y0:y1, x0:x1, None]
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1.0 - m) + back * m
    return out
