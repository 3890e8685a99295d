"""The mouth interior: where the driven lips open wider than the still's, paint the hole between them.

The landmark warp splits the lips (``nodes.warp``): the upper lip follows the upper inner-lip points,
the lower lip the lower ones, and the inner-lip polygon 60-67 between them holds nothing of a
closed-mouth still. ``MouthPainter.paint`` fills it, per frame, at the still's resolution:

1. the mouth patch: a similarity transform (:func:`patch_transform`) puts the driven mouth in a
   ``R`` x ``R`` square (its corners 48-54 level, ``WIDTH`` of the square apart), and the rendered
   frame is resampled into it in sRGB;
2. the hole (:func:`hole_mask`): the driven inner-lip polygon in the patch, grown by one patch pixel,
   is blanked and the mouth model (``nodes.mouthmodel``, bundled in monalisa/weights/mouth) paints
   teeth, tongue and the dark of the mouth there from the lips and skin around it, then shades the
   rim where the lips meet the interior (:func:`cavity_shade`). Unshaded, the network's dull,
   lip-like colours read as closed lips (dlib puts the inner lips together on them); with the
   shadow a parted mouth reads as open, even where the hole is a thin line;
3. the patch goes back through the inverse transform and is laid over the frame under a soft matte:
   the driven polygon, feathered by ``FEATHER`` still pixels, times the strength
   :func:`strength` (how much wider the driven mouth is open than the still's own, in
   ``nodes.landmarks.mouth_opening``: 0 where the still shows as much as the frame asks for, 1 from
   ``FULL_OPEN`` more). The matte joins the `matte` channel.

Torch-free; the same geometry makes the training pairs (``models/mouth_data.py``).
"""
from __future__ import annotations

import cv2
import numpy as np

from monalisa.errors import ConfigError
from monalisa.nodes import colour
from monalisa.nodes.landmarks import mouth_opening

MODES = ("on", "off")
INNER_LIPS = list(range(60, 68))
OUTER_LIPS = list(range(48, 60))
WIDTH = 0.55  # mouth corner distance, as a fraction of the patch side
FULL_OPEN = 0.06  # opening (``landmarks.mouth_opening``) beyond the still's at which the paint is opaque
FEATHER = 0.75  # matte feather, still pixels (Gaussian sigma)
CAVITY = 0.3  # how much darker the paint is in the rim of the hole (cavity_shade)
CAVITY_RIM = 2.0  # the rim's width, patch pixels (the mouth is 35 px wide)
_UPPER, _LOWER = (61, 62, 63), (67, 66, 65)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"--mouth {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def strength(driven_points, still_opening: float) -> float:
    """0..1: how much of the hole is the painted interior (0 where the still's own mouth is as open)."""
    return float(np.clip((mouth_opening(driven_points) - still_opening) / FULL_OPEN, 0.0, 1.0))


def patch_transform(points, size: int) -> np.ndarray:
    """float64 (2, 3): image pixels -> mouth patch pixels (a similarity, corners level)."""
    pts = np.asarray(points, np.float64)
    left, right = pts[48], pts[54]
    axis = right - left
    length = max(1e-6, float(np.linalg.norm(axis)))
    scale = WIDTH * size / length
    c, s = axis / length * scale
    centre = pts[OUTER_LIPS].mean(axis=0)
    m = np.array([[c, s, 0.0], [-s, c, 0.0]])
    m[:, 2] = (size - 1) / 2.0 - m[:, :2] @ centre
    return m


def polygon_mask(points, transform, size: int, grow: float = 0.0) -> np.ndarray:
    """float32 (size, size): the inner-lip polygon under ``transform``, anti-aliased, grown by ``grow`` px."""
    poly = np.asarray(points, np.float64)[INNER_LIPS] @ transform[:, :2].T + transform[:, 2]
    mask = np.zeros((size, size), np.float32)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    if grow > 0:
        r = int(np.ceil(grow))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    return mask


def hole_mask(points, transform, size: int) -> np.ndarray:
    """The region the mouth model paints: the polygon grown by one patch pixel, 0/1."""
    return (polygon_mask(points, transform, size, grow=1.0) > 0.0).astype(np.float32)


