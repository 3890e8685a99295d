"""Review media of a rendered sequence: a contact sheet PNG and an H.264 preview movie (sRGB).

EXR frames hold premultiplied scene-linear colour (``monalisa:colorspace``, default lin_rec709);
they are shown over black, converted to sRGB through OCIO (monalisa.nodes.colour).
"""

from __future__ import annotations

import numpy as np

from monalisa.errors import MediaError

THUMB = 256  # contact sheet tile width


def pick(frames, n: int) -> list:
    """Up to ``n`` frames spread evenly over ``frames``, first and last included."""
    frames = list(frames)
    if len(frames) <= n:
        return frames
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int)
    return [frames[i] for i in sorted(set(idx.tolist()))]


def read_srgb8(path) -> np.ndarray:
    """A rendered frame as uint8 (H, W, 3) sRGB."""
    import OpenImageIO as oiio

    from monalisa.nodes import colour

    buf = oiio.ImageBuf(str(path))
    if buf.has_error:
        raise MediaError(f"{path}: cannot read ({buf.geterror()}); re-render this frame")
    spec = buf.spec()
    pixels = buf.get_pixels(oiio.FLOAT)
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] < 3:
        raise MediaError(f"{path}: expected an RGB image; re-render this frame")
    rgb = np.ascontiguousarray(pixels[..., :3], np.float32)
    if spec.format.basetype in (oiio.HALF, oiio.FLOAT, oiio.DOUBLE):
        space = spec.getattribute("monalisa:colorspace") or colour.LINEAR
        try:
            return colour.to_srgb8(rgb, space)
        except Exception:
            return colour.to_srgb8(rgb, colour.LINEAR)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


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


def write_movie(path, files, fps: float = 24.0) -> None:
    """An H.264 (yuv420p) movie of ``files`` in order; odd sizes lose their last row/column."""
    from fractions import Fraction

    import av

    from monalisa.files import atomic_path

    if not files:
        raise MediaError(f"{path}: no frames to put in a movie")
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), "w", format="mp4")
        try:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18"}
            for i, f in enumerate(files):
                rgb = read_srgb8(f)
                if i == 0:
                    h, w = rgb.shape[:2]
                    stream.width, stream.height = w - w % 2, h - h % 2
                rgb = np.ascontiguousarray(rgb[: stream.height, : stream.width])
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
