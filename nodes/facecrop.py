"""The one model crop: an image and its 68 landmarks -> the face square and raster a model sees.

Training (prepare + episodes), fine-tuning, export calibration, rendering and evaluation all make
their crops here, so every model sees faces resampled the same way. The geometry is data
(:class:`CropGeometry`), recorded in checkpoint.json and in the ONNX metadata (``monalisa.crop``):

1. a similarity from the landmarks to the canonical template in a ``prepare_size`` square
   (``nodes.crop.align_face`` with ``margin``), bilinear, borders reflected;
2. an anti-aliased ``filter`` resize ("area") of that square to the model's ``resolution``;
3. the landmarks mapped the same way, drawn as the model's raster (``nodes.raster``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from monalisa.errors import ConfigError, ShapeError
from monalisa.nodes.crop import CropTransform, align_face
from monalisa.nodes.landmarks import check_points
from monalisa.nodes.raster import rasterize

FILTERS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class CropGeometry:
    """How a face square is cut: ``prepare_size`` square at ``margin``, then ``filter`` to ``resolution``."""

    resolution: int = 64
    prepare_size: int = 128
    margin: float = 0.15
    filter: str = "area"

    def __post_init__(self):
        if self.filter not in FILTERS:
            raise ConfigError(f"crop filter {self.filter!r} is unknown; use one of {', '.join(FILTERS)}")
        if self.resolution < 8 or self.prepare_size < self.resolution:
            raise ConfigError(f"crop geometry needs 8 <= resolution <= prepare_size, got "
                              f"{self.resolution} and {self.prepare_size}")
        if not 0.0 <= self.margin < 0.5:
            raise ConfigError(f"crop margin must be in [0, 0.5), got {self.margin}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropGeometry":
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ConfigError(f"crop geometry {d!r}: expected keys {sorted(known)}")
        return cls(**d)

    def transform(self, points) -> CropTransform:
        """Image pixels -> pixels of the ``resolution`` square, for a face with these landmarks."""
        return align_face(points, self.prepare_size, self.margin).scaled(self.resolution)


@dataclass(frozen=True)
class ModelCrop:
    image: np.ndarray  # uint8 (R, R, 3) sRGB face square
    raster: np.ndarray  # uint8 (R, R, 3) landmark raster
    points: np.ndarray  # float32 (68, 2) landmarks in pixels of the R square
    transform: CropTransform  # image pixels -> R-square pixels


def model_crop(image, points, geometry: CropGeometry) -> ModelCrop:
    """``image`` uint8 (H, W, 3) RGB with ``points`` (68, 2) in its pixels -> the model's crop.

    ``image`` may be None to make only the raster (a driving frame has landmarks, no pixels).
    """
    pts = check_points(points, "model_crop points")
    big = align_face(pts, geometry.prepare_size, geometry.margin)
    small = big.scaled(geometry.resolution)
    crop_points = small.apply(pts)
    crop = None
    if image is not None:
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ShapeError(f"model_crop image (dtype {arr.dtype}, uint8 expected)", ("H", "W", 3), arr.shape)
        crop = big.warp(arr)
        if geometry.resolution != geometry.prepare_size:
            crop = cv2.resize(crop, (geometry.resolution,) * 2, interpolation=FILTERS[geometry.filter])
    return ModelCrop(crop, rasterize(crop_points, geometry.resolution), crop_points, small)


def to_model(batch) -> np.ndarray:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]: what every model input expects."""
    arr = np.asarray(batch, dtype=np.float32)
    return np.ascontiguousarray(np.moveaxis(arr / 127.5 - 1.0, -1, -3), dtype=np.float32)


def from_model(batch) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3)."""
    arr = np.moveaxis(np.asarray(batch, dtype=np.float32), -3, -1)
    return np.clip(np.round((arr + 1.0) * 127.5), 0, 255).astype(np.uint8)
