"""Stills of a person -> the model's face crops and rasters, one face per still (torch-free).

Used by fine-tuning (``monalisa finetune``); each still is cut by the one model crop
(``monalisa.nodes.facecrop.model_crop``) with the checkpoint's geometry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monalisa.errors import NoFaceError
from monalisa.nodes.facecrop import CropGeometry, model_crop


@dataclass
class StillCrops:
    images: np.ndarray  # uint8 (K, R, R, 3) face crops
    rasters: np.ndarray  # uint8 (K, R, R, 3) landmark rasters
    points: np.ndarray  # float32 (K, 68, 2) landmarks in crop pixels
    frames: list  # the stills themselves, uint8 (H, W, 3) RGB each
    frame_points: np.ndarray  # float32 (K, 68, 2) landmarks in the stills' pixels


def prepare_stills(paths, geometry: CropGeometry, detector=None) -> StillCrops:
    """Read each still, find its largest face (``nodes.detect.largest_face``) and cut the model crop;
    NoFaceError (one line, naming the file) for a still without a face."""
    from monalisa.nodes.detect import create_detector, largest_face
    from monalisa.nodes.media import read_image

    detector = detector or create_detector("dlib")
    crops, frames, points = [], [], []
    for path in paths:
        rgb = read_image(path)
        faces = detector.detect(rgb)
        if not faces:
            raise NoFaceError(f"{path}: no face found; give a still with one visible face")
        face = largest_face(faces)
        crops.append(model_crop(rgb, face.points, geometry))
        frames.append(rgb)
        points.append(np.asarray(face.points, np.float32))
    return StillCrops(np.stack([c.image for c in crops]), np.stack([c.raster for c in crops]),
                      np.stack([c.points for c in crops]), frames, np.stack(points))
