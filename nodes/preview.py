"""Pictures of a render for people: an H.264 preview movie and a contact sheet, read back from disk.

Both are made from the written frames (so a resumed render previews every frame, and nothing is held
in memory while rendering), scaled to at most ``SIDE`` pixels, sRGB-encoded.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from monalisa.files import atomic_path
from monalisa.nodes import colour
from monalisa.nodes.sheet import write_contact_sheet
from monalisa.nodes.writer import sequence_stem

SIDE = 512
SHEET_FRAMES = 8
TILE = 256


def _display_frame(path, space) -> tuple:
    """(sRGB uint8 (h, w, 3) scaled to SIDE, face close-up uint8 (TILE, TILE, 3)) of one written frame."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    pix = buf.get_pixels(oiio.FLOAT)
    names = list(buf.spec().channelnames)
    rgb = pix[..., :3]
    if Path(path).suffix.lower() == ".exr":
        rgb = colour.convert(rgb, space, colour.SRGB)  # premultiplied over black, as a viewer shows it
    else:
        rgb = rgb.copy()
    matte = pix[..., names.index("matte")] if "matte" in names else np.zeros(rgb.shape[:2], np.float32)
    rgb = np.clip(rgb, 0.0, 1.0)
    scale = min(1.0, SIDE / max(rgb.shape[:2]))
    size = (max(2, int(round(rgb.shape[1] * scale)) // 2 * 2), max(2, int(round(rgb.shape[0] * scale)) // 2 * 2))
    rgb8 = np.round(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) * 255).astype(np.uint8)
    return rgb8, _close_up(rgb, matte)


def _close_up(rgb, matte) -> np.ndarray:
    """A TILE-square close-up of the face (the matte's extent, doubled), or the whole frame without one."""
    h, w = matte.shape
    ys, xs = np.nonzero(matte > 0.05)
    if len(xs):
        cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
        half = max(xs.max() - xs.min(), ys.max() - ys.min())
    else:
        cx, cy, half = w / 2, h / 2, max(w, h) / 2
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    crop = rgb[y0:y1, x0:x1]
    side = max(crop.shape[:2])
    square = np.zeros((side, side, 3), np.float32)
    square[:crop.shape[0], :crop.shape[1]] = crop
    interp = cv2.INTER_AREA if side > TILE else cv2.INTER_CUBIC
    return np.round(np.clip(cv2.resize(square, (TILE, TILE), interpolation=interp), 0, 1) * 255).astype(np.uint8)


def preview_paths(out) -> tuple:
    """out/mona.####.exr -> (out/mona.preview.mp4, out/mona.contact_sheet.png)."""
    stem = sequence_stem(out)
    return stem.with_name(stem.name + ".preview.mp4"), stem.with_name(stem.name + ".contact_sheet.png")


def write_preview(paths, out, space, fps: float = 24.0) -> tuple:
    """Write the preview movie and contact sheet of the frames at ``paths``; returns their paths."""
    import av

    movie_path, sheet_path = preview_paths(out)
    picks = set(np.linspace(0, len(paths) - 1, min(SHEET_FRAMES, len(paths))).round().astype(int).tolist())
    tiles = []
    with atomic_path(movie_path) as tmp:
        container = av.open(str(tmp), "w", format="mp4")
        stream = None
        for i, path in enumerate(paths):
            rgb8, face8 = _display_frame(path, space)
            if stream is None:
                stream = container.add_stream("libx264", rate=int(round(fps)))
                stream.width, stream.height, stream.pix_fmt = rgb8.shape[1], rgb8.shape[0], "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb8, format="rgb24")):
                container.mux(packet)
            if i in picks:
                scale = TILE / rgb8.shape[0]
                small = cv2.resize(rgb8, (max(1, int(round(rgb8.shape[1] * scale))), TILE), interpolation=cv2.INTER_AREA)
                tiles.append(np.concatenate([small, face8], axis=1))
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
        container.close()
    rows = [tiles[i:i + 4] for i in range(0, len(tiles), 4)]
    write_contact_sheet(sheet_path, rows)
    return movie_path, sheet_path
