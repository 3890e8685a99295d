"""Image-quality metrics of the self-reenactment protocol (docs/evaluate.md).

Torch-free. Images are uint8 (H, W, 3) RGB; landmarks float32 (68, 2) in image pixels.

- :func:`metric_crop`: the 256² square aligned by a similarity from the *target's true* landmarks
  to the mean-face template (the 7 stable points of ``nodes.crop``; margin chosen so that the jaw
  spans 60 % of the square on average over the shared clips: 0.76 at margin 0, hence 0.105).
  The same square is cut from truth and prediction.
- :func:`l1`, :func:`psnr`, :func:`ssim`: on [0, 1], PSNR with data range 1 (identical images
  give ``PSNR_CAP`` instead of infinity, so means stay finite), SSIM from scikit-image with the
  channel axis.
- :class:`FaceAnalyser`: dlib's 68-point predictor and ResNet face descriptor
  (``face_recognition_models``): AKD = mean distance between the points found on the prediction
  crop and on the truth crop (same box, crop px); CSIM = cosine of the descriptors on full frames.
- :func:`flicker`: frame-to-frame change of the predicted face minus that of the true face.
- :func:`mouth_opening`, :func:`landmark_error`, :meth:`FaceAnalyser.near`: the landmark measures of
  cross-reenactment and of the smoothing benchmark (the face found on an output near where it was
  meant to be, its distance from the intended points in inter-ocular distances, its mouth opening).
- :func:`region_metrics` (L1/SSIM inside a mask: the inner mouth of self-reenactment),
  :func:`mouth_interior` (CIELAB distance of the inner mouth from the lips' colour) and
  :func:`detail` (high-frequency energy of the face): the mouth and detail scores.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import numpy as np

from monalisa.errors import BackendUnavailableError, ShapeError
from monalisa.nodes.crop import CropTransform, align_face
from monalisa.nodes.landmarks import mouth_opening  # noqa: F401  (the measure lives with the landmark layout)

CROP_SIZE = 256
#: margin of nodes.crop.align_face giving a jaw width of 60 % of the square (mean over the clips)
CROP_MARGIN = 0.105
PSNR_CAP = 100.0


def metric_transform(points, size: int = CROP_SIZE) -> CropTransform:
    """Image pixels -> pixels of the metric square, from the target's true landmarks."""
    return align_face(points, size, CROP_MARGIN)


def metric_crop(image, transform: CropTransform) -> np.ndarray:
    """uint8 (H, W, 3) -> the uint8 (S, S, 3) metric square (bilinear, borders reflected)."""
    return np.asarray(transform.warp(_rgb(image, "metric_crop image")))


def _rgb(image, what: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ShapeError(f"{what} (dtype {arr.dtype}, uint8 RGB expected)", ("H", "W", 3), arr.shape)
    return np.ascontiguousarray(arr)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _rgb(a, "metric input"), _rgb(b, "metric input")
    if a.shape != b.shape:
        raise ShapeError("metric inputs (prediction vs truth)", a.shape, b.shape)
    return a.astype(np.float64) / 255.0, b.astype(np.float64) / 255.0


def l1(pred, truth) -> float:
    """Mean absolute difference on [0, 1]."""
    a, b = _pair(pred, truth)
    return float(np.abs(a - b).mean())


def psnr(pred, truth, cap: float = PSNR_CAP) -> float:
    """PSNR in dB with data range 1; ``cap`` for identical images (and as an upper bound)."""
    a, b = _pair(pred, truth)
    mse = float(((a - b) ** 2).mean())
    return cap if mse <= 10.0 ** (-cap / 10.0) else float(-10.0 * np.log10(mse))


def ssim(pred, truth) -> float:
    """scikit-image SSIM on [0, 1], channel axis, default 7x7 window."""
    from skimage.metrics import structural_similarity

    a, b = _pair(pred, truth)
    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))


def image_metrics(pred, truth) -> dict:
    return {"l1": l1(pred, truth), "psnr": psnr(pred, truth), "ssim": ssim(pred, truth)}


