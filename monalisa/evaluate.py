"""Self-reenactment evaluation on real clips: monalisa against honest baselines (``monalisa evaluate``).

Protocol (docs/evaluate.md; fixed, so figures compare): per clip

- the *source* (the still) is the first frame with a face; learned methods get K frames spread over
  the clip's first half (K = 1: the source alone);
- 32 *targets* spread over the last half, each driven by its true landmarks (dlib); every method
  predicts the full frame;
- metrics (``models.quality``) on the 256² square aligned on the target's true landmarks (the same
  square for truth and prediction) and on the full frame: L1, PSNR, SSIM; AKD on the square; CSIM on
  full frames;
- *flicker* on a window of consecutive frames in the last half, all cut with the window's first
  square;
- the *inner mouth*: L1 and SSIM inside the true inner-lip polygon (eroded 1 px) of the targets
  whose true mouth is open (``quality.OPEN_MOUTH``), on the same square.

Methods are callables ``predict(clip, frames) -> {frame: uint8 (H, W, 3)}``. The baselines need the
source frame only: ``copy`` (the still unchanged), ``warp`` (``nodes.warp``, the render path's dense
piecewise-affine warp of the still to the target landmarks) and ``warp-blur`` (that warp blurred by
a Gaussian of sigma 1.5 px at the 256² metric scale: gains that are only blur show up against it).

Results per clip are kept in OUT/<clip>/metrics.json (a re-run with the same options skips the clip);
OUT/results.csv, OUT/table.md, OUT/<clip>/contact_sheet.png (rows: truth, monalisa..., warp) and
OUT/<clip>/preview.mp4 (the window, side by side) are written atomically.

This module is top-level (not in ``models/``) because it drives every stage: the render path
(``nodes``), fine-tuning (``models.finetune.make_identity_pack``) and the export
(``export.pipeline.export_checkpoint``), through the same public functions a user's script calls.
Cross-reenactment (stills of other people, no ground truth) is ``monalisa.crosseval``.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from monalisa.errors import InputError, NoFaceError
from monalisa.files import write_json, write_text
from monalisa.models import quality
from monalisa.models.config import FINETUNE_JITTER, FINETUNE_STEADY
from monalisa.nodes.detect import largest_face

log = logging.getLogger(__name__)

METRICS = ("l1", "psnr", "ssim", "l1_full", "psnr_full", "ssim_full", "akd", "csim", "flicker", "mouth_l1",
           "mouth_ssim")
#: direction of each metric for the table header
BETTER = {"l1": "↓", "psnr": "↑", "ssim": "↑", "l1_full": "↓", "psnr_full": "↑", "ssim_full": "↑", "akd": "↓",
          "csim": "↑", "flicker": "↓", "mouth_l1": "↓", "mouth_ssim": "↑"}
BLUR_SIGMA = 1.5  # px at the 256² metric scale


@dataclass(frozen=True)
class Protocol:
    targets: int = 32
    window: int = 12  # consecutive frames for flicker and the preview movie
    ks: tuple = (1, 8, 32)

    def key(self) -> dict:
        return {"targets": self.targets, "window": self.window, "ks": list(self.ks),
                "crop": quality.CROP_SIZE, "margin": quality.CROP_MARGIN, "metrics": list(METRICS)}


@dataclass
class Clip:
    """The frames a clip's evaluation needs, decoded once, with their true landmarks."""

    path: Path
    name: str
    count: int
    fps: float
    source: int
    refs: dict  # K -> [frame numbers] (first half)
    targets: list  # frame numbers (last half) with a face
    window: list  # consecutive frame numbers with a face (may be empty)
    images: dict = field(repr=False)  # frame -> uint8 (H, W, 3)
    points: dict = field(repr=False)  # frame -> float32 (68, 2)

    @property
    def still(self) -> np.ndarray:
        return self.images[self.source]

    @property
    def driven(self) -> list:
        """Every frame a method must predict: the targets then the window."""
        return sorted(set(self.targets) | set(self.window))


def spread(lo: int, hi: int, n: int) -> list:
    """n frame numbers spread evenly over [lo, hi] (fewer when the range is short)."""
    if hi < lo:
        return []
    return sorted({int(round(v)) for v in np.linspace(lo, hi, n)}) if n > 1 else [lo]


