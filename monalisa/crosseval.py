"""Cross-reenactment: stills of people driven by clips of other people, no ground truth
(``monalisa evaluate --driver CLIP --stills STILL...``; docs/evaluate.md).

Per still × clip: the clip's first ``frames`` frames are tracked as ``monalisa track`` does (dlib,
unsmoothed); the *intended* landmarks are that track retargeted onto the still (relative, no
smoothing: the still's own landmarks plus the performer's motion). Each row renders the frames
through the render path (``nodes.node.AnimatePortrait``, sRGB out):

- ``warp``: the plain landmark warp of the unsmoothed track (no network, no smoothing, ``--mouth off``);
- ``render``: the default render without identity;
- ``render+identity``: with ``checkpoint``, an identity fine-tuned on the still (K = 1) and baked,
  as the README's main job makes it (``models.finetune.make_identity_pack``, then
  ``monalisa.evaluate.bake_identity``).

Measures per row (``models.quality``): faces found per frame (dlib near where the face should
be); identity = cosine of dlib face descriptors, output vs the still; landmark error = the points
found vs the intended ones / inter-ocular distance; mouth r = correlation of the found mouth
opening with the performer's; mouth interior = ``quality.mouth_interior`` inside the intended
inner-lip polygon on frames where the performer's mouth is open (> ``quality.OPEN_MOUTH``), the
performer's own frames (their own points) giving the reference; detail = ``quality.detail`` of the
output / the still's. OUT/<still>__<clip>/ gets contact_sheet.png (rows: performer, then each row
of the table, on the most open-mouthed frames) and metrics.json (a re-run with the same settings
skips the pair); OUT/cross.csv and OUT/cross.md the table.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from monalisa.errors import InputError
from monalisa.files import write_json, write_text
from monalisa.models import quality

log = logging.getLogger(__name__)

#: column -> (header, better, format)
COLUMNS = {"identity": ("identity ↑", "{:.3f}"), "landmark_error": ("landmark err ↓", "{:.4f}"),
           "mouth_r": ("mouth r ↑", "{:.3f}"), "interior": ("mouth interior ↑", "{:.1f}"),
           "detail": ("detail ↑", "{:.2f}"), "faces": ("faces found", "{:.0%}")}
PERFORMER = "performer"
SHEET_COLUMNS = 6


@dataclass
class PairResult:
    still: str
    clip: str
    row: str
    frames: int
    metrics: dict


@dataclass
class Performance:
    """The driving clip: its first frames, their track (unsmoothed) and frame rate."""

    path: Path
    fps: float
    track: object  # trackfile.Track
    images: dict  # frame -> uint8 (H, W, 3)


def check_inputs(stills, clips, frames: int) -> None:
    """Bad input before any work: missing files, too few frames, a still without a face."""
    from monalisa.errors import ConfigError, NoFaceError
    from monalisa.nodes.detect import create_detector
    from monalisa.nodes.media import read_image

    if frames < 3:
        raise ConfigError(f"--frames must be at least 3, got {frames}")
    if not stills:
        raise InputError("--driver needs --stills: the still images to animate (people other than the performer)")
    for c in clips:
        if not Path(c).is_file():
            raise InputError(f"{c}: driving clip not found; give a movie file of one talking person")
    detector = create_detector("dlib")
    for s in stills:
        if not Path(s).is_file():
            raise InputError(f"{s}: still not found; give an image file")
        if not detector.detect(read_image(s)):
            raise NoFaceError(f"{s}: no face found; give a still with one visible face")


def load_performance(path, frames: int) -> Performance:
    from monalisa.nodes.media import iter_frames, probe
    from monalisa.nodes.track import track_plate

    path = Path(path)
    track = track_plate(path, end=frames - 1)
    images = {f: rgb for f, rgb in iter_frames(path, int(track.frames[0]), int(track.frames[-1]))}
    return Performance(path, probe(path).fps or 24.0, track, images)


def rows(identity=None, model=None) -> dict:
    """label -> AnimatePortrait options of the table's rows."""
    out = {"warp": dict(model=model, smooth=False, correction=0.0, mouth="off"), "render": dict(model=model)}
    if identity is not None:
        out["render+identity"] = dict(model=model, identity=identity)
    return out


def render_row(still, perf: Performance, options: dict):
    """-> (node, {frame: uint8 sRGB}) through the render path."""
    from monalisa.nodes import colour
    from monalisa.nodes.node import AnimatePortrait

    node = AnimatePortrait(str(still), track=perf.track, output_colorspace=colour.SRGB, fps=perf.fps, **options)
    frames = [int(f) for f in perf.track.frames]
    out = {r.frame: np.clip(np.round(r.rgb * 255.0), 0, 255).astype(np.uint8) for r in node.render(frames)}
    return node, out


