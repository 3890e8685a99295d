"""Turn talking-face clips into training data: aligned face squares + 68-point landmarks per frame.

Layout of a prepared folder (``monalisa prepare CLIP... --out DIR``)::

    DIR/manifest.json        {"format": "monalisa-prepared", "version": 1, "size": S,
                              "videos": [{"id", "dir", "source", "source_sha256",
                                          "frames", "skipped", "fps"}, ...]}
    DIR/<id>/frames.npy      uint8   (N, S, S, 3)  RGB aligned face crops
    DIR/<id>/landmarks.npy   float32 (N, 68, 2)   iBUG-68 points in crop pixels
    DIR/<id>/frames.json     source frame numbers kept, skipped ones, fps, the crop matrices

The squares are step 1 of the model's crop (``monalisa.nodes.facecrop``): ``prepare_size`` = S
at ``margin`` (recorded in the manifest's "crop"); training resizes them to the model's resolution
with the same function, so fine-tuning, export and rendering see faces cut the same way.

Each clip's folder is written atomically and skipped on a re-run when its source hash and
settings match, so an interrupted run resumes where it stopped. Torch-free: landmarks and crop
geometry come from ``monalisa.nodes``, shared with the runtime.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from monalisa.errors import DataError, MediaError, NoFaceError
from monalisa.files import atomic_dir, check_out_dir, remove_stale_temps, sha256_file, write_json
from monalisa.nodes.detect import box_area, create_detector
from monalisa.nodes.facecrop import CropGeometry, model_crop
from monalisa.nodes.media import iter_frames, probe
from monalisa.nodes.moviecheck import decode_error

log = logging.getLogger(__name__)

FORMAT, VERSION = "monalisa-prepared", 1
DETECT_SIDE = 320  # faces are boxed on a copy scaled to this long side; landmarks use full resolution
MARGIN = CropGeometry().margin  # the model crop's margin; prepared squares are its first step
CLIP_FILES = ("frames.npy", "landmarks.npy", "frames.json")  # what a clip folder holds


@dataclass(frozen=True)
class PrepareOptions:
    size: int = 256  # side of the aligned square
    every: int = 1  # keep every n-th frame
    max_frames: int | None = None  # per clip, after ``every``
    backend: str = "dlib"

    @property
    def geometry(self) -> CropGeometry:
        """The crop of a prepared square: step 1 of the model crop, at ``size``."""
        return CropGeometry(resolution=self.size, prepare_size=self.size, margin=MARGIN)


def clip_id(path: Path, taken: set) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem) or "clip"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _largest_face(detector, rgb):
    """(box, points) of the largest face, boxed on a downscaled copy; None when there is none."""
    import cv2

    scale = min(1.0, DETECT_SIDE / max(rgb.shape[:2]))
    small = rgb if scale == 1.0 else cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = detector.boxes(small)
    if not found:
        return None
    boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r, _ in found]
    rect = found[max(range(len(found)), key=lambda i: box_area(boxes[i]))][0]  # nodes.detect.largest_face's rule
    box = tuple(v / scale for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
    return box, detector.landmarks(rgb, box)


def prepare_clip(path, out_dir, options: PrepareOptions, detector=None, progress=True, info=None) -> dict:
    """Prepare one clip into ``out_dir`` (written atomically); returns its manifest entry.
    ``info``: the clip's MediaInfo when already probed."""
    path = Path(path)
    info = info or probe(path)  # MediaError for a missing, unreadable or empty clip
    detector = detector or create_detector(options.backend)
    geometry = options.geometry
    crops, points, kept, skipped, matrices = [], [], [], [], []
    frames = tqdm(_frames(path, options.every), total=(info.count + options.every - 1) // options.every,
                  desc=f"prepare {path.name}", unit="frame", disable=not progress, leave=False)
    for n, rgb in frames:
        if options.max_frames is not None and len(kept) + len(skipped) >= options.max_frames:
            break
        face = _largest_face(detector, rgb)
        if face is None:
            skipped.append(int(n))
            continue
        crop = model_crop(rgb, face[1], geometry)
        crops.append(crop.image)
        points.append(crop.points)
        matrices.append(crop.transform.matrix.tolist())
        kept.append(int(n))
    if not kept and not skipped:
        raise MediaError(f"{path}: the clip has no frames; re-export it")
    if not kept:
        raise NoFaceError(f"{path}: no face found in any of {len(skipped)} frames; "
                          "give clips of one visible, roughly frontal face")
    source_sha = sha256_file(path)
    with atomic_dir(out_dir, ours=CLIP_FILES) as tmp:
        np.save(tmp / "frames.npy", np.stack(crops).astype(np.uint8))
        np.save(tmp / "landmarks.npy", np.stack(points).astype(np.float32))
        write_json(tmp / "frames.json", {"source": str(path), "source_sha256": source_sha,
                                         "options": options.__dict__, "fps": info.fps, "frames": kept,
                                         "skipped": skipped, "matrices": matrices})
    return {"id": Path(out_dir).name, "dir": Path(out_dir).name, "source": str(path),
            "source_sha256": source_sha, "frames": len(kept), "skipped": len(skipped), "fps": info.fps}


