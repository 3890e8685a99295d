"""Training pairs for the mouth-interior network, cut from prepared clips (``monalisa prepare``).

Every frame whose mouth is open (inner-lip height over mouth width at least ``OPEN``) gives a patch,
plus a share of closed frames; the patch is cut by the runtime's own geometry (``nodes.mouth``:
``patch_transform``, ``hole_mask``), with a small random similarity on top. The network sees the
patch with the hole blanked (``nodes.mouth.model_input``) and learns the hole's true pixels.

Augmentation (:func:`augment`, the same on input and target) is there so the network carries to
paintings and other stills: hue, saturation, brightness, contrast and gamma jitter, grey, blur,
posterisation, an edge-preserving (painterly) filter, noise, and a mirror.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from monalisa.errors import DataError
from monalisa.nodes.landmarks import mouth_opening
from monalisa.nodes.mouth import hole_mask, patch_transform

OPEN = 0.08  # frames at least this open are all kept
CLOSED_SHARE = 0.15  # of the closed ones, this share


def _jitter(m, size, rng):
    """``m`` followed by a random similarity about the patch centre (scale 0.9-1.1, +-6 deg, +-2 px)."""
    angle, scale = rng.uniform(-6, 6), rng.uniform(0.9, 1.1)
    j = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, scale)
    j[:, 2] += rng.uniform(-2, 2, 2)
    return j[:, :2] @ m[:, :2], j[:, :2] @ m[:, 2] + j[:, 2]


def cut(image, points, size, rng=None):
    """(patch uint8 (size, size, 3), hole uint8 (size, size)) of one frame."""
    m = patch_transform(points, size)
    if rng is not None:
        a, t = _jitter(m, size, rng)
        m = np.concatenate([a, t[:, None]], axis=1)
    shrink = m[0, 0] ** 2 + m[0, 1] ** 2 < 1.0
    patch = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return patch, hole_mask(points, m, size).astype(np.uint8)


def clips(prepared) -> list:
    """[(clip id, folder)] of a prepared folder."""
    manifest = Path(prepared) / "manifest.json"
    if not manifest.is_file():
        raise DataError(f"{prepared}: no manifest.json; run `monalisa prepare` first")
    return [(v["id"], Path(prepared) / v["dir"]) for v in json.loads(manifest.read_text())["videos"]]


def load_patches(prepared_dirs, size: int, variants: int = 2, seed: int = 0, only_open: bool = False):
    """(patches uint8 (N, size, size, 3), holes uint8 (N, size, size), clip ids list) from prepared folders."""
    rng = np.random.default_rng(seed)
    patches, holes, ids = [], [], []
    for prepared in prepared_dirs:
        for cid, folder in clips(prepared):
            frames = np.load(folder / "frames.npy", mmap_mode="r")
            points = np.load(folder / "landmarks.npy")
            for img, pts in zip(frames, points):
                is_open = mouth_opening(pts) >= OPEN
                if not is_open and (only_open or rng.random() > CLOSED_SHARE):
                    continue
                for _ in range(variants):
                    p, h = cut(np.ascontiguousarray(img), pts, size, rng if variants > 1 else None)
                    patches.append(p)
                    holes.append(h)
                    ids.append(cid)
    if not patches:
        raise DataError(f"no open mouths in {', '.join(map(str, prepared_dirs))}")
    return np.stack(patches), np.stack(holes), ids


def augment(patch, rng) -> np.ndarray:
    """One uint8 (R, R, 3) RGB patch -> float32 in [0, 1], colour- and style-jittered."""
    x = patch
    if rng.random() < 0.8:  # hue / saturation / value
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-12, 12)) % 180
        hsv[..., 1] *= rng.uniform(0.4, 1.4)
        hsv[..., 2] *= rng.uniform(0.65, 1.3)
        x = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.25:  # painterly: flatten texture, keep edges
        x = cv2.bilateralFilter(x, 5, rng.uniform(20, 60), rng.uniform(2, 5))
    x = x.astype(np.float32) / 255.0
    if rng.random() < 0.5:  # contrast and gamma
        x = np.clip((x - x.mean()) * rng.uniform(0.7, 1.3) + x.mean(), 0, 1) ** rng.uniform(0.75, 1.33)
    if rng.random() < 0.1:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.random() < 0.25:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.15:
        levels = rng.integers(6, 16)
        x = np.round(x * levels) / levels
    if rng.random() < 0.3:
        x = x + rng.normal(0, rng.uniform(0.005, 0.03), x.shape).astype(np.float32)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def batch(patches, holes, index, rng):
    """(inputs float32 (B, 4, R, R), targets float32 (B, 3, R, R) in [-1, 1], holes float32 (B, 1, R, R))."""
    from monalisa.nodes.mouth import model_input

    xs, ys, hs = [], [], []
    for i in index:
        img, hole = augment(patches[i], rng), holes[i].astype(np.float32)
        if rng.random() < 0.5:
            img, hole = img[:, ::-1], hole[:, ::-1]
        img, hole = np.ascontiguousarray(img), np.ascontiguousarray(hole)
        xs.append(model_input(img, hole))
        ys.append(np.transpose(img, (2, 0, 1)) * 2.0 - 1.0)
        hs.append(hole[None])
    return np.stack(xs), np.stack(ys), np.stack(hs)