def _box(points) -> tuple:
    lo, hi = np.floor(points.min(0)), np.ceil(points.max(0))
    return (int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1]))


def score_row(images: dict, intended: dict, performer: dict, analyser, still_descriptor, still_detail,
              open_frames) -> dict:
    """The row's measures over its frames (see the module docstring)."""
    found = {f: analyser.near(img, intended[f]) for f, img in images.items()}
    ok = [f for f in images if found[f] is not None]
    metrics = {"faces": len(ok) / len(images)}
    if ok:
        metrics["identity"] = float(np.mean([quality.cosine(analyser.descriptor(images[f], _box(found[f])),
                                                            still_descriptor) for f in ok]))
        metrics["landmark_error"] = float(np.mean([quality.landmark_error(found[f], intended[f]) for f in ok]))
        metrics["mouth_r"] = quality.correlation([quality.mouth_opening(found[f]) for f in ok],
                                                 [quality.mouth_opening(performer[f]) for f in ok])
        metrics["detail"] = float(np.mean([quality.detail(images[f], intended[f]) for f in ok]) / still_detail)
    interior = [quality.mouth_interior(images[f], intended[f]) for f in open_frames]
    metrics["interior"] = float(np.nanmean(interior)) if np.isfinite(interior).any() else float("nan")
    return metrics


def evaluate_pair(still, perf: Performance, row_options: dict, analyser, out: Path | None, key: dict) -> list:
    """Every row on one still × clip -> [PairResult] (performer reference first)."""
    from monalisa.nodes.drive import drive
    from monalisa.nodes.sheet import write_contact_sheet

    still = Path(still)
    folder = out / f"{still.stem}__{perf.path.stem}" if out is not None else None
    if folder is not None and (folder / "metrics.json").is_file():
        saved = json.loads((folder / "metrics.json").read_text())
        if saved.get("key") == key:
            log.info("%s: already evaluated; skipped", folder)
            return [PairResult(**r) for r in saved["results"]]
    frames = [int(f) for f in perf.track.frames]
    performer = dict(zip(frames, np.asarray(perf.track.points, np.float64)))
    open_frames = [f for f in frames if quality.mouth_opening(performer[f]) > quality.OPEN_MOUTH]
    reference = [quality.mouth_interior(perf.images[f], performer[f]) for f in open_frames]
    results = [PairResult(still.name, perf.path.stem, PERFORMER, len(frames), {
        "interior": float(np.nanmean(reference)) if np.isfinite(reference).any() else float("nan")})]
    shown, intended = {}, None
    for label, options in row_options.items():
        node, images = render_row(still, perf, options)
        if intended is None:
            points = drive(perf.track, node.still_points, smooth=False, fps=perf.fps).points
            intended = dict(zip(frames, np.asarray(points, np.float64)))
            still_rgb = np.clip(np.round(node.srgb * 255.0), 0, 255).astype(np.uint8)
            still_pts = np.asarray(node.still_points, np.float64)
            still_descriptor = analyser.descriptor(still_rgb, _box(still_pts))
            still_detail = quality.detail(still_rgb, still_pts)
        metrics = score_row(images, intended, performer, analyser, still_descriptor, still_detail, open_frames)
        results.append(PairResult(still.name, perf.path.stem, label, len(frames), metrics))
        shown[label] = images
    if folder is not None:
        picks = sorted(sorted(frames, key=lambda f: -quality.mouth_opening(performer[f]))[:SHEET_COLUMNS])
        sheet = [[quality.metric_crop(perf.images[f], quality.metric_transform(performer[f])) for f in picks]]
        sheet += [[quality.metric_crop(shown[label][f], quality.metric_transform(intended[f])) for f in picks]
                  for label in shown]
        from monalisa.evaluate import label_tile

        sheet = [[label_tile(r[0], name), *r[1:]] for r, name in zip(sheet, [PERFORMER, *shown])]
        write_contact_sheet(folder / "contact_sheet.png", sheet)
        write_json(folder / "metrics.json", {"key": key, "still": str(still), "clip": str(perf.path),
                                             "frames": frames, "open_mouth_frames": open_frames,
                                             "sheet_frames": picks, "results": [asdict(r) for r in results]})
    return results


def mean_rows(results: list) -> list:
    groups = {}
    for r in results:
        groups.setdefault(r.row, []).append(r)
    out = []
    for row, rs in groups.items():
        metrics = {}
        for c in COLUMNS:
            v = np.array([r.metrics.get(c, np.nan) for r in rs], np.float64)
            metrics[c] = float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")
        out.append(PairResult("mean", "", row, sum(r.frames for r in rs), metrics))
    return out


def _cell(column: str, value) -> str:
    return "–" if value is None or not np.isfinite(value) else COLUMNS[column][1].format(value)


