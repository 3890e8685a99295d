"""Rendered frames on disk: frame-number patterns, atomic EXR/PNG/JPEG/TIFF writes with provenance.

EXR frames are half float, zip-compressed (one scanline per block, like Nuke's default), colour
premultiplied by A as EXR expects, with the still's data window, display window and pixel aspect
(an overscan still renders with its overscan, an anamorphic one stays anamorphic). Channels, named
as Nuke and Blender read them:

- ``R G B A``: colour and alpha (Nuke's rgba; Blender's Combined/Alpha);
- ``matte.A``: the face matte in its own layer ``matte`` (Nuke: ``matte.alpha``; Blender: ``matte``);
- ``forward.u forward.v``: forward motion vectors, where a pixel of this frame is in the next one, in
  pixels per frame, x to the right and **y up** (Nuke's ``forward`` layer, part of its ``motion``
  layer, read by VectorBlur with uv = ``forward`` or ``motion`` without a flip);
- ``Vector.X Vector.Y Vector.Z Vector.W``: the same motion as Blender's Vector pass (the ``Vector``
  output of an Image node, for Vector Blur's Speed): XY the motion from the previous frame to this
  one, ZW from this frame to the next (Blender's EEVEE velocity shader says so), pixels, y up; XY
  repeats the forward motion (constant speed across the frame; monalisa computes no backward field).
  The render path's arrays are y down (image rows); the sign is turned here, at the file.

Frames written before these names (``matte``, ``motion.u``/``motion.v`` y down) are still read by
:func:`matte_channel`. PNG/JPEG/TIFF previews are sRGB-encoded RGB(A), without windows. Every file
carries ``monalisa:*`` header attributes (``monalisa:synthetic = 1`` always) and no time stamp:
EXR as typed attributes; PNG, JPEG and TIFF, whose writers drop custom attributes, as one JSON object
in ``ImageDescription`` (the one text field all three keep), which :func:`read_header` reads back;
so the same inputs give byte-identical files. A write goes to a hidden temporary name in the same
folder and is renamed into place; ``monalisa.files.remove_stale_temps`` clears what a killed run left.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from monalisa.errors import InputError, MediaError
from monalisa.nodes import frames as grammar

FLOAT_FORMATS = {".exr": "openexr"}
DISPLAY_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}
#: in the order OpenEXR reads them back
EXR_CHANNELS = ("R", "G", "B", "A", "Vector.X", "Vector.Y", "Vector.Z", "Vector.W", "forward.u", "forward.v", "matte.A")
MATTE = "matte.A"
#: names of the matte in frames this and earlier versions wrote, newest first
MATTE_NAMES = (MATTE, "matte")


def matte_channel(names) -> str | None:
    """The matte's channel among ``names`` (a frame's channel names), or None when it has none."""
    return next((n for n in MATTE_NAMES if n in names), None)


def has_pattern(path) -> bool:
    return grammar.has_pattern(path)


def sequence_stem(pattern) -> Path:
    """``out/mona.####.exr`` -> ``out/mona``: where files about the whole sequence go (``mona.track.json``...)."""
    return Path(grammar.sequence_stem(pattern))


def frame_path(pattern, frame: int) -> Path:
    """``out.####.exr`` / ``out.%04d.exr`` / ``out.%d.exr`` / ``out.@@@@.exr`` -> ``out.1001.exr`` (see
    monalisa.nodes.frames); a name without a frame token is the one file of a single-frame render."""
    return Path(grammar.frame_path(pattern, frame)) if has_pattern(pattern) else Path(pattern)


