"""A render job: the node's frames written as a sequence, resumable, with a preview on request.

``render_sequence(job)`` checks everything it can before the long work (output pattern and folder,
the still, its face, the models, the track and the frames asked for, files in the way), then streams
the node's frames to disk: each frame atomically, writes overlapping the next frames' inference.
Frames already rendered from the same inputs are skipped unless ``overwrite``; a file monalisa did
not write is never replaced. A frame whose write fails is counted and the job goes on (exit 1).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from monalisa.errors import InputError, MonalisaError
from monalisa.files import check_writes, remove_stale_temps, sha256_file
from monalisa.nodes import colour, trackfile
from monalisa.nodes.drive import DEFAULT_FPS

from monalisa.nodes.writer import check_output, frame_path, read_header, sequence_stem, write_frame

log = logging.getLogger(__name__)

#: header keys that must match for an existing frame to count as already rendered
SAME_INPUTS = ("monalisa:model_sha256", "monalisa:embedder_sha256", "monalisa:identity_sha256",
               "monalisa:track_sha256", "monalisa:still_sha256", "monalisa:retarget", "monalisa:colorspace",
               "monalisa:version", "monalisa:correction", "monalisa:neutral_frame", "monalisa:mouth",
               "monalisa:mouth_sha256")


@dataclass
class RenderJob:
    still: str
    out: str
    track: str | None = None
    plate: str | None = None
    start_frame: int | None = None  # a movie plate's first frame number (default 0)
    frames: list | None = None
    identity: str | None = None
    model: str | None = None
    correction: float | None = None  # warp models: None = 1 with an identity, 0 without
    mouth: str = "on"  # on: the lips part and the mouth interior is painted; off: the lips stretch
    mouth_model: str | None = None  # the mouth-interior .onnx (default: the bundled one)
    precision: str = "fp32"
    still_landmarks: str | None = None
    colorspace: str | None = None
    retarget: str = "relative"
    neutral_frame: int | None = None
    smooth: bool = True
    smooth_strength: float = 1.0
    feather: float = 0.25
    batch: int = 4
    device: str = "cpu"
    strict_device: bool = False
    threads: int = 0
    overwrite: bool = False
    preview: bool = False


@dataclass
class Summary:
    written: int = 0
    skipped: int = 0
    flagged: int = 0
    failed: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        fps = self.written / self.seconds if self.seconds > 0 else 0.0
        failed = f", {self.failed} FAILED" if self.failed else ""
        return f"{self.written} written, {self.skipped} skipped, {self.flagged} flagged{failed}, {fps:.1f} fps"


def _frames_hint(job: RenderJob) -> int:
    """How many frames the job will write, known cheaply (for the output-pattern check)."""
    if job.frames is not None:
        return len(job.frames)
    if job.track is not None:
        return len(trackfile.load(job.track).frames)
    from monalisa.nodes.media import probe

    return probe(job.plate, job.start_frame).count


def _in_the_way(paths: dict, metadata: dict, overwrite: bool):
    """Split frames into (todo, done); InputError for a file monalisa did not write."""
    todo, done = [], []
    for frame, path in paths.items():
        if not path.exists():
            todo.append(frame)
            continue
        header = read_header(path)
        if header is None or int(header.get("monalisa:synthetic", 0)) != 1:
            raise InputError(f"{path}: exists and was not written by monalisa; it is never replaced, "
                             "choose another --out")
        same = all(str(header.get(k, "none")) == (str(metadata.get(k, "")) or "none") for k in SAME_INPUTS)
        if overwrite:
            todo.append(frame)
        elif same and int(header.get("monalisa:frame", -1)) == frame:
            done.append(frame)
        else:
            raise InputError(f"{path}: was rendered from other inputs (model, track, still or settings differ); "
                             "pass --overwrite to replace those frames, or choose another --out")
    return todo, done


def _side_files(job: RenderJob) -> list:
    """The files about the whole sequence the job writes beside its frames: the plate's track, the preview."""
    stem = sequence_stem(job.out)
    files = [stem.with_name(stem.name + ".track.json")] if job.plate is not None else []
    if job.preview:
        from monalisa.nodes.preview import preview_paths

        files += preview_paths(job.out)
    return files