def load_clip(path, protocol: Protocol = Protocol(), detector=None, progress=True) -> Clip:
    """Decode the frames the protocol needs and detect their landmarks (dlib, largest face)."""
    from monalisa.nodes.detect import create_detector
    from monalisa.nodes.media import iter_frames, probe

    path = Path(path)
    info = probe(path)
    n = info.count
    if n < 4 + protocol.targets // 4:
        raise InputError(f"{path}: {n} frames are too few to evaluate (need a first half for the still "
                         "and a last half for targets); give a longer clip")
    half = n // 2
    detector = detector or create_detector("dlib")
    images, points = {}, {}
    # source: the first frame with a face, searched in the first half
    source = None
    for f, rgb in iter_frames(path, 0, half - 1):
        face = largest_face(detector.detect(rgb))
        if face is not None:
            source, images[f], points[f] = f, rgb, face.points
            break
    if source is None:
        raise NoFaceError(f"{path}: no face in the first half of the clip; give a clip that shows one face")
    refs = {k: ([source] if k == 1 else spread(source, half - 1, k)) for k in protocol.ks}
    targets = spread(half, n - 1, protocol.targets)
    w0 = max(half, (3 * n) // 4 - protocol.window // 2)
    window = list(range(w0, min(n, w0 + protocol.window))) if protocol.window >= 2 else []
    wanted = (set().union(*refs.values()) | set(targets) | set(window)) - {source}
    bar = tqdm(total=len(wanted), desc=f"frames {path.stem}", unit="frame", disable=not progress)
    for f, rgb in iter_frames(path, min(wanted), max(wanted)):
        if f in wanted:
            face = largest_face(detector.detect(rgb))
            if face is not None:
                images[f], points[f] = rgb, face.points
            bar.update()
    bar.close()
    lost = sorted(wanted - set(points))
    if lost:
        log.warning("%s: no face on frames %s; they are left out", path.name, lost[:8])
    refs = {k: [f for f in v if f in points] or [source] for k, v in refs.items()}
    targets = [f for f in targets if f in points]
    window = window if all(f in points for f in window) else []
    if not targets:
        raise NoFaceError(f"{path}: no face on any target frame of the last half; give a clip that shows one face")
    return Clip(path, path.stem, n, info.fps, source, refs, targets, window, images, points)


# --- baselines -------------------------------------------------------------------------------


def copy_source(clip: Clip, frames) -> dict:
    return {f: clip.still for f in frames}


def warp_source(clip: Clip, frames) -> dict:
    """The plain dense piecewise-affine warp of the still to each target's landmarks (the render's
    ``--mouth off`` mesh: one Delaunay mesh over the 68 points, the lips stretch over an open mouth)."""
    from monalisa.nodes.warp import build_mesh
    from monalisa.nodes.warp import dense_warp

    h, w = clip.still.shape[:2]
    mesh = build_mesh(clip.points[clip.source], (w, h), split_lips=False)
    return {f: dense_warp(clip.still, mesh, clip.points[f]).image for f in frames}


def blur_sigma(points) -> float:
    """Sigma in frame px equal to BLUR_SIGMA px of the metric square aligned on these landmarks."""
    m = quality.metric_transform(points).matrix
    scale = math.sqrt(abs(np.linalg.det(m[:, :2])))  # crop px per frame px
    return BLUR_SIGMA / max(scale, 1e-6)


def warp_blur(clip: Clip, frames) -> dict:
    warped = warp_source(clip, frames)
    return {f: cv2.GaussianBlur(img, (0, 0), blur_sigma(clip.points[f])) for f, img in warped.items()}


BASELINES = {"copy": copy_source, "warp": warp_source, "warp-blur": warp_blur}


# --- scoring ---------------------------------------------------------------------------------


class Scorer:
    """Truth-side analysis cached per clip; scores any method's predictions on it."""

    def __init__(self, clip: Clip, analyser: quality.FaceAnalyser):
        self.clip, self.analyser = clip, analyser
        self.tf = {f: quality.metric_transform(clip.points[f]) for f in clip.targets}
        self.crops = {f: quality.metric_crop(clip.images[f], self.tf[f]) for f in clip.targets}
        self.refs = {f: analyser.reference(self.crops[f], self.tf[f].apply(clip.points[f]), clip.images[f],
                                           clip.points[f]) for f in clip.targets}
        self.window_tf = quality.metric_transform(clip.points[clip.window[0]]) if clip.window else None
        size = (quality.CROP_SIZE, quality.CROP_SIZE)
        masks = {f: quality.inner_mouth(size, self.tf[f].apply(clip.points[f])) for f in clip.targets
                 if quality.mouth_opening(clip.points[f]) > quality.OPEN_MOUTH}
        self.mouth = {f: m for f, m in masks.items() if m.any()}  # targets whose true mouth is open

    def score(self, preds: dict) -> dict:
        clip, rows = self.clip, []
        for f in clip.targets:
            pred = preds[f]
            crop = quality.metric_crop(pred, self.tf[f])
            m = quality.image_metrics(crop, self.crops[f])
            full = quality.image_metrics(pred, clip.images[f])
            m.update({f"{k}_full": v for k, v in full.items()})
            m["akd"] = self.analyser.akd(crop, self.refs[f])
            m["csim"] = self.analyser.csim(pred, self.refs[f])
            rows.append(m)
        out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        mouth = [quality.region_metrics(quality.metric_crop(preds[f], self.tf[f]), self.crops[f], m)
                 for f, m in self.mouth.items()]
        out["mouth_l1"] = float(np.mean([m["l1"] for m in mouth])) if mouth else float("nan")
        out["mouth_ssim"] = float(np.mean([m["ssim"] for m in mouth])) if mouth else float("nan")
        if self.window_tf is not None:
            tf = self.window_tf
            out["flicker"] = quality.flicker([quality.metric_crop(preds[f], tf) for f in clip.window],
                                             [quality.metric_crop(clip.images[f], tf) for f in clip.window])
        else:
            out["flicker"] = float("nan")
        out["n"] = len(rows)
        return out


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Result:
    clip: str
    method: str
    k: int  # 0 for baselines (source frame only)
    n: int
    metrics: dict


def _sheet_rows(clip: Clip, scorer: Scorer, preds_by_method: dict, columns: int = 8) -> list:
    picks = [clip.targets[i] for i in spread(0, len(clip.targets) - 1, columns)]
    rows = [[scorer.crops[f] for f in picks]]
    for method, preds in preds_by_method.items():
        rows.append([quality.metric_crop(preds[f], scorer.tf[f]) for f in picks])
    return rows


def label_tile(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def evaluate_clip(path, out: Path | None, methods: dict, protocol: Protocol, analyser=None, detector=None,
                  progress=True, settings: dict | None = None) -> list:
    """All methods on one clip -> [Result]. methods: label -> (k, predict). Writes OUT/<clip>/; a
    re-run skips the clip when protocol, methods and ``settings`` (model, fine-tuning options) match."""
    from monalisa.nodes.preview import write_movie
    from monalisa.nodes.sheet import write_contact_sheet

    path = Path(path)
    folder = out / path.stem if out is not None else None
    key = {"protocol": protocol.key(), "methods": {m: k for m, (k, _) in methods.items()}, "settings": settings or {}}
    if folder is not None and (folder / "metrics.json").is_file():
        saved = json.loads((folder / "metrics.json").read_text())
        if saved.get("key") == key:
            log.info("%s: already evaluated (%s); skipped", path.name, folder / "metrics.json")
            return [Result(**r) for r in saved["results"]]
    clip = load_clip(path, protocol, detector, progress)
    analyser = analyser or quality.FaceAnalyser()
    scorer = Scorer(clip, analyser)
    results, shown = [], {}
    for label, (k, predict) in tqdm(methods.items(), desc=f"methods {clip.name}", disable=not progress):
        preds = predict(clip, clip.driven)
        m = scorer.score(preds)
        results.append(Result(clip.name, label, k, int(m.pop("n")), m))
        if label != "copy" and label != "warp-blur":
            shown[label] = preds
    if folder is not None:
        order = [m for m in shown if m != "warp"] + (["warp"] if "warp" in shown else [])
        rows = _sheet_rows(clip, scorer, {m: shown[m] for m in order})
        labels = ["truth", *order]
        rows = [[label_tile(r[0], lab), *r[1:]] for r, lab in zip(rows, labels)]
        write_contact_sheet(folder / "contact_sheet.png", rows)
        if clip.window:
            tf = scorer.window_tf
            movie = [np.concatenate([quality.metric_crop(clip.images[f], tf)]
                                    + [quality.metric_crop(shown[m][f], tf) for m in order], axis=1)
                     for f in clip.window]
            write_movie(folder / "preview.mp4", movie, clip.fps or 25.0)
        write_json(folder / "metrics.json", {"key": key, "clip": str(path), "source": clip.source,
                                             "targets": clip.targets, "window": clip.window,
                                             "refs": {str(k): v for k, v in clip.refs.items()},
                                             "open_mouth_targets": sorted(scorer.mouth),
                                             "results": [asdict(r) for r in results]})
    return results


def _nanmean(values) -> float:
    """Mean of the finite values; NaN when there are none (e.g. flicker without a window)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def mean_rows(results: list) -> list:
    """Mean over clips per (method, k), in first-seen order."""
    groups = {}
    for r in results:
        groups.setdefault((r.method, r.k), []).append(r)
    out = []
    for (method, k), rs in groups.items():
        metrics = {m: _nanmean([r.metrics.get(m, np.nan) for r in rs]) for m in METRICS}
        out.append(Result("mean", method, k, sum(r.n for r in rs), metrics))
    return out


def _fmt(metric: str, value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if metric.startswith("psnr"):
        return f"{value:.2f}"
    if metric == "akd":
        return f"{value:.2f}"
    return f"{value:.4f}"


def markdown_table(rows: list, clips: int) -> str:
    head = ["method", "K", *(f"{m} {BETTER[m]}" for m in METRICS)]
    lines = [f"Self-reenactment on {clips} clip(s), mean over clips (crop {quality.CROP_SIZE}²; *_full: full frame; "
             f"mouth_*: inside the true inner-lip line of targets whose mouth is open > {quality.OPEN_MOUTH:g})",
             "", "| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(METRICS)]
    for r in rows:
        lines.append("| " + " | ".join([r.method, str(r.k or "–"), *(_fmt(m, r.metrics[m]) for m in METRICS)]) + " |")
    return "\n".join(lines) + "\n"


def results_csv(results: list, fields=("clip", "method", "k", "n"), metrics=METRICS) -> str:
    """One CSV row a result: its ``fields`` (attributes), then its ``metrics`` (%.6g; nan where missing)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*fields, *metrics])
    for r in results:
        w.writerow([*(getattr(r, f) for f in fields), *(f"{r.metrics.get(m, float('nan')):.6g}" for m in metrics)])
    return buf.getvalue()


