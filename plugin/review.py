"""Review media of a rendered sequence for a publish: a contact sheet PNG and an H.264 preview movie.

Frames are read and shown as sRGB by the one reader, and the movie is written by the one H.264
writer, of ``monalisa.nodes.preview`` (EXR frames: premultiplied scene-linear colour over black,
converted through OCIO; the movie at exactly the publish's frame rate).
"""

from __future__ import annotations

import numpy as np

from monalisa.nodes.preview import read_srgb8, write_movie as _write_movie

__all__ = ["pick", "read_srgb8", "write_contact_sheet", "write_movie"]

THUMB = 256  # contact sheet tile width


def pick(frames, n: int) -> list:
    """Up to ``n`` frames spread evenly over ``frames``, first and last included."""
    frames = list(frames)
    if len(frames) <= n:
        return frames
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in sorted(set(idx.tolist()))]


def _thumb(rgb: np.ndarray, width: int = THUMB) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    return cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def write_contact_sheet(path, files, per_row: int = 4) -> None:
    from monalisa.nodes.sheet import write_contact_sheet as write

    tiles = [_thumb(read_srgb8(f)) for f in files]
    write(path, [tiles[i:i + per_row] for i in range(0, len(tiles), per_row)])


def write_movie(path, files, fps) -> None:
    """An H.264 movie of the frame files ``files`` in order, at exactly ``fps``."""
    _write_movie(path, (read_srgb8(f) for f in files), fps)