def cavity_shade(hole) -> np.ndarray:
    """float32 (R, R): the shadow where the lips meet the mouth's interior: 1 - CAVITY within CAVITY_RIM patch
    pixels of the hole's edge, back to 1 (the network's paint) at twice that depth; 1 outside the hole. A thin
    hole (a mouth just parted) is a dark line; a wide one keeps its painted teeth and tongue inside the rim."""
    depth = cv2.distanceTransform((hole > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    dark = np.clip((2.0 * CAVITY_RIM - depth) / CAVITY_RIM, 0.0, 1.0) * (depth > 0)
    return (1.0 - CAVITY * dark).astype(np.float32)


def model_input(patch_srgb, hole) -> np.ndarray:
    """(4, R, R) float32: sRGB in [-1, 1] with the hole blanked (0), and the hole itself."""
    rgb = np.asarray(patch_srgb, np.float32) * 2.0 - 1.0
    rgb = rgb * (1.0 - hole[..., None])
    return np.concatenate([np.transpose(rgb, (2, 0, 1)), hole[None]], axis=0)


class MouthPainter:
    """Paints the mouth interior of each rendered frame (see the module docstring)."""

    def __init__(self, model, still_points):
        self.model = model  # nodes.mouthmodel.MouthModel
        self.size = model.resolution
        self.still_opening = mouth_opening(still_points)

    def box(self, points, width, height):
        """(x0, y0, x1, y1): the patch's footprint in the frame, clipped."""
        inv = cv2.invertAffineTransform(patch_transform(points, self.size))
        s = self.size
        corners = np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float64) @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
        return max(0, x0), max(0, y0), min(width, x1), min(height, y1)

    def paint(self, rgb, points, space):
        """(rgb with the interior painted, matte float32 (H, W)); ``rgb`` (H, W, 3) in colour space ``space``."""
        h, w = rgb.shape[:2]
        matte = np.zeros((h, w), np.float32)
        weight = strength(points, self.still_opening)
        x0, y0, x1, y1 = self.box(points, w, h)
        if weight <= 0.0 or x1 <= x0 or y1 <= y0:
            return rgb, matte
        s = self.size
        m = patch_transform(points, s)
        m_box = m.copy()
        m_box[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # box pixel -> patch pixel
        region = np.clip(colour.convert(np.ascontiguousarray(rgb[y0:y1, x0:x1]), space, colour.SRGB), 0.0, 1.0)
        patch = cv2.warpAffine(region.astype(np.float32), m_box, (s, s), flags=cv2.INTER_AREA if m[0, 0] < 1 else
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        hole = hole_mask(points, m, s)
        painted = self.model.paint(model_input(patch, hole)[None])[0]  # (3, s, s) in [-1, 1]
        painted = np.clip((np.transpose(painted, (1, 2, 0)) + 1.0) / 2.0, 0.0, 1.0)
        painted = painted * cavity_shade(hole)[..., None]
        back = cv2.warpAffine(painted, m_box, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        back = colour.convert(np.clip(back, 0.0, 1.0), colour.SRGB, space)
        local = _feathered_polygon(points, (x0, y0), (x1 - x0, y1 - y0)) * np.float32(weight)
        out = np.array(rgb, np.float32, copy=True)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1.0 - local[..., None]) + back * local[..., None]
        matte[y0:y1, x0:x1] = local
        return out, matte


def _feathered_polygon(points, origin, size) -> np.ndarray:
    """float32 (h, w): the inner-lip polygon over a box at ``origin``, feathered by FEATHER px (its edge ~0.5)."""
    w, h = size
    poly = np.asarray(points, np.float64)[INNER_LIPS] - origin
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # grown 1 px, so the feather's half-way line is outside it
    return np.clip(cv2.GaussianBlur(mask, (0, 0), sigmaX=FEATHER, borderType=cv2.BORDER_CONSTANT), 0.0, 1.0)


class DarkFill:
    """The plainest interior, a baseline the mouth model is measured against: the lips' mean colour
    around the hole, darkened to DARK of it (same ``paint`` interface as ``nodes.mouthmodel.MouthModel``)."""

    DARK = 0.3
    sha256 = "dark-fill"

    def __init__(self, resolution: int = 64):
        self.resolution = int(resolution)

    def paint(self, inputs) -> np.ndarray:
        out = np.empty((len(inputs), 3) + inputs.shape[2:], np.float32)
        ring_size = max(3, self.resolution // 16) * 2 + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ring_size, ring_size))
        for i, x in enumerate(np.asarray(inputs, np.float32)):
            hole = x[3] > 0.5
            ring = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool) & ~hole
            lips = (x[:3, ring].mean(axis=1) + 1.0) / 2.0 if ring.any() else np.full(3, 0.5, np.float32)
            out[i] = (self.DARK * lips * 2.0 - 1.0)[:, None, None]
        return out

