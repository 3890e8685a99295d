"""Colour through OCIO: the comp's scene-linear space <-> the sRGB encoding the models were trained on.

The config is ``$OCIO`` when set, else OCIO's built-in ``ocio://default``. Names resolve through the
config, so aliases work (``lin_rec709``, ``srgb_tx``, ``ACEScg``...). Beware the built-in config's
``scene_linear`` role: it is ACEScg, not linear Rec.709; monalisa's default working space is
``lin_rec709`` and a float still in another space is named with ``--colorspace``.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from monalisa.errors import ConfigError

#: the working space of float (EXR) stills and of rendered EXR frames unless told otherwise
LINEAR = "lin_rec709"
#: the encoding of the models' inputs and outputs (and of 8/16-bit PNG, JPEG, TIFF stills)
SRGB = "srgb_tx"


@functools.lru_cache(maxsize=4)
def _config(source: str):
    import PyOpenColorIO as OCIO

    try:
        return OCIO.Config.CreateFromFile(source)
    except Exception as exc:  # OCIO raises its own Exception type
        raise ConfigError(f"OCIO config {source}: cannot load it ({exc}); fix $OCIO or unset it") from None


def config():
    """The OCIO config in force: $OCIO, else the built-in default."""
    return _config(os.environ.get("OCIO") or "ocio://default")


def resolve(name: str) -> str:
    """The config's own name for colour space ``name`` (an alias or role); ConfigError if unknown."""
    space = config().getColorSpace(str(name))
    if space is None:
        names = ", ".join(sorted(config().getColorSpaceNames())[:8])
        raise ConfigError(f"colour space {name!r} is not in the OCIO config ({names}, ...); "
                          "check --colorspace against $OCIO")
    return space.getName()


@functools.lru_cache(maxsize=32)
def _processor(src: str, dst: str):
    return config().getProcessor(src, dst).getDefaultCPUProcessor()


def convert(pixels, src: str, dst: str) -> np.ndarray:
    """float32 (..., 3) from colour space ``src`` to ``dst`` (a new array)."""
    out = np.array(pixels, dtype=np.float32, copy=True, order="C")
    if out.shape[-1] != 3:
        from monalisa.errors import ShapeError

        raise ShapeError("colour convert pixels", ("...", 3), out.shape)
    src, dst = resolve(src), resolve(dst)
    if src == dst:
        return out
    flat = out.reshape(-1, 3)
    _processor(src, dst).applyRGB(flat)
    return flat.reshape(out.shape)


def to_srgb8(pixels, src: str) -> np.ndarray:
    """float (..., 3) in ``src`` -> uint8 sRGB-encoded (what detectors and models see)."""
    srgb = convert(pixels, src, SRGB)
    return np.clip(np.round(np.nan_to_num(srgb) * 255.0), 0, 255).astype(np.uint8)


def from_srgb(srgb_unit, dst: str) -> np.ndarray:
    """float (..., 3) sRGB-encoded in [0, 1] -> float32 in ``dst``."""
    return convert(srgb_unit, SRGB, dst)