def evaluate(clips, out=None, methods: dict | None = None, protocol: Protocol = Protocol(), progress=True,
             settings: dict | None = None) -> dict:
    """Evaluate every clip; -> {"results": per clip, "means": per method, "table": Markdown}.
    ``settings``: what else decides the results (model, fine-tuning options), for resuming."""
    clips = [Path(c) for c in clips]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: clip not found; give movie files (mp4/mov/...) to evaluate")
    methods = methods if methods is not None else {name: (0, fn) for name, fn in BASELINES.items()}
    out = Path(out) if out is not None else None
    if out is not None:
        from monalisa.files import check_out_dir

        check_out_dir(out, ours=("results.csv", "table.md", *(c.stem for c in clips)))
    from monalisa.nodes.detect import create_detector

    detector, analyser = create_detector("dlib"), quality.FaceAnalyser()
    results = []
    for c in clips:
        results.extend(evaluate_clip(c, out, methods, protocol, analyser, detector, progress, settings))
    means = mean_rows(results)
    table = markdown_table(means, len(clips))
    if out is not None:
        write_text(out / "results.csv", results_csv(results + means))
        write_text(out / "table.md", table)
    return {"results": results, "means": means, "table": table}


# --- monalisa through the render path --------------------------------------------------------


def _still(clip: Clip):
    """The clip's source frame as the render path's Still (sRGB-encoded, opaque)."""
    from monalisa.nodes import colour
    from monalisa.nodes.media import Still

    srgb = clip.still
    return Still(str(clip.path), srgb.astype(np.float32) / 255.0, None, colour.resolve(colour.SRGB), srgb)


