"""Contact sheets: rows of uint8 RGB tiles as one PNG, the pictures people look at.

One writer for every sheet monalisa makes (training previews, identity packs, benchmarks, renders).
Torch-free: tiles are numpy uint8 arrays, (H, W, 3) RGB or (H, W) grey. Tiles of a row are
placed left to right, top-aligned; rows are stacked top to bottom, left-aligned; gaps are black.
"""
from __future__ import annotations

import numpy as np

from monalisa.errors import MonalisaError, ShapeError
from monalisa.files import write_bytes

__all__ = ["contact_sheet", "sheet_image", "write_contact_sheet"]


def _tile(tile) -> np.ndarray:
    a = np.asarray(tile)
    if a.dtype != np.uint8:
        raise ShapeError(f"contact sheet tile (dtype {a.dtype}, uint8 expected)", ("H", "W", 3), a.shape)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ShapeError("contact sheet tile", ("H", "W", 3), a.shape)
    return a


def sheet_image(rows) -> np.ndarray:
    """Rows of tiles -> one uint8 (H, W, 3) RGB image."""
    rows = [[_tile(t) for t in row] for row in rows]
    rows = [row for row in rows if row]
    if not rows:
        raise ShapeError("contact sheet", ("rows", "tiles"), (0, 0))
    heights = [max(t.shape[0] for t in row) for row in rows]
    widths = [sum(t.shape[1] for t in row) for row in rows]
    sheet = np.zeros((sum(heights), max(widths), 3), np.uint8)
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for t in row:
            sheet[y:y + t.shape[0], x:x + t.shape[1]] = t
            x += t.shape[1]
        y += h
    return sheet


def contact_sheet(rows) -> bytes:
    """Rows (a list of lists of uint8 (H, W, 3) RGB tiles) -> PNG bytes."""
    import cv2

    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet_image(rows), cv2.COLOR_RGB2BGR))
    if not ok:
        raise MonalisaError("OpenCV could not encode the contact sheet as PNG")
    return png.tobytes()


def write_contact_sheet(path, rows) -> None:
    """Write :func:`contact_sheet` of ``rows`` to ``path`` atomically."""
    write_bytes(path, contact_sheet(rows))
