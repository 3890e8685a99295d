"""Checks on an exported graph: onnx.checker (full check) and onnxruntime-vs-torch parity on real inputs.

Real inputs come from a calibration file (``calibration.npz`` beside this module by default, shipped
in the wheel): ``images`` uint8 (N, 128, 128, 3) aligned sRGB face crops and ``landmarks`` float32
(N, 68, 2) in pixels of that 128 square. Each is cut by the one model crop
(``monalisa.nodes.facecrop.model_crop``) with the checkpoint's geometry, as training, fine-tuning
and the runtime do; for the mouth model, each face's mouth patch and inner-lip hole
(``monalisa.nodes.mouth``), as the node cuts them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monalisa.errors import ExportError, ExportMismatchError, InputError

log = logging.getLogger(__name__)

FP32_BOUND = 1e-4
FP16_BOUND = 2e-2
SSIM_BOUND = 0.99


def default_calibration_path() -> Path:
    """The bundled calibration set: package data of monalisa.export (in a wheel too)."""
    return Path(__file__).resolve().parent / "calibration.npz"


@dataclass
class RealInputs:
    """Model-ready real inputs at one resolution (float32 NCHW in [-1, 1])."""

    images: np.ndarray  # (N, 3, R, R) face crops
    rasters: np.ndarray  # (N, 3, R, R) landmark rasters
    path: Path

    def groups(self, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive frames in groups of K -> (B, K, 3, R, R) images and rasters for the embedder."""
        b = max(1, len(self.images) // k)
        n = b * k if len(self.images) >= k else len(self.images)
        k = k if len(self.images) >= k else len(self.images)
        shape = (b, k, *self.images.shape[1:])
        return self.images[:n].reshape(shape), self.rasters[:n].reshape(shape)


def read_calibration(path) -> tuple:
    """(images uint8 (N,S,S,3), landmarks float32 (N,68,2), path) of a calibration .npz (None: the
    bundled one); InputError (one line) when unusable."""
    path = Path(path) if path is not None else default_calibration_path()
    if not path.is_file():
        raise InputError(f"{path}: calibration inputs not found; pass --calibration FILE.npz "
                         "(images uint8 (N,128,128,3), landmarks float32 (N,68,2))")
    try:
        with np.load(path) as data:
            images, landmarks = np.asarray(data["images"]), np.asarray(data["landmarks"], dtype=np.float32)
    except Exception as exc:  # zip/pickle/key errors
        raise InputError(f"{path}: not a calibration .npz with 'images' and 'landmarks' ({exc})") from exc
    if (images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8
            or landmarks.shape != (len(images), 68, 2) or len(images) < 2):
        raise InputError(f"{path}: expected images uint8 (N,S,S,3) and landmarks (N,68,2) with N >= 2, "
                         f"got {images.dtype} {images.shape} and {landmarks.shape}")
    return images, landmarks, path


def load_real_inputs(path, geometry) -> RealInputs:
    """Read a calibration .npz (None: the bundled one) and cut the model crops with ``geometry``
    (the checkpoint's CropGeometry, ``models.checkpoint.crop_geometry``); InputError (one line)
    when unusable."""
    from monalisa.nodes.facecrop import model_crop, to_model

    images, landmarks, path = read_calibration(path)
    crops = [model_crop(img, pts, geometry) for img, pts in zip(images, landmarks)]
    return RealInputs(to_model(np.stack([c.image for c in crops])), to_model(np.stack([c.raster for c in crops])),
                      path)


def load_real_patches(path, resolution: int) -> RealInputs:
    """The mouth model's real inputs from a calibration .npz (None: the bundled one): each face's
    mouth patch and its inner-lip hole cut as the node cuts them (``nodes.mouth``), as ``images``
    (N, 4, R, R) model inputs; ``rasters`` holds the holes (N, 1, R, R)."""
    import cv2

    from monalisa.nodes import mouth

    images, landmarks, path = read_calibration(path)
    inputs = []
    for img, pts in zip(images, landmarks):
        m = mouth.patch_transform(pts, resolution)
        patch = cv2.warpAffine(img.astype(np.float32) / 255.0, m, (resolution, resolution), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        inputs.append(mouth.model_input(patch, mouth.hole_mask(pts, m, resolution)))
    inputs = np.stack(inputs).astype(np.float32)
    return RealInputs(inputs, inputs[:, 3:], path)


def check_graph(model, name: str) -> None:
    """onnx.checker with full_check (strict shape inference); ExportError naming the file on failure."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ExportError(f"{name}: onnx.checker failed ({str(exc).splitlines()[0]})") from exc


def ort_session(model_or_path, threads: int = 0, provider: str = "CPUExecutionProvider"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    src = model_or_path if isinstance(model_or_path, (str, Path)) else model_or_path.SerializeToString()
    return ort.InferenceSession(str(src) if isinstance(src, Path) else src, opts, providers=[provider])


def run_ort(model_or_path, feeds: dict) -> list:
    """Every output of the graph on ``feeds``, in the graph's output order."""
    return ort_session(model_or_path).run(None, feeds)


def max_abs_diff(got, want) -> float:
    """The largest |got - want| over every output (lists of arrays, or one array each); inf when
    the shapes or the number of outputs differ."""
    got = got if isinstance(got, (list, tuple)) else [got]
    want = want if isinstance(want, (list, tuple)) else [want]
    if len(got) != len(want) or any(a.shape != b.shape for a, b in zip(got, want)):
        return float("inf")
    return max(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) for a, b in zip(got, want))


def check_parity(name: str, got, want, bound: float) -> float:
    """max|got - want| over every output; ExportMismatchError (one line) when it exceeds ``bound``."""
    diff = max_abs_diff(got, want)
    if not diff <= bound:  # also catches NaN
        raise ExportMismatchError(f"{name}: onnxruntime differs from torch by max |diff| {diff:.3g} > bound "
                                  f"{bound:g} on real inputs; nothing was written")
    return diff


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Lowest per-image SSIM of two (N, 3, H, W) batches in [-1, 1] (skimage, data range 2)."""
    from skimage.metrics import structural_similarity

    scores = [structural_similarity(x, y, channel_axis=0, data_range=2.0) for x, y in zip(a, b)]
    return float(min(scores))