def markdown_table(results: list, means: list) -> str:
    head = ["still", "clip", "row", *(h for h, _ in COLUMNS.values())]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * len(COLUMNS)]
    for r in [*results, *means]:
        lines.append("| " + " | ".join([r.still, r.clip, r.row, *(_cell(c, r.metrics.get(c)) for c in COLUMNS)]) + " |")
    return "\n".join(lines) + "\n"


def goals(means: list) -> str:
    """The issue's goals for the rendered rows against the warp (and the performer's mouth)."""
    by = {r.row: r.metrics for r in means}
    if "warp" not in by:
        return ""
    w, perf = by["warp"], by.get(PERFORMER, {})
    lines = []
    for row in [r for r in by if r not in ("warp", PERFORMER)]:
        m = by[row]
        checks = [("mouth interior >= half the performer's", m["interior"], 0.5 * perf.get("interior", np.nan)),
                  ("mouth r >= warp - 0.05", m["mouth_r"], w["mouth_r"] - 0.05),
                  ("identity >= warp - 0.01", m["identity"], w["identity"] - 0.01),
                  ("landmark err <= 1.5 x warp", -m["landmark_error"], -1.5 * w["landmark_error"]),
                  ("detail >= 0.8 x warp", m["detail"], 0.8 * w["detail"]),
                  ("a face on every frame", m["faces"], 1.0)]
        for name, value, bound in checks:
            met = bool(np.isfinite(value) and np.isfinite(bound) and value >= bound - 1e-12)
            lines.append(f"- {row}: {name}: {abs(value):.4g} vs {abs(bound):.4g}: {'met' if met else 'NOT met'}")
    return "\n".join(lines) + "\n"


def evaluate_cross(stills, clips, out=None, *, frames: int = 48, model=None, checkpoint=None,
                   finetune: dict | None = None, progress=True) -> dict:
    """Every still × clip -> {"results", "means", "table", "goals"}; ``finetune``: options of
    ``make_identity_pack`` for the K = 1 identity (with ``checkpoint``)."""
    from tqdm import tqdm

    stills, clips = [Path(s) for s in stills], [Path(c) for c in clips]
    check_inputs(stills, clips, frames)
    out = Path(out) if out is not None else None
    if out is not None:
        from monalisa.files import check_out_dir

        pairs = [f"{s.stem}__{c.stem}" for s in stills for c in clips]
        check_out_dir(out, ours=("cross.csv", "cross.md", "identities", *pairs))
    base_sha256 = None
    if checkpoint is not None:
        from monalisa.models.checkpoint import load_checkpoint

        base_sha256 = load_checkpoint(checkpoint).sha256  # bad input before long work
    analyser = quality.FaceAnalyser()
    performances = {c: load_performance(c, frames) for c in tqdm(clips, desc="track", disable=not progress)}
    results = []
    for still in stills:
        identity = None
        if checkpoint is not None:
            identity = still_identity(checkpoint, still, out, finetune or {}, base_sha256)
        key = {"frames": frames, "model": str(model), "checkpoint": base_sha256, "finetune": finetune or {},
               "rows": list(rows(identity, model)), "columns": list(COLUMNS)}
        for clip in clips:
            results.extend(evaluate_pair(still, performances[clip], rows(identity, model), analyser, out, key))
    means = mean_rows(results)
    table, met = markdown_table(results, means), goals(means)
    if out is not None:
        from monalisa.evaluate import results_csv

        write_text(out / "cross.csv", results_csv(results + means, ("still", "clip", "row", "frames"), COLUMNS))
        write_text(out / "cross.md", table + "\n" + met)
    return {"results": results, "means": means, "table": table, "goals": met}


def still_identity(checkpoint, still: Path, out: Path | None, options: dict, base_sha256=None) -> Path:
    """The README's main job for one still (K = 1): identity pack, then the baked export; kept under
    OUT/identities/<still>/ (reused when its settings match) or a temporary folder."""
    from monalisa.evaluate import bake_identity
    from monalisa.models.finetune import make_identity_pack

    if out is None:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="monalisa-cross-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    else:
        root = out / "identities" / still.stem
    from monalisa.files import sha256_file

    settings = {"checkpoint": base_sha256 or str(checkpoint), "still": sha256_file(still), **options}
    done = root / "settings.json"
    for name in ("baked_warp_generator.onnx", "baked_generator.onnx"):
        if done.is_file() and json.loads(done.read_text()) == settings and (root / "onnx" / name).is_file():
            return root / "onnx" / name
    make_identity_pack(checkpoint, [still], root / "identity", overwrite=True, progress=False, **options)
    baked = bake_identity(checkpoint, root / "identity", root / "onnx")
    write_json(done, settings)
    return baked