def _track(clip: Clip, frames):
    """A track of the source frame (first: the neutral of absolute retargeting) and ``frames``, with
    the clip's true landmarks: absolute retargeting then drives the still with exactly those points."""
    from monalisa.nodes.trackfile import Track

    h, w = clip.still.shape[:2]
    rows = sorted({clip.source, *frames})
    return Track(np.array(rows, np.int64), np.stack([clip.points[f] for f in rows]), (w, h),
                 provenance={"source": str(clip.path), "fps": clip.fps})


def render_method(model=None, k: int = 1, identity_for=None, warp: bool = False, mouth: str = "on"):
    """predict(clip, frames) through ``nodes.node.AnimatePortrait``: absolute retarget with the
    clip's true landmarks (self-reenactment), no smoothing, output in sRGB. Feed-forward with the
    clip's K reference frames as the embedder's references (none when K = 0), or identity_for(clip) ->
    baked .onnx; ``warp``: a warp model's correction at full weight either way (else the render's
    default, which drops it without an identity); ``mouth``: the render's --mouth."""

    def predict(clip: Clip, frames) -> dict:
        from monalisa.nodes import colour
        from monalisa.nodes.node import AnimatePortrait

        identity = identity_for(clip) if identity_for is not None else None
        refs = None if identity is not None or not k else [(clip.images[f], clip.points[f]) for f in clip.refs[k]]
        node = AnimatePortrait(_still(clip), track=_track(clip, frames), model=model, identity=identity,
                               still_landmarks_from=clip.points[clip.source], output_colorspace=colour.SRGB,
                               smooth=False, retarget="absolute", references=refs, fps=clip.fps,
                               neutral_frame=clip.source, correction=1.0 if warp else None, mouth=mouth)
        out = {}
        for r in node.render(list(frames)):
            out[r.frame] = np.clip(np.round(r.rgb * 255.0), 0, 255).astype(np.uint8)
        return out

    return predict


