"""Runtime side of the warp-conditioned generator (models/warpgen.py), torch-free.

Per frame::

    warped = nodes.warp.dense_warp(still, mesh, driven_points).image        # full resolution
    crop = nodes.facecrop.model_crop(warped, driven_points, geometry)        # network inputs
    correction, mask = run_generator(session, crop.raster, crop.image, ...) # (3, R, R), (1, R, R)
    face, matte = composite(warped, crop.transform, correction, mask)       # full resolution

:func:`composite` adds ``mask * correction`` to the full-resolution warped still: only correction
and mask are upsampled (bilinear, through the inverse of the crop transform), so the still's own
texture reaches the output at its own resolution. The mask is feathered to zero at the crop
square's border so nothing steps there.
"""
from __future__ import annotations

import cv2
import numpy as np

from monalisa.errors import ShapeError

#: fraction of the crop square over which the mask fades to zero at its border
FEATHER = 0.08


def border_window(size: int, feather: float = FEATHER) -> np.ndarray:
    """float32 (size, size): 1 inside, smoothstep down to 0 over ``feather`` * size at each border."""
    ramp = max(1.0, feather * size)
    d = np.minimum(np.arange(size) + 0.5, size - 0.5 - np.arange(size)) / ramp
    t = np.clip(d, 0.0, 1.0)
    s = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    return s[:, None] * s[None, :]


def composite(warped, transform, correction, mask, feather: float = FEATHER):
    """The face at the still's resolution.

    warped: (H, W, 3) the still warped to the frame's landmarks, uint8 sRGB or float sRGB in [0, 1]
    (the encoding the network saw; composite before converting to linear).
    transform: ``nodes.crop.CropTransform`` (frame px -> network crop px, size R), from
    ``nodes.facecrop.model_crop(warped, points, geometry).transform``.
    correction: (3, R, R) float, network units ([-1, 1] images: 2.0 = full range); mask (1, R, R) or
    (R, R) in [0, 1].
    -> (image of warped's dtype and shape, matte float32 (H, W) in [0, 1]: the upsampled, feathered mask).
    uint8 results are rounded and clipped; float results are not clipped.
    """
    img = np.asarray(warped)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ShapeError("composite warped", ("H", "W", 3), img.shape)
    r = int(transform.size)
    corr = np.asarray(correction, np.float32)
    m = np.asarray(mask, np.float32)
    m = m[0] if m.ndim == 3 else m
    if corr.shape != (3, r, r) or m.shape != (r, r):
        raise ShapeError("composite correction / mask", ((3, r, r), (r, r)), (corr.shape, m.shape))
    h, w = img.shape[:2]
    # the square's footprint in the frame, to upsample only there
    inv = transform.inverse_matrix()
    corners = np.array([[0, 0], [r, 0], [0, r], [r, r]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, (w, h))
    matte = np.zeros((h, w), np.float32)
    if x1 <= x0 or y1 <= y0:
        return img.copy(), matte
    shift = np.asarray(transform.matrix, np.float64).copy()
    shift[:, 2] += shift[:, :2] @ np.array([x0, y0], np.float64)  # box px -> crop px
    planes = np.concatenate([np.moveaxis(corr, 0, -1), (m * border_window(r, feather))[..., None]], axis=2)
    up = cv2.warpAffine(planes, shift, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (h', w', 4)
    a = np.clip(up[..., 3], 0.0, 1.0)
    matte[y0:y1, x0:x1] = a
    scale = 127.5 if img.dtype == np.uint8 else 0.5  # network units -> image units
    out = img.astype(np.float32, copy=True)
    region = out[y0:y1, x0:x1]
    region += (a[..., None] * up[..., :3]) * scale
    if img.dtype == np.uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8), matte
    return out.astype(img.dtype), matte  # float: not clipped (values of an HDR still above 1 survive)


def run_generator(session, raster, warped, embedding=None):
    """One onnxruntime call of a ``warp_generator`` / ``baked_warp_generator`` file.

    raster, warped: (B, 3, R, R) float32 in [-1, 1] (``nodes.facecrop.to_model`` of the crop's
    raster and image); embedding (B or 1, E) for the generic one. -> (correction, mask).
    """
    feeds = {"raster": np.ascontiguousarray(raster, np.float32), "warped": np.ascontiguousarray(warped, np.float32)}
    names = [i.name for i in session.get_inputs()]
    if "embedding" in names:
        if embedding is None:
            raise ShapeError("warp generator embedding (required by a generic warp generator)", ("B", "E"), ())
        emb = np.asarray(embedding, np.float32)
        if emb.shape[0] == 1 and feeds["raster"].shape[0] > 1:
            emb = np.broadcast_to(emb, (feeds["raster"].shape[0], emb.shape[1]))
        feeds["embedding"] = np.ascontiguousarray(emb)
    correction, mask = session.run(["correction", "mask"], feeds)
    return correction, mask
