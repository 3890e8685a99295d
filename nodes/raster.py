"""Landmarks -> the paper's 3-channel image of coloured polylines, one fixed colour per part.

Colours (RGB): jaw (255, 0, 0), right_brow (0, 255, 0), left_brow (0, 0, 255),
nose_bridge (255, 255, 0), nostrils (255, 0, 255), right_eye (0, 255, 255),
left_eye (255, 128, 0), outer_lips (128, 0, 255), inner_lips (255, 255, 255).
Lines are drawn without anti-aliasing (cv2.LINE_8), so the output is deterministic.
"""

import cv2
import numpy as np

from monalisa.nodes.landmarks import PARTS, check_points

COLOURS = {
    "jaw": (255, 0, 0),
    "right_brow": (0, 255, 0),
    "left_brow": (0, 0, 255),
    "nose_bridge": (255, 255, 0),
    "nostrils": (255, 0, 255),
    "right_eye": (0, 255, 255),
    "left_eye": (255, 128, 0),
    "outer_lips": (128, 0, 255),
    "inner_lips": (255, 255, 255),
}


def rasterize(points, size, thickness=None):
    """Draw ``points`` (68, 2, pixels of the size-square) as uint8 (size, size, 3) RGB."""
    pts = check_points(points, "rasterize points")
    if thickness is None:
        thickness = max(1, int(round(size / 128)))
    image = np.zeros((size, size, 3), dtype=np.uint8)
    for name, (indices, closed) in PARTS.items():
        poly = np.round(pts[list(indices)]).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(image, [poly], closed, COLOURS[name], thickness, cv2.LINE_8)
    return image