def check_output(pattern, frames) -> Path:
    """Refuse (one line) an output pattern that cannot hold ``frames``; returns its folder."""
    pattern = Path(pattern)
    ext = pattern.suffix.lower()
    if ext not in FLOAT_FORMATS and ext not in DISPLAY_FORMATS:
        raise InputError(f"--out {pattern}: unknown image type {ext or '(none)'}; use .exr (or .png, .jpg, .tif "
                         "for previews)")
    if has_pattern(pattern):
        grammar.parse_pattern(pattern)  # one token, a sane padding
    elif len(frames) > 1:
        raise InputError(f"--out {pattern}: {len(frames)} frames need a frame-number pattern in the name, "
                         f"e.g. {pattern.with_name(pattern.stem + '.####' + pattern.suffix)}")
    folder = pattern.parent if str(pattern.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {pattern}: {folder} is a file, not a folder; choose another --out")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK) or not _can_create(probe):
        raise InputError(f"--out {pattern}: cannot write in {probe}; choose a writable folder for --out")
    return folder


def _can_create(folder: Path) -> bool:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def read_header(path) -> dict | None:
    """The ``monalisa:*`` attributes of an image file, or None when it cannot be read as an image."""
    import OpenImageIO as oiio

    if not Path(path).is_file():
        return None
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        oiio.geterror()  # clear it: a pending error is printed at exit otherwise
        return None
    try:
        spec = inp.spec()
        attrs = {a.name: a.value for a in spec.extra_attribs if a.name.startswith("monalisa:")}
        attrs.update(_described(spec.getattribute("ImageDescription")))
        attrs["channels"] = tuple(spec.channelnames)
        attrs["size"] = (spec.width, spec.height)
        return attrs
    finally:
        inp.close()


def _described(text) -> dict:
    """The ``monalisa:*`` keys of a display frame's ImageDescription JSON (none for any other text)."""
    if not isinstance(text, str) or not text.startswith("{") or len(text) > 1_000_000:
        return {}
    try:
        values = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(values, dict):
        return {}
    return {k: v for k, v in values.items() if isinstance(k, str) and k.startswith("monalisa:")
            and isinstance(v, (str, int, float)) and not isinstance(v, bool)}


def _spec(width, height, names, fmt, metadata, exr, window=None):
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(width, height, len(names), fmt)
    if exr and window is not None:
        spec.x, spec.y = window.x, window.y
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = (window.full_x, window.full_y,
                                                                       window.full_width, window.full_height)
        spec.attribute("PixelAspectRatio", float(window.pixel_aspect))
    spec.channelnames = tuple(names)
    if "A" in names:
        spec.alpha_channel = names.index("A")
    if exr:
        spec.attribute("compression", "zips")  # zip per scanline: lossless, 2x faster to write than "zip"
    spec.attribute("DateTime", "")  # no time stamp: identical inputs give identical bytes
    spec.attribute("Software", "monalisa")
    values = {key: value if isinstance(value, (int, float)) else (str(value) or "none")  # "" would vanish
              for key, value in sorted(metadata.items())}
    if exr:
        for key, value in values.items():
            spec.attribute(key, value)
    else:
        spec.attribute("ImageDescription", json.dumps(values, sort_keys=True))
    return spec


def write_frame(path, rgb, alpha, matte, motion, metadata: dict, display=None, window=None) -> None:
    """Write one frame atomically. ``rgb`` float32 (H, W, 3) straight colour in the working space;
    ``alpha``/``matte`` (H, W); ``motion`` (H, W, 2) in pixels, y down (image rows). ``display``: a
    function turning ``rgb`` into sRGB [0, 1] for PNG/JPEG/TIFF outputs (EXR keeps the working space).
    ``window``: the still's :class:`monalisa.nodes.media.Window`, kept in EXR frames."""
    import OpenImageIO as oiio

    from monalisa.files import atomic_path

    path = Path(path)
    ext = path.suffix.lower()
    h, w = rgb.shape[:2]
    a = np.ones((h, w), np.float32) if alpha is None else np.asarray(alpha, np.float32)
    if ext in FLOAT_FORMATS:
        y_up = np.asarray(motion, np.float32) * np.array([1.0, -1.0], np.float32)  # rows down -> y up
        planes = [rgb * a[..., None], a[..., None], y_up, y_up, y_up, matte[..., None]]  # Vector.XY, .ZW, forward
        pixels, names, fmt = np.concatenate(planes, axis=2).astype(np.float16), EXR_CHANNELS, oiio.HALF
        kind = FLOAT_FORMATS[ext]
    else:
        srgb = np.clip(display(rgb) if display else rgb, 0.0, 1.0)
        bits = oiio.UINT16 if ext in (".tif", ".tiff") else oiio.UINT8
        scale = 65535.0 if bits == oiio.UINT16 else 255.0
        planes = [srgb] if alpha is None or ext in (".jpg", ".jpeg") else [srgb, a[..., None]]
        names = ("R", "G", "B") if len(planes) == 1 else ("R", "G", "B", "A")
        dtype = np.uint16 if bits == oiio.UINT16 else np.uint8
        pixels, fmt = np.round(np.concatenate(planes, axis=2) * scale).astype(dtype), bits
        kind = DISPLAY_FORMATS[ext]
    spec = _spec(w, h, names, fmt, metadata, ext in FLOAT_FORMATS, window)
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(kind)
        if out is None or not out.open(str(tmp), spec):
            raise MediaError(f"{path}: cannot write ({oiio.geterror() or (out and out.geterror())}); check the folder")
        ok = out.write_image(np.ascontiguousarray(pixels))
        error = out.geterror()
        out.close()
        if not ok:
            raise MediaError(f"{path}: writing failed ({error}); check free disk space")
