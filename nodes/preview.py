"""Pictures of a render for people: the one frame reader, the one H.264 writer, and a render's
preview movie and contact sheet.

- :func:`read_image` reads every pixel of a frame (a truncated or damaged file is a one-line
  MediaError, never a half-black picture); :func:`read_srgb8` shows it as sRGB, the way a viewer
  does: EXR frames hold premultiplied scene-linear colour (``monalisa:colorspace``, default
  lin_rec709) and are converted over black through OCIO; 8/16-bit frames are already sRGB.
- :func:`write_movie` writes uint8 RGB frames as H.264 (yuv420p) at exactly the frame rate it is
  given (23.976 as 24000/1001, 25 as 25), cropped to an even size. Every movie monalisa writes
  (render previews, publish review movies, evaluation clips) goes through it.
- :func:`write_preview` makes a render's preview movie and contact sheet from the written frames
  (so a resumed render previews every frame, and nothing is held in memory while rendering),
  scaled to at most ``SIDE`` pixels.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from monalisa.errors import InputError, MediaError
from monalisa.files import atomic_path
from monalisa.nodes import colour
from monalisa.nodes.sheet import write_contact_sheet
from monalisa.nodes.writer import matte_channel, sequence_stem

SIDE = 512
SHEET_FRAMES = 8
TILE = 256
MAX_FPS = 1000.0


def _one_line(text) -> str:
    return "; ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


def read_image(path) -> tuple:
    """(float32 (H, W, C) pixels of the first image, channel names, ImageSpec) of ``path``; every
    pixel is read, so a truncated or damaged file raises MediaError (one line naming the file)."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise MediaError(f"{path}: cannot be read as an image ({_one_line(oiio.geterror()) or 'unknown format'})")
    try:
        spec = inp.spec()
        pixels = inp.read_image(oiio.FLOAT)
        if pixels is None or inp.has_error:
            raise MediaError(f"{path}: cannot be read completely ({_one_line(inp.geterror()) or 'no pixels'}); "
                             "the file is truncated or damaged")
    finally:
        inp.close()
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels, list(spec.channelnames), spec


def _is_float(spec) -> bool:
    import OpenImageIO as oiio

    return spec.format.basetype in (oiio.HALF, oiio.FLOAT, oiio.DOUBLE)


def display_rgb(pixels, spec, space=None) -> np.ndarray:
    """float32 (H, W, 3) sRGB in [0, 1] of pixels read by :func:`read_image`: float frames are
    converted from ``space`` (default: their ``monalisa:colorspace``, else lin_rec709)."""
    if pixels.shape[2] < 3:
        rgb = np.repeat(pixels[..., :1], 3, axis=2)
    else:
        rgb = np.ascontiguousarray(pixels[..., :3], np.float32)
    if _is_float(spec):
        rgb = colour.convert(rgb, space or spec.getattribute("monalisa:colorspace") or colour.LINEAR, colour.SRGB)
    return np.clip(np.nan_to_num(rgb), 0.0, 1.0)


def to_uint8(rgb) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)


def read_srgb8(path, space=None) -> np.ndarray:
    """A frame as uint8 (H, W, 3) sRGB, as a viewer shows it (see :func:`display_rgb`)."""
    pixels, _, spec = read_image(path)
    return to_uint8(display_rgb(pixels, spec, space))


def movie_rate(fps) -> Fraction:
    """``fps`` as the exact rate a movie is written at: a Fraction as given, a float to the nearest
    ratio with a denominator up to 1001 (23.976... -> 24000/1001). InputError unless 0 < fps <= 1000."""
    try:
        rate = fps if isinstance(fps, Fraction) else Fraction(float(fps)).limit_denominator(1001)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"frame rate {fps!r} is not a number; give frames per second from 0 to {MAX_FPS:g}, "
                         "e.g. 24 or 23.976") from None
    if not 0 < rate <= MAX_FPS:
        raise InputError(f"frame rate {fps!r} must be above 0 and at most {MAX_FPS:g} frames per second")
    return rate


def write_movie(path, frames, fps) -> Path:
    """uint8 RGB (H, W, 3) ``frames`` (any iterable) -> an H.264 (yuv420p, crf 18) mp4 at exactly
    ``fps``, written atomically; every frame is cropped to the first one's size made even."""
    import av

    rate = movie_rate(fps)
    path = Path(path)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = None
            for rgb in frames:
                if stream is None:
                    h, w = rgb.shape[:2]
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
                    stream.options = {"crf": "18"}
                rgb = np.ascontiguousarray(rgb[: stream.height, : stream.width])
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
            if stream is None:
                raise MediaError(f"{path}: no frames to put in a movie")
            for packet in stream.encode():
                container.mux(packet)
    return path


def _display_frame(path, space) -> tuple:
    """(sRGB uint8 (h, w, 3) scaled to SIDE, face close-up uint8 (TILE, TILE, 3)) of one written frame."""
    pixels, names, spec = read_image(path)
    rgb = display_rgb(pixels, spec, space)  # premultiplied over black, as a viewer shows it
    name = matte_channel(names)
    matte = pixels[..., names.index(name)] if name else np.zeros(rgb.shape[:2], np.float32)
    scale = min(1.0, SIDE / max(rgb.shape[:2]))
    size = (max(2, int(round(rgb.shape[1] * scale)) // 2 * 2), max(2, int(round(rgb.shape[0] * scale)) // 2 * 2))
    return to_uint8(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)), _close_up(rgb, matte)


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
    return to_uint8(cv2.resize(square, (TILE, TILE), interpolation=interp))


def preview_paths(out) -> tuple:
    """out/mona.####.exr -> (out/mona.preview.mp4, out/mona.contact_sheet.png)."""
    stem = sequence_stem(out)
    return stem.with_name(stem.name + ".preview.mp4"), stem.with_name(stem.name + ".contact_sheet.png")


def write_preview(paths, out, space, fps=24.0) -> tuple:
    """Write the preview movie (at ``fps``) and contact sheet of the frames at ``paths``; returns their paths."""
    movie_path, sheet_path = preview_paths(out)
    picks = set(np.linspace(0, len(paths) - 1, min(SHEET_FRAMES, len(paths))).round().astype(int).tolist())
    tiles = []

    def frames():
        for i, path in enumerate(paths):
            rgb8, face8 = _display_frame(path, space)
            if i in picks:
                scale = TILE / rgb8.shape[0]
                small = cv2.resize(rgb8, (max(1, int(round(rgb8.shape[1] * scale))), TILE), interpolation=cv2.INTER_AREA)
                tiles.append(np.concatenate([small, face8], axis=1))
            yield rgb8

    write_movie(movie_path, frames(), fps)
    write_contact_sheet(sheet_path, [tiles[i:i + 4] for i in range(0, len(tiles), 4)])
    return movie_path, sheet_path
