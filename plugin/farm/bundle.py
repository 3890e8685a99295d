"""A ready-to-submit Open Job Description job bundle for one shot.

``write_bundle`` checks the shot's inputs (absolute paths that exist, a frame range inside the
track, a chunk size in range, an output folder it may write) before anything is written, then
writes BUNDLE_DIR atomically:

- ``template.yaml``: the job template, ``monalisa_render.yaml`` loaded, changed as data and dumped
  (:func:`job_template`): a Track step, then the Render step in chunks; with ``chunking=False`` one
  STRING task per frame range instead, for farms without the TASK_CHUNKING extension; with
  ``device="cuda"`` the Render step requires a GPU worker (``amount.worker.gpu``) and its chunks
  pass ``--strict-device``, so a GPU job never renders on a CPU by falling back
- ``parameter_values.yaml``: the values in the job-bundle format (``parameterValues: [{name, value}]``)
- ``openjd_parameters.json``: the same values as a plain map, for
  ``openjd run BUNDLE_DIR/template.yaml --job-param file://BUNDLE_DIR/openjd_parameters.json``

A folder holding other files is refused (one line, exit 2) unless ``overwrite``; then only the
bundle's own three files are replaced and the others are kept.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from monalisa.files import atomic_dir, check_out_dir
from monalisa.nodes.frames import has_pattern
from monalisa.plugin.core import (KNOBS, HostInputError, RenderSettings, check_settings, format_frames,
                                  parse_frames)

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("monalisa_render.yaml")
FILES = ("template.yaml", "parameter_values.yaml", "openjd_parameters.json")
MAX_CHUNK_SIZE = 1000  # frames per task; the template's ChunkSize maxValue says the same
DEFAULTS = {k.name: k.default for k in KNOBS}  # the render's defaults, as the hosts know them
GPU = {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}  # OpenJD's standard GPU-count capability


@dataclass(frozen=True)
class Bundle:
    path: Path
    frames: list
    chunks: list  # frame-range strings, one per task, as OpenJD chunks them
    parameters: dict


def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def _header(text: str) -> str:
    """The template file's leading comment block (a loader drops comments; the bundle keeps it)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines) + "\n" if lines else ""


def check_chunk_size(chunk_size) -> int:
    """``chunk_size`` as an int from 1 to MAX_CHUNK_SIZE; HostInputError (with the range) otherwise."""
    try:
        value = int(chunk_size)
        ok = value == chunk_size or str(value) == str(chunk_size).strip()
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not 1 <= value <= MAX_CHUNK_SIZE:
        raise HostInputError(f"chunk size {chunk_size!r} must be a whole number of frames from 1 to "
                             f"{MAX_CHUNK_SIZE} (--chunk-size)")
    return value


def _runs(frames) -> list:
    """Runs of consecutive frames: [1, 2, 3, 5] -> [[1, 2, 3], [5]]."""
    runs = []
    for f in sorted(set(frames)):
        if runs and f == runs[-1][-1] + 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs


def openjd_range(frames) -> str:
    """``frames`` in OpenJD's range-expression syntax (no steps): [1, 2, 3, 5, 7] -> "1-3,5,7"."""
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in _runs(frames))