def render_sequence(job: RenderJob, report=print) -> Summary:
    from monalisa.nodes.mouth import check_mode
    from monalisa.nodes.node import AnimatePortrait

    check_mode(job.mouth)
    check_output(job.out, range(_frames_hint(job)))
    check_writes(_side_files(job))
    if job.plate is not None:
        from monalisa.nodes.media import check_sequence

        check_sequence(job.plate)
    node = AnimatePortrait(job.still, track=job.track, plate=job.plate, start_frame=job.start_frame,
                           model=job.model, identity=job.identity,
                           still_landmarks_from=job.still_landmarks, colorspace=job.colorspace,
                           smooth=job.smooth, smooth_strength=job.smooth_strength, retarget=job.retarget,
                           neutral_frame=job.neutral_frame, matte_feather=job.feather, batch_size=job.batch, device=job.device,
                           strict_device=job.strict_device, precision=job.precision, threads=job.threads,
                           correction=job.correction, mouth=job.mouth,
                           mouth_model=job.mouth_model)
    frames = node.check_frames(job.frames)
    if job.device == "cuda" and "CUDA" not in node.model.provider:
        report(f"monalisa render: CUDA was asked for but onnxruntime runs on {node.model.provider}")
    if job.plate is not None:  # the track made on the fly is kept beside the frames, for provenance
        track_path = _side_files(job)[0]
        trackfile.save(node.track, track_path)
        node.metadata["monalisa:track_sha256"] = sha256_file(track_path)
    paths = {f: frame_path(job.out, f) for f in frames}
    for path in paths.values():
        remove_stale_temps(path.parent, path.name)
    todo, done = _in_the_way(paths, node.metadata, job.overwrite)
    summary = Summary(skipped=len(done))
    report(f"monalisa render: {len(todo)} frames to render ({len(done)} already done) on {node.model.provider}, "
           f"{node.model.mode} model {node.model.resolution} px, still {node.still.size[0]}x{node.still.size[1]}")
    if node.model.warp and node.model.mode == "feed-forward":
        said = ("renders the still's landmark warp alone" if node.correction == 0.0 else
                f"adds {node.correction:g} x the feed-forward correction, which loses to the plain warp on faces it never saw")
        report(f"monalisa render: note: the warp model without --identity {said}; its learned correction pays "
               "with an identity fine-tuned on several frames of the person (monalisa finetune CHECKPOINT --stills "
               "F1 F2 ..., then monalisa export CHECKPOINT --identity PACK; docs/warpgen.md); one closed-mouth still "
               "adds nothing measurable")
    start = time.perf_counter()
    display = _display(node.output_colorspace)
    with ThreadPoolExecutor(max_workers=2) as writers, tqdm(total=len(todo), desc="render", unit="frame",
                                                            disable=None) as bar:
        jobs = []
        for result in node.render(todo):
            jobs.append(writers.submit(write_frame, paths[result.frame], result.rgb, result.alpha, result.matte,
                                       result.motion, result.metadata, display, node.still.window))
            summary.flagged += int(result.flagged)
            while len(jobs) > 4:
                _collect(jobs.pop(0), summary, bar, report)
        for j in jobs:
            _collect(j, summary, bar, report)
    summary.seconds = time.perf_counter() - start
    if job.preview and frames:
        from monalisa.nodes.preview import write_preview

        movie, sheet = write_preview([paths[f] for f in frames], job.out, node.output_colorspace,
                                     node.track.fps or DEFAULT_FPS)  # the plate's rate
        report(f"monalisa render: preview {movie}, contact sheet {sheet}")
    return summary


def _display(space):
    return lambda rgb: colour.convert(rgb, space, colour.SRGB)


def _collect(job, summary: Summary, bar, report) -> None:
    try:
        job.result()
        summary.written += 1
    except (MonalisaError, OSError) as exc:
        summary.failed += 1
        report(f"monalisa render: error: {exc}")
    bar.update(1)

