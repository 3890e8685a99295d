"""Face detection + 68-point landmarks: dlib (HOG + face_recognition_models predictor) or FAN 2D."""

import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from monalisa.errors import BackendUnavailableError, ConfigError, MediaError

MAX_UPSAMPLE = 4


def check_upsample(upsample) -> int:
    """``upsample`` as an int in 0..MAX_UPSAMPLE; ConfigError (one line) otherwise."""
    if not isinstance(upsample, (int, np.integer)) or not 0 <= upsample <= MAX_UPSAMPLE:
        raise ConfigError(f"--upsample {upsample}: use 0 (faces larger than about 80 px) up to {MAX_UPSAMPLE} "
                          "(small faces, slower)")
    return int(upsample)


@dataclass
class Face:
    box: tuple
    score: float
    points: np.ndarray


def box_area(box) -> float:
    """Area of an (x0, y0, x1, y1) box."""
    x0, y0, x1, y1 = box
    return max(0.0, float(x1) - float(x0)) * max(0.0, float(y1) - float(y0))


def largest_face(faces):
    """The face-choice rule, everywhere a still or frame holds several faces (prepare, fine-tuning
    stills, the still at render, tracking's default, evaluation): the largest box. None for no face."""
    return max(faces, key=lambda f: box_area(f.box)) if faces else None


def _dlib_models_dir():
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError("dlib backend: face_recognition_models is not installed; pip install face_recognition_models")
    return os.path.join(spec.submodule_search_locations[0], "models")


def _check_rgb(rgb):
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise MediaError(f"detect: expected an RGB uint8 HxWx3 image, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


class DlibDetector:
    """dlib HOG boxes + the 68-point predictor. ``threshold`` is the HOG score a box needs: 0.0
    rather than dlib's customary 0.5 keeps large, frame-filling faces (they score 0.4-0.6)."""

    def __init__(self, upsample=1, threshold=0.0):
        check_upsample(upsample)
        try:
            import dlib
        except ImportError as exc:
            raise BackendUnavailableError("dlib backend: dlib is not installed; pip install dlib-bin") from exc
        model = os.path.join(_dlib_models_dir(), "shape_predictor_68_face_landmarks.dat")
        self._det = dlib.get_frontal_face_detector()
        self._sp = dlib.shape_predictor(model)
        self._dlib = dlib
        self.upsample = int(upsample)
        self.threshold = float(threshold)

    def boxes(self, rgb):
        rects, scores, _ = self._det.run(_check_rgb(rgb), self.upsample, self.threshold)
        return sorted(zip(rects, scores), key=lambda rs: -rs[1])

    def landmarks(self, rgb, box):
        """68 points for a face inside ``box`` (x0, y0, x1, y1), skipping detection."""
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._sp(_check_rgb(rgb), self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def detect(self, rgb):
        img = _check_rgb(rgb)
        faces = []
        for rect, score in self.boxes(img):
            shape = self._sp(img, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            faces.append(Face((float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom())), float(score), pts))
        return faces


class FanDetector:
    """face-alignment FAN 2D on CPU; faces boxed by dlib HOG. Never downloads weights."""

    WEIGHTS = "2DFAN4-11f355bf06.pth.tar"

    def __init__(self, upsample=1, threshold=0.0):
        import torch

        path = os.path.join(torch.hub.get_dir(), "checkpoints", self.WEIGHTS)
        if not os.path.isfile(path):
            raise BackendUnavailableError(
                f"face-alignment backend: weights missing; place {self.WEIGHTS} at {path} (or use --backend dlib)"
            )
        import face_alignment

        self._boxes = DlibDetector(upsample, threshold)
        self._fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device="cpu", compile=False, face_detector="folder"  # boxes come from dlib HOG; no detector weights
        )

    def detect(self, rgb):
        img = _check_rgb(rgb)
        found = self._boxes.boxes(img)
        if not found:
            return []
        boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r, _ in found]
        preds = self._fa.get_landmarks_from_image(img, detected_faces=boxes) or []
        return [Face(tuple(map(float, b)), float(s), np.asarray(p, np.float32)[:, :2])
                for b, (_, s), p in zip(boxes, found, preds)]


def create_detector(backend="dlib", **options):
    if backend == "dlib":
        return DlibDetector(**options)
    if backend in ("fan", "face-alignment", "face_alignment"):
        return FanDetector(**options)
    raise BackendUnavailableError(f"unknown landmark backend {backend!r}; use 'dlib' or 'face-alignment'")
