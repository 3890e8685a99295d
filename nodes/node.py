"""AnimatePortrait: the host-agnostic node that makes a still talk like the performer in a plate.

Inputs: the still (an image path or a ``media.Still``); a track file (or a ``Track``), or a plate to
track on the fly; optionally an identity's baked generator; optionally the still's own landmarks
(a one-frame track file) for paintings the detector misses.
Parameters: frame range (``render(frames)``), smoothing on/off and strength, retarget mode
(``relative``: the plate's expression and head motion as deltas on the still's own face;
``absolute``), matte feather, batch size, device, and for warp models the weight of the learned
correction (default: 1 with an identity, 0 without one: on faces it never saw, the feed-forward
correction from the still's embedding loses to the still's plain landmark warp, so without an
identity the node renders that warp and runs no face network; ``monalisa evaluate`` measures both),
and whether the mouth model paints the interior between the parted lips (``nodes.mouth``, last).

``render(frames)`` streams one :class:`FrameResult` per frame, in order, and keeps nothing from earlier
frames: per frame the still is warped over its landmarks to the driven ones (``nodes.warp``); an
image generator's face square is pasted back through its inverse crop under a feathered matte
(``nodes.paste``), a warp generator's correction and mask are added at the still's resolution
(``nodes.warpgen``; the matte covers the face and wherever the correction reaches); forward motion vectors come from the same warp. The model's inputs follow
from its metadata role (``nodes.models``). Post-processing of one batch
runs in worker threads while the next batch is inferred. Torch-free.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monalisa import __version__
from monalisa.errors import ConfigError, NoFaceError, TrackFileError
from monalisa.files import sha256_file
from monalisa.nodes import colour, trackfile
from monalisa.nodes.drive import drive
from monalisa.nodes.facecrop import model_crop, to_model
from monalisa.nodes.frames import format_frames
from monalisa.nodes.media import Still, read_still
from monalisa.nodes.mouth import MouthPainter, check_mode
from monalisa.nodes.mouthmodel import load_mouth_model
from monalisa.nodes.models import load_render_model
from monalisa.nodes.paste import FEATHER, composite, face_matte
from monalisa.nodes.warp import REACH, apply_flow, build_mesh, motion_vectors, warp_field
from monalisa.nodes.warpgen import composite as warp_composite

log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    frame: int
    rgb: np.ndarray  # float32 (H, W, 3), straight colour in the node's output colour space
    alpha: np.ndarray | None  # float32 (H, W) (the still's alpha, warped) or None when opaque
    matte: np.ndarray  # float32 (H, W): where the generated face is, 0..1
    motion: np.ndarray  # float32 (H, W, 2): forward motion vectors, pixels per frame
    flagged: bool  # True: no usable landmarks, the frame is the untouched still
    metadata: dict  # monalisa:* provenance for the file's header


@dataclass(frozen=True)
class Port:
    """A declared input or parameter of the node, for hosts that build knobs from it."""

    name: str
    kind: str  # "image" | "track" | "plate" | "model" | "file" | "int" | "float" | "bool" | "choice" | "frames"
    help: str
    default: object = None
    choices: tuple = ()


INPUTS = (
    Port("still", "image", "the portrait to animate (EXR, DPX, TIFF, PNG, JPEG)"),
    Port("track", "track", "landmark track of the plate (monalisa track); or give a plate"),
    Port("plate", "plate", "movie or image sequence to track on the fly"),
    Port("identity", "model", "an identity's baked generator (monalisa export --identity); optional"),
    Port("still_landmarks_from", "track", "the still's own landmarks (one-frame track file); optional"),
    Port("mouth_model", "file", "the mouth-interior model (.onnx); default: the bundled one"),
)
PARAMETERS = (
    Port("frames", "frames", "frames to render (default: the track's)"),
    Port("start_frame", "int", "a movie plate's first frame number, where the comp starts it (a sequence keeps "
         "its own)", 0),
    Port("smooth", "bool", "smooth the track (zero-phase, per region)", True),
    Port("smooth_strength", "float", "> 1 smooths more", 1.0),
    Port("retarget", "choice", "relative: the plate's motion on the still's own face; absolute", "relative",
         ("relative", "absolute")),
    Port("neutral_frame", "int", "the plate frame that matches the still's expression (default: eyes "
         "open, mouth most closed)"),
    Port("matte_feather", "float", "matte feather, in eye distances", FEATHER),
    Port("mouth", "choice", "on: the lips part and the mouth model paints the interior; off: the lips stretch",
         "on", ("on", "off")),
    Port("correction", "float", "warp models: weight of the learned correction, 0..1 (default: 1 with an "
         "identity, 0 without one, which renders the still's landmark warp)"),
    Port("batch_size", "int", "frames per inference batch", 4),
    Port("device", "choice", "onnxruntime device", "cpu", ("cpu", "cuda")),
)


def correction_weight(model, correction=None) -> float:
    """The weight of a warp model's correction: ``correction`` (0..1) or the default, 1 with an identity
    and 0 without one. Image generators take none (0.0)."""
    if not model.warp:
        if correction is not None:
            raise ConfigError("a correction weight applies to warp models only; this model draws the whole face")
        return 0.0
    if correction is None:
        return 1.0 if model.mode == "identity" else 0.0
    if not 0.0 <= float(correction) <= 1.0:
        raise ConfigError(f"correction weight must be within 0..1, got {correction}")
    return float(correction)


def _json_sha256(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def still_landmarks(still: Still, landmarks=None) -> np.ndarray:
    """(68, 2) landmarks of the still: given (array or one-frame track file) or detected (largest face)."""
    if landmarks is None:
        from monalisa.nodes.detect import create_detector, largest_face

        faces = create_detector("dlib").detect(still.srgb)
        if not faces:
            raise NoFaceError(f"{still.path}: no face found on the still; give its landmarks with "
                              "--still-landmarks TRACK.json (a one-frame track file) for paintings and stylised faces")
        return largest_face(faces).points
    if isinstance(landmarks, (str, Path)):
        track = trackfile.load(landmarks)
        if len(track.frames) != 1:
            raise TrackFileError(f"{landmarks}: still landmarks must be a one-frame track file, it has "
                                 f"{len(track.frames)} frames")
        if tuple(track.image_size) != still.size:
            raise TrackFileError(f"{landmarks}: made for a {track.image_size[0]}x{track.image_size[1]} image, the "
                                 f"still {still.path} is {still.size[0]}x{still.size[1]}")
        return track.points[0]
    from monalisa.nodes.landmarks import check_points

    return check_points(landmarks, "still landmarks")


class AnimatePortrait:
    """See the module docstring. Heavy set-up (reading, detection, models, driving) happens here, once."""

    INPUTS, PARAMETERS = INPUTS, PARAMETERS

    def __init__(self, still, track=None, plate=None, model=None, identity=None, still_landmarks_from=None,
                 colorspace=None, output_colorspace=None, smooth=True, smooth_strength=1.0, retarget="relative",
                 matte_feather=FEATHER, batch_size=4, device="cpu", strict_device=False, reach=REACH,
                 precision="fp32", threads=0, references=None, fps=None, correction=None,
                 neutral_frame=None, mouth="on", mouth_model=None, start_frame=None):
        if (track is None) == (plate is None):
            raise ConfigError("give a track or a plate (one of them)")
        if start_frame is not None and plate is None:
            raise ConfigError("--start-frame numbers a movie plate's frames; a track already holds its frame numbers")
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        if matte_feather <= 0:
            raise ConfigError(f"matte feather must be > 0 (eye distances), got {matte_feather}")
        self.still = still if isinstance(still, Still) else read_still(still, colorspace)
        self.still_points = still_landmarks(self.still, still_landmarks_from)
        self.model = load_render_model(model, identity, device, strict_device, precision, threads)
        self.correction = correction_weight(self.model, correction)
        self.track, self.track_sha256 = self._load_track(track, plate, start_frame)  # last: tracking is the long part
        self.driving = drive(self.track, self.still_points, retarget, smooth, smooth_strength, fps,
                             neutral_frame)
        self.batch_size, self.feather = int(batch_size), float(matte_feather)
        self.output_colorspace = colour.resolve(output_colorspace or (
            colour.LINEAR if self.still.colorspace == colour.resolve(colour.SRGB) else self.still.colorspace))
        self.linear = colour.convert(self.still.pixels, self.still.colorspace, self.output_colorspace)
        self.srgb = colour.convert(self.still.pixels, self.still.colorspace, colour.SRGB)  # what warp models see
        # the mouth: warp models split the lips and paint the hole; an image generator draws the whole face
        self.mouth = None
        if check_mode(mouth) == "on" and self.model.warp:
            self.mouth = MouthPainter(load_mouth_model(mouth_model), self.still_points)
        self.mesh = build_mesh(self.still_points, self.still.size, reach, split_lips=self.mouth is not None)
        self.embedding = self._embed(references) if (self.correction or not self.model.warp) else None
        self.metadata = {
            "monalisa:synthetic": 1, "monalisa:version": __version__, "monalisa:mode": self.model.mode,
            "monalisa:track_sha256": self.track_sha256,
            "monalisa:still_sha256": sha256_file(self.still.path) if Path(self.still.path).is_file() else "",
            "monalisa:colorspace": self.output_colorspace, "monalisa:retarget": retarget,
            "monalisa:neutral_frame": self.driving.neutral,
            **self.model.provenance}
        if self.model.warp:
            self.metadata["monalisa:correction"] = self.correction
        self.metadata["monalisa:mouth"] = 1.0 if self.mouth else 0.0
        self.metadata["monalisa:mouth_sha256"] = self.mouth.model.sha256 if self.mouth else ""
        rate = fps or getattr(self.track, "fps", None)  # the plate's frame rate, when known
        if rate:  # a preview or a publish plays at it
            self.metadata["monalisa:fps"] = float(rate)

    def _load_track(self, track, plate, start_frame=None):
        if plate is not None:
            from monalisa.nodes.media import check_sequence
            from monalisa.nodes.track import track_plate

            check_sequence(plate)
            track = track_plate(plate, start_frame=start_frame)
            return track, _json_sha256(trackfile.to_dict(track))
        if isinstance(track, (str, Path)):
            return trackfile.load(track), sha256_file(track) if Path(track).is_file() else ""
        trackfile.validate(track)
        return track, _json_sha256(trackfile.to_dict(track))

    def _embed(self, references):
        pairs = references or [(self.still.srgb, self.still_points)]
        crops = [model_crop(img, pts, self.model.crop) for img, pts in pairs]
        images = to_model(np.stack([c.image for c in crops]))
        rasters = to_model(np.stack([c.raster for c in crops]))
        return self.model.embed(images, rasters)

    @property
    def frames(self) -> list:
        return [int(f) for f in self.driving.frames]

    def check_frames(self, frames) -> list:
        """``frames`` as a sorted list, each one the track has; TrackFileError naming the ones it lacks."""
        frames = self.frames if frames is None else sorted({int(f) for f in frames})
        have = set(self.frames)
        missing = [f for f in frames if f not in have]
        if missing:
            src = self.track.provenance.get("source", "the track")
            raise TrackFileError(f"frames {format_frames(missing)} are not in {src} (it has {format_frames(self.frames)}); "
                                 "ask for frames the track has")
        return frames

    def render(self, frames=None):
        """Yield a FrameResult for each of ``frames`` (default: every frame of the track), in order."""
        frames = self.check_frames(frames)
        batches = [frames[i:i + self.batch_size] for i in range(0, len(frames), self.batch_size)]
        pending = deque()
        with ThreadPoolExecutor(max_workers=2) as pool:
            for batch in batches:
                generated = self._generate(batch, pool)
                pending.append([pool.submit(self._finish, f, g) for f, g in zip(batch, generated)])
                while len(pending) > 1:
                    yield from (job.result() for job in pending.popleft())
            while pending:
                yield from (job.result() for job in pending.popleft())

    def _generate(self, batch, pool) -> list:
        """Per frame of ``batch``: what the generator made of it (None when the frame is flagged).

        Image generator: the face square (R, R, 3) in the output colour space. Warp generator: the
        frame's warp (flow, triangles, the still warped in sRGB) with the network's correction and mask.
        """
        rows = [self.driving.index(f) for f in batch]
        usable = [i for i in rows if self.driving.usable[i]]
        made = {}
        if usable and not self.model.warp:
            rasters = to_model(np.stack([model_crop(None, self.driving.points[i], self.model.crop).raster
                                         for i in usable]))
            out = self.model.generate(rasters, self.embedding)  # (B, 3, R, R) in [-1, 1], sRGB
            srgb = np.clip((np.transpose(out, (0, 2, 3, 1)) + 1.0) / 2.0, 0.0, 1.0)
            for i, face in zip(usable, srgb):
                made[i] = {"face": colour.from_srgb(face, self.output_colorspace)}
        elif usable:
            warps = list(pool.map(self._warp, usable))
            for i, w in zip(usable, warps):
                made[i] = w
            if self.correction:  # 0: the warp alone, no network to run
                crops = [w.pop("crop") for w in warps]
                correction, mask = self.model.correct(to_model(np.stack([c.raster for c in crops])),
                                                      to_model(np.stack([c.image for c in crops])), self.embedding)
                for i, corr, m in zip(usable, correction, mask):
                    made[i].update(correction=corr, mask=m * np.float32(self.correction))
        return [made.get(i) for i in rows]

    def _warp(self, i) -> dict:
        """Row ``i``'s warp: flow, triangles, the model's crop transform, and when the correction runs the
        still warped in sRGB and the model's crop of it."""
        points = self.driving.points[i]
        flow, triangle = warp_field(self.mesh, points)
        if not self.correction:
            return {"flow": flow, "triangle": triangle, "transform": self.model.crop.transform(points)}
        srgb = apply_flow(self.srgb, flow)
        crop = model_crop(np.clip(np.round(srgb * 255.0), 0, 255).astype(np.uint8), points, self.model.crop)
        return {"flow": flow, "triangle": triangle, "srgb": srgb, "crop": crop, "transform": crop.transform}

    def _finish(self, frame, made) -> FrameResult:
        i = self.driving.index(frame)
        h, w = self.linear.shape[:2]
        meta = {**self.metadata, "monalisa:frame": int(frame), "monalisa:flagged": int(made is None)}
        if made is None:
            meta["monalisa:flag_reason"] = self.driving.reasons.get(int(frame), "")
            return FrameResult(frame, self.linear.copy(), self.still.alpha, np.zeros((h, w), np.float32),
                               np.zeros((h, w, 2), np.float32), True, meta)
        points = self.driving.points[i]
        flow, triangle = (made["flow"], made["triangle"]) if "flow" in made else warp_field(self.mesh, points)
        base = apply_flow(self.linear, flow)
        alpha = None if self.still.alpha is None else apply_flow(self.still.alpha, flow)
        if "face" in made:  # image generator: the face square pasted back under the face matte
            transform = self.model.crop.transform(points)
            matte = face_matte(points, transform, w, h, self.feather)
            rgb = composite(base, made["face"], matte, transform)
        else:  # warp generator: the warp, plus the correction at the still's resolution under its own mask
            rgb = base
            matte = face_matte(points, made["transform"], w, h, self.feather)
            if "correction" in made:
                srgb, reach = warp_composite(made["srgb"], made["transform"], made["correction"], made["mask"])
                where = reach > 0
                if where.any():
                    rgb[where] = colour.from_srgb(srgb[where], self.output_colorspace)
                matte = np.maximum(matte, reach)
            if self.mouth is not None:  # last, over the correction: the interior between the parted lips
                rgb, hole = self.mouth.paint(rgb, points, self.output_colorspace)
                matte = np.maximum(matte, hole)
        motion = motion_vectors(self.mesh, points, self.driving.next_points(i), triangle)
        return FrameResult(frame, rgb, alpha, matte, motion, False, meta)