def chunk_ranges(frames, chunk_size: int) -> list:
    """The tasks OpenJD makes of ``frames`` with CONTIGUOUS chunks of ``chunk_size``: each run of
    consecutive frames is cut into ceil(n / chunk_size) chunks of balanced sizes (chunk i ends at
    ceil(i * n / count)), so 10 frames in chunks of 4 are 4/3/3, not 4/4/2."""
    size = check_chunk_size(chunk_size)
    out = []
    for run in _runs(frames):
        n = len(run)
        count = -(-n // size)
        ends = [-(-i * n // count) for i in range(1, count + 1)]
        for start, end in zip([0, *ends[:-1]], ends):
            out.append(f"{run[start]}-{run[end - 1]}")
    return out


def job_template(chunking: bool = True, ranges=(), device: str = "cpu") -> dict:
    """The job template as data: ``monalisa_render.yaml``, with the Render step's tasks one STRING
    per range of ``ranges`` when not ``chunking`` (and no TASK_CHUNKING extension), and for
    ``device="cuda"`` a GPU host requirement and ``--strict-device`` on every chunk."""
    import yaml

    doc = copy.deepcopy(yaml.safe_load(template_text()))
    render = next(step for step in doc["steps"] if step["name"] == "Render")
    device_param = next(p for p in doc["parameterDefinitions"] if p["name"] == "Device")
    device_param["default"], device_param["allowedValues"] = device, [device]
    if device == "cuda":
        render["hostRequirements"] = copy.deepcopy(GPU)
        render["script"]["actions"]["onRun"]["args"].append("--strict-device")
    if not chunking:
        if not ranges:
            raise HostInputError("a job without chunking needs its frame ranges")
        render["parameterSpace"]["taskParameterDefinitions"] = [
            {"name": "Frame", "type": "STRING", "range": [str(r) for r in ranges]}]
        doc["extensions"] = [e for e in doc.get("extensions", []) if e != "TASK_CHUNKING"]
        if not doc["extensions"]:
            del doc["extensions"]
    return doc


def template_yaml(doc: dict) -> str:
    """``doc`` as YAML text, under the template file's comment header."""
    import yaml

    return _header(template_text()) + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)


def _track_frames(path) -> list:
    from monalisa.nodes import trackfile

    return [int(f) for f in trackfile.load(path).frames]


def _plate_frames(path, start_frame="") -> list:
    try:
        from monalisa.nodes import media

        info = media.probe(path, int(start_frame) if start_frame else None)
    except Exception as exc:  # a plate monalisa cannot read: say so before the farm does
        raise HostInputError(f"plate {path}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                             "check the path or track it first with `monalisa track`") from None
    return list(range(int(info.first), int(info.last) + 1))


def shot_frames(settings: RenderSettings) -> list:
    """The frames to render: the settings' range, checked to lie inside the track (or plate)."""
    available = _track_frames(settings.track) if settings.track else _plate_frames(settings.plate, settings.start_frame)
    source = settings.track or settings.plate
    if settings.neutral_frame and int(settings.neutral_frame) not in set(available):
        raise HostInputError(f"neutral frame {settings.neutral_frame} is not in {source} (it has frames "
                             f"{format_frames(available)}); give --neutral-frame one of them, or leave it out")
    if not settings.frames:
        return sorted(available)
    wanted = parse_frames(settings.frames)
    have = set(available)
    missing = [f for f in wanted if f not in have]
    if missing:
        lo, hi = min(available), max(available)
        raise HostInputError(f"frame {missing[0]} is not in {source} (it has frames {format_frames(available)}); "
                             f"give --frames within {lo}-{hi}")
    return wanted


def render_parameters(s: RenderSettings) -> dict:
    """The job parameters of the render options in ``s`` (checked): the very values each chunk passes on
    to ``monalisa render`` (numbers exact), the template's defaults where ``s`` leaves them unset."""
    return {
        "StillLandmarks": s.still_landmarks, "Colorspace": s.colorspace, "Retarget": s.retarget,
        "NeutralFrame": s.neutral_frame, "Smooth": "off" if s.smooth == "0" else "on",
        "SmoothStrength": float(s.smooth_strength or DEFAULTS["smooth_strength"]),
        "Feather": float(s.feather or DEFAULTS["feather"]),
        "Mouth": s.mouth, "MouthModel": s.mouth_model, "Precision": s.precision,
        # the Track step's: a movie's first frame number (0 = its own), the plate's rate (0 = its own)
        "StartFrame": int(s.start_frame or 0) if s.plate and not has_pattern(s.plate) else 0,
        "Fps": float(s.fps or 0.0) if s.plate else 0.0,
    }


def ocio_config(path: str) -> str:
    """``path`` (an OCIO config file) as an absolute path that exists; "" stays "" (the worker's own), and
    so does an ``ocio://`` URI (a config built into OCIO)."""
    if not path or path.startswith("ocio://"):
        return path
    config = Path(path).expanduser().absolute()
    if not config.is_file():
        raise HostInputError(f"OCIO config {config} does not exist; give the .ocio file the colour space names "
                             "come from (--ocio-config, else $OCIO)")
    return str(config)


def default_render(bundle_dir, still) -> str:
    return str(Path(bundle_dir).absolute().parent / "render" / f"{Path(still).stem}.####.exr")


def write_bundle(settings: RenderSettings, bundle_dir, chunk_size: int = 10, chunking: bool = True,
                 name: str = "", overwrite: bool = False, ocio: str = "") -> Bundle:
    """Check ``settings`` and write the job bundle into ``bundle_dir`` (replacing a bundle there;
    a folder with other files only with ``overwrite``, which keeps them)."""
    bundle_dir = Path(bundle_dir).absolute()
    chunk_size = check_chunk_size(chunk_size)
    check_out_dir(bundle_dir, FILES, overwrite=overwrite, flag="--out")
    if not settings.out:
        settings = RenderSettings(**{**settings.to_dict(), "out": default_render(bundle_dir, settings.still)})
    s = check_settings(settings)
    if s.track and (s.start_frame or s.fps):
        raise HostInputError("--start-frame and --fps number and time a plate the job tracks; a track already holds "
                             "its frame numbers and rate, leave them out")
    frames = shot_frames(s)
    spec = openjd_range(frames)  # the job's Frames: OpenJD reads "1-3,5", not monalisa's "1-5x2"
    shot = name or Path(s.out).name.split(".")[0] or Path(s.still).stem
    # with a plate, the job's Track step writes the track beside the frames, once for all chunks
    track = s.track or str(Path(s.out).parent / f"{shot}.track.json")
    params = {
        "ShotName": shot,
        "Still": s.still, "Track": track, "Plate": s.plate, "Identity": s.identity, "Model": s.model,
        "Correction": s.correction, **render_parameters(s), "OcioConfig": ocio_config(ocio),
        "Render": s.out, "Frames": spec, "ChunkSize": int(chunk_size), "Device": s.device,
    }
    chunks = chunk_ranges(frames, chunk_size)
    # without chunking, Frames and ChunkSize stay: informative, unused by the tasks
    text = template_yaml(job_template(chunking, chunks, s.device))
    values = {"parameterValues": [{"name": k, "value": v} for k, v in params.items()]}
    with atomic_dir(bundle_dir, ours=FILES) as tmp:
        (tmp / "template.yaml").write_text(text, encoding="utf-8")
        # JSON is YAML: the job-bundle file stays readable by any YAML loader
        (tmp / "parameter_values.yaml").write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
        (tmp / "openjd_parameters.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    log.debug("bundle %s: %d frames in %d chunks", bundle_dir, len(frames), len(chunks))
    return Bundle(bundle_dir, frames, chunks, params)