def flicker(preds, truths) -> float:
    """Consecutive frames (same crop): mean over t of | mean|p_t - p_t-1| - mean|x_t - x_t-1| | on [0, 1].

    0 when the prediction changes from frame to frame exactly as much as the truth does; a still
    image scores the truth's own motion, a flickering one more.
    """
    if len(preds) != len(truths) or len(preds) < 2:
        raise ShapeError("flicker frames (prediction vs truth, at least 2)", (len(truths),), (len(preds),))
    p = [np.asarray(x, np.float64) / 255.0 for x in preds]
    t = [np.asarray(x, np.float64) / 255.0 for x in truths]
    dp = [np.abs(p[i] - p[i - 1]).mean() for i in range(1, len(p))]
    dt = [np.abs(t[i] - t[i - 1]).mean() for i in range(1, len(t))]
    return float(np.mean(np.abs(np.subtract(dp, dt))))


def dlib_models_dir() -> str:
    spec = importlib.util.find_spec("face_recognition_models")  # no __init__ run: no pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError("evaluate: face_recognition_models is not installed; "
                                      "pip install face_recognition_models")
    return os.path.join(list(spec.submodule_search_locations)[0], "models")


@dataclass
class FaceRef:
    """What the truth gives once per target: the box and points found on its crop, its descriptor."""

    crop_box: tuple  # (x0, y0, x1, y1) in metric-crop pixels
    crop_points: np.ndarray  # (68, 2) dlib points on the truth crop
    frame_box: tuple  # (x0, y0, x1, y1) in frame pixels
    descriptor: np.ndarray  # (128,)


class FaceAnalyser:
    """dlib HOG + 68-point predictor + ResNet descriptor, for AKD and CSIM."""

    def __init__(self):
        try:
            import dlib
        except ImportError as exc:
            raise BackendUnavailableError("evaluate: dlib is not installed; pip install dlib-bin") from exc
        m = dlib_models_dir()
        self._dlib = dlib
        self._det = dlib.get_frontal_face_detector()
        self._sp = dlib.shape_predictor(os.path.join(m, "shape_predictor_68_face_landmarks.dat"))
        self._rec = dlib.face_recognition_model_v1(os.path.join(m, "dlib_face_recognition_resnet_model_v1.dat"))

    def _box(self, rgb, points) -> tuple:
        """The HOG box of the face (the largest, ``nodes.detect.largest_face``'s rule), else the
        landmarks' bounding box."""
        from monalisa.nodes.detect import box_area

        rects, _, _ = self._det.run(rgb, 0, 0.0)
        if len(rects):
            r = max(rects, key=lambda r: box_area((r.left(), r.top(), r.right(), r.bottom())))
            return (r.left(), r.top(), r.right(), r.bottom())
        x0, y0 = np.floor(points.min(axis=0))
        x1, y1 = np.ceil(points.max(axis=0))
        return (int(x0), int(y0), int(x1), int(y1))

    def near(self, rgb, expected, size: int = 320):
        """dlib's 68 points of the face on ``rgb`` nearest ``expected`` (68, 2), or None when no face is
        found there. HOG runs on a square around the expected points scaled to ``size`` px (the face
        about a third of it); the points are fitted at full resolution in the box found."""
        import cv2

        rgb, expected = _rgb(rgb, "face image"), np.asarray(expected, np.float64)
        lo, hi = expected.min(0), expected.max(0)
        centre, side = (lo + hi) / 2, 2.6 * float((hi - lo).max())
        scale = size / side
        m = np.array([[scale, 0, size / 2 - scale * centre[0]], [0, scale, size / 2 - scale * centre[1]]])
        patch = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        rects, _, _ = self._det.run(patch, 0, 0.0)
        if not len(rects):
            return None
        boxes = [np.array([r.left(), r.top(), r.right(), r.bottom()], np.float64) for r in rects]
        box = min(boxes, key=lambda b: np.hypot((b[0] + b[2]) / 2 - size / 2, (b[1] + b[3]) / 2 - size / 2))
        x0, y0 = (box[:2] - m[:, 2]) / scale
        x1, y1 = (box[2:] - m[:, 2]) / scale
        return self.points(rgb, (x0, y0, x1, y1))

    def _shape(self, rgb, box):
        return self._sp(rgb, self._dlib.rectangle(*(int(v) for v in box)))

    def points(self, rgb, box) -> np.ndarray:
        shape = self._shape(_rgb(rgb, "AKD image"), box)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def descriptor(self, rgb, box) -> np.ndarray:
        rgb = _rgb(rgb, "CSIM image")
        return np.asarray(self._rec.compute_face_descriptor(rgb, self._shape(rgb, box)), np.float64)

    def reference(self, truth_crop, crop_points, truth_frame, frame_points) -> FaceRef:
        """Analyse the truth once: boxes from HOG on the truth (or its true landmarks)."""
        crop_box = self._box(_rgb(truth_crop, "truth crop"), np.asarray(crop_points, np.float32))
        frame_box = self._box(_rgb(truth_frame, "truth frame"), np.asarray(frame_points, np.float32))
        return FaceRef(crop_box, self.points(truth_crop, crop_box), frame_box,
                       self.descriptor(truth_frame, frame_box))

    def akd(self, pred_crop, ref: FaceRef) -> float:
        """Mean distance (crop px) of dlib's points on the prediction crop to those on the truth crop."""
        pts = self.points(pred_crop, ref.crop_box)
        return float(np.linalg.norm(pts - ref.crop_points, axis=1).mean())

    def csim(self, pred_frame, ref: FaceRef) -> float:
        """Cosine of the dlib descriptors of prediction and truth (full frames, the truth's box)."""
        d = self.descriptor(pred_frame, ref.frame_box)
        return cosine(d, ref.descriptor)