def _frames(path: Path, every: int):
    """iter_frames, with a frame that fails to decode part-way as one MediaError line."""
    import av

    last = None
    try:
        for n, rgb in iter_frames(path, step=every):
            last = n
            yield n, rgb
    except av.error.FFmpegError as exc:
        raise decode_error(path, 0 if last is None else last + 1, exc) from None


def _done_entry(folder: Path, source: Path, options: PrepareOptions) -> dict | None:
    """The manifest entry of an already prepared clip folder, or None if it must be redone."""
    meta_path = folder / "frames.json"
    if not meta_path.is_file() or not (folder / "frames.npy").is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError:
        return None
    if meta.get("options") != options.__dict__ or meta.get("source_sha256") != sha256_file(source):
        return None
    return {"id": folder.name, "dir": folder.name, "source": str(source), "source_sha256": meta["source_sha256"],
            "frames": len(meta["frames"]), "skipped": len(meta["skipped"]), "fps": meta.get("fps", 0.0)}


def prepared_entries(out: Path, ids) -> list[str]:
    """Names monalisa writes in a prepared folder: the manifest, the clip folders of ``ids`` and
    any clip folder a previous prepare left there."""
    out = Path(out)
    earlier = [p.name for p in out.iterdir() if p.is_dir() and (p / "frames.json").is_file()] if out.is_dir() else []
    return ["manifest.json", *ids, *earlier]


def prepare(clips, out, options: PrepareOptions = PrepareOptions(), progress=True, overwrite: bool = False) -> dict:
    """Prepare every clip into ``out`` and write ``out/manifest.json``; resumes finished clips.

    Everything is checked before the first frame is decoded: the output folder (refused when it
    holds files monalisa did not write, unless ``overwrite``; those are kept either way) and every
    clip (probed, and a movie cut short refused)."""
    clips, out = [Path(c) for c in clips], Path(out)
    if not clips:
        raise DataError("no clips given; pass one or more movie files or image-sequence patterns")
    taken = set()
    ids = [clip_id(clip, taken) for clip in clips]
    check_out_dir(out, prepared_entries(out, ids), overwrite=overwrite)
    infos = [probe(clip) for clip in clips]  # fail fast, before hours of work, on a bad or cut clip
    remove_stale_temps(out)
    detector, videos = None, []
    for clip, info, name in tqdm(list(zip(clips, infos, ids)), desc="clips", unit="clip", disable=not progress):
        folder = out / name
        entry = _done_entry(folder, clip, options)
        if entry is None:
            detector = detector or create_detector(options.backend)
            entry = prepare_clip(clip, folder, options, detector, progress, info)
        else:
            log.info("%s: already prepared in %s, skipped", clip, folder)
        videos.append(entry)
    manifest = {"format": FORMAT, "version": VERSION, "size": options.size,
                "crop": {"prepare_size": options.size, "margin": MARGIN}, "videos": videos}
    write_json(out / "manifest.json", manifest)
    return manifest


def read_manifest(folder) -> dict:
    """The manifest of a prepared folder; DataError when missing or not ours."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; run `monalisa prepare CLIP... --out {folder}` first")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); re-run monalisa prepare") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(f"{path}: not a {FORMAT} version {VERSION} manifest; re-run monalisa prepare")
    if not manifest.get("videos") or not isinstance(manifest["videos"], list):
        raise DataError(f"{path}: lists no videos; prepare at least one clip with a face")
    return manifest


def manifest_geometry(manifest: dict, resolution: int) -> CropGeometry:
    """The model crop at ``resolution`` from a prepared folder's squares (DataError when they are
    smaller than the model: prepare again with a larger --size)."""
    size = int(manifest["size"])
    if size < resolution:
        raise DataError(f"prepared squares are {size} px, smaller than the model's {resolution} px; "
                        f"run monalisa prepare with --size {resolution} or more")
    margin = float((manifest.get("crop") or {}).get("margin", MARGIN))
    return CropGeometry(resolution=resolution, prepare_size=size, margin=margin)