def default_methods(protocol: Protocol, model=None, checkpoint=None, finetune_steps: int = 100,
                    baselines_only: bool = False, finetune_jitter: int = FINETUNE_JITTER,
                    finetune_steady: float = FINETUNE_STEADY,
                    finetune_loss: str = "pyramid") -> dict:
    """label -> (K, predict): monalisa feed-forward on K frames, the default render without identity
    (warp models), fine-tuned identities per K (with a checkpoint), then the baselines."""
    methods = {}
    if not baselines_only:
        try:
            import monalisa.nodes.node  # noqa: F401
        except ImportError:
            log.warning("the render path (monalisa.nodes.node) is not available: baselines only")
        else:
            from monalisa.nodes.models import resolve_model_dir

            warp = (resolve_model_dir(model) / "warp_generator.onnx").is_file()
            method = (lambda k, ident=None: render_method(model, k, ident, warp))  # the node reads the model's role
            for k in protocol.ks:
                methods[f"monalisa-ff{k}"] = (k, method(k))
            if warp:  # what `monalisa render` does without an identity (its correction weight, its extras)
                methods["monalisa-default"] = (0, render_method(model, 0, None, warp=False))
            if checkpoint is not None:
                from monalisa.models.checkpoint import load_checkpoint

                ckpt = load_checkpoint(checkpoint)  # bad input before long work
                if (ckpt.config.generator == "warp") != warp:
                    raise InputError(f"{checkpoint}: a {ckpt.config.generator} generator checkpoint does not match "
                                     f"the model folder {model}; give the checkpoint the folder was exported from")
                for k in protocol.ks:
                    methods[f"monalisa-ft{k}"] = (k, method(k, finetuned_identity(
                        checkpoint, k, finetune_steps, jitter=finetune_jitter, steady=finetune_steady,
                        loss=finetune_loss)))
    methods.update({name: (0, fn) for name, fn in BASELINES.items()})
    return methods


def finetuned_identity(checkpoint, k: int, steps: int, workdir=None, jitter: int = FINETUNE_JITTER,
                       steady: float = FINETUNE_STEADY, loss: str = "pyramid"):
    """-> identity_for(clip): what a user runs for an identity, on the clip's K reference frames
    written as PNG stills (the source first: the still that is animated): ``make_identity_pack``
    (crops, fine-tuning, the pack; ``loss`` the content-loss stand-in) then :func:`bake_identity`.
    Cached per clip and K; without ``workdir`` the packs and exports go to a temporary folder removed
    at exit."""
    cache = {}
    if workdir is not None:
        root = Path(workdir)
    else:
        import atexit
        import shutil
        import tempfile

        root = Path(tempfile.mkdtemp(prefix="monalisa-eval-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)

    def identity_for(clip: Clip):
        if clip.name not in cache:
            from monalisa.models.finetune import make_identity_pack

            folder = root / f"{clip.name}_k{k}"
            (folder / "stills").mkdir(parents=True, exist_ok=True)
            stills = []
            for f in clip.refs[k]:
                stills.append(folder / "stills" / f"{clip.name}.{f:06d}.png")
                cv2.imwrite(str(stills[-1]), cv2.cvtColor(clip.images[f], cv2.COLOR_RGB2BGR))
            make_identity_pack(checkpoint, stills, folder / "identity", steps=steps, jitter=jitter, steady=steady,
                               stand_in=loss, overwrite=True, progress=False)
            cache[clip.name] = bake_identity(checkpoint, folder / "identity", folder / "onnx")
        return cache[clip.name]

    return identity_for


def bake_identity(checkpoint, pack, out) -> Path:
    """``monalisa export CHECKPOINT --identity PACK --out OUT`` (the export's public entry point) ->
    the baked generator's path."""
    from monalisa.export.pipeline import export_checkpoint

    export_checkpoint(checkpoint, out, identity=pack, overwrite=True)
    return next(Path(out) / name for name in ("baked_warp_generator.onnx", "baked_generator.onnx")
                if (Path(out) / name).is_file())