#: a mouth is open when its inner-lip height / mouth width (``mouth_opening``) exceeds this
OPEN_MOUTH = 0.15


def polygon_mask(size, polygon, erode: int = 0) -> np.ndarray:
    """bool (H, W) inside ``polygon`` (K, 2) of an image of ``size`` (H, W), eroded by ``erode`` px
    (rasterised with 1/16 px precision)."""
    import cv2

    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(polygon, np.float64) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    if erode:
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=erode)
    return mask.astype(bool)


def inner_mouth(size, points, erode: int = 1) -> np.ndarray:
    """bool (H, W): inside the inner-lip polygon (points 60-67), eroded by ``erode`` px."""
    return polygon_mask(size, np.asarray(points)[60:68], erode)


def lip_ring(size, points) -> np.ndarray:
    """bool (H, W): the lips themselves, inside the outer lip line (48-59) and outside the inner (60-67)."""
    p = np.asarray(points)
    return polygon_mask(size, p[48:60]) & ~polygon_mask(size, p[60:68])


def mouth_interior(image, points) -> float:
    """How far the inner mouth is from the lips' colour: mean CIELAB distance of the pixels inside
    the inner-lip polygon (eroded 1 px) from the lip ring's mean colour, minus the ring's own mean
    distance from that colour. ~0 when lip colour is smeared over the gap; teeth, tongue and the
    dark of an open mouth score 8-30. NaN when the polygon is empty (a closed mouth)."""
    import cv2

    rgb = _rgb(image, "mouth image")
    inner, ring = inner_mouth(rgb.shape[:2], points), lip_ring(rgb.shape[:2], points)
    if not inner.any() or not ring.any():
        return float("nan")
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).astype(np.float64)
    colour = lab[ring].mean(0)
    return float(np.linalg.norm(lab[inner] - colour, axis=1).mean() - np.linalg.norm(lab[ring] - colour, axis=1).mean())


def region_metrics(pred, truth, mask) -> dict:
    """L1 (on [0, 1]) and SSIM (scikit-image's map, channel axis) averaged inside ``mask`` (H, W)."""
    from skimage.metrics import structural_similarity

    a, b = _pair(pred, truth)
    mask = np.asarray(mask, bool)
    _, ssim_map = structural_similarity(a, b, channel_axis=2, data_range=1.0, full=True)
    return {"l1": float(np.abs(a - b)[mask].mean()), "ssim": float(ssim_map[mask].mean())}


def detail(image, points) -> float:
    """High-frequency energy of the face: mean |Laplacian| of the luminance (on [0, 1]) inside the
    landmarks' convex hull, on the metric square aligned on ``points``."""
    import cv2

    tf = metric_transform(points)
    gray = cv2.cvtColor(metric_crop(image, tf), cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    hull = cv2.convexHull(tf.apply(np.asarray(points, np.float32)).astype(np.float32))[:, 0]
    mask = polygon_mask(gray.shape, hull, erode=2)
    return float(np.abs(cv2.Laplacian(gray, cv2.CV_64F, ksize=3))[mask].mean())


def landmark_error(found, intended) -> float:
    """Mean distance of ``found`` from ``intended`` (68, 2), in inter-ocular distances of ``intended``."""
    found, intended = np.asarray(found, np.float64), np.asarray(intended, np.float64)
    return float(np.linalg.norm(found - intended, axis=1).mean() / max(np.linalg.norm(intended[45] - intended[36]), 1e-9))


def correlation(a, b) -> float:
    """Pearson correlation of two series (NaN when either is constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
