"""A ready-to-submit Open Job Description job bundle for one shot.

``write_bundle`` checks the shot's inputs (absolute paths that exist, a frame range inside the
track) before anything is written, then writes BUNDLE_DIR atomically:

- ``template.yaml``: the job template (``monalisa_render.yaml``: a Track step, then the Render step
  in chunks; with ``chunking=False`` the same job with one STRING task per frame range, for farms
  without the TASK_CHUNKING extension)
- ``parameter_values.yaml``: the values in the job-bundle format (``parameterValues: [{name, value}]``)
- ``openjd_parameters.json``: the same values as a plain map, for
  ``openjd run BUNDLE_DIR/template.yaml --job-param file://BUNDLE_DIR/openjd_parameters.json``
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from monalisa.files import atomic_dir
from monalisa.plugin.core import (HostInputError, RenderSettings, check_settings, format_frames,
                                  parse_frames)

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("monalisa_render.yaml")


@dataclass(frozen=True)
class Bundle:
    path: Path
    frames: list
    chunks: list  # frame-range strings, one per task when chunked statically
    parameters: dict


def template_text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def chunk_ranges(frames, chunk_size: int) -> list:
    """Contiguous ranges of at most ``chunk_size`` frames (a gap starts a new range)."""
    if chunk_size < 1:
        raise HostInputError(f"chunk size {chunk_size} must be at least 1")
    out, run = [], []
    for f in sorted(frames):
        if run and (f != run[-1] + 1 or len(run) == chunk_size):
            out.append(run)
            run = []
        run.append(f)
    if run:
        out.append(run)
    return [f"{r[0]}-{r[-1]}" for r in out]


def ranges_template(text: str, ranges) -> str:
    """The template without TASK_CHUNKING: task parameter Frame becomes a STRING over ``ranges``."""
    lines = text.splitlines()
    start = lines.index("    parameterSpace:")
    end = lines.index("    script:", start)
    space = ["    parameterSpace:", "      taskParameterDefinitions:", "        - name: Frame",
             "          type: STRING", "          range:"] + [f"            - {json.dumps(r)}" for r in ranges]
    body = lines[:start] + space + lines[end:]
    i = body.index("extensions:")
    del body[i:i + 2]  # "extensions:" and its one entry
    return "\n".join(body) + "\n"


def _track_frames(path) -> list:
    from monalisa.nodes import trackfile

    return [int(f) for f in trackfile.load(path).frames]


def _plate_frames(path) -> list:
    try:
        from monalisa.nodes import media

        info = media.probe(path)
    except Exception as exc:  # a plate monalisa cannot read: say so before the farm does
        raise HostInputError(f"plate {path}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                             "check the path or track it first with `monalisa track`") from None
    return list(range(int(info.first), int(info.last) + 1))


def shot_frames(settings: RenderSettings) -> list:
    """The frames to render: the settings' range, checked to lie inside the track (or plate)."""
    available = _track_frames(settings.track) if settings.track else _plate_frames(settings.plate)
    source = settings.track or settings.plate
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


def default_render(bundle_dir, still) -> str:
    return str(Path(bundle_dir).absolute().parent / "render" / f"{Path(still).stem}.####.exr")


def write_bundle(settings: RenderSettings, bundle_dir, chunk_size: int = 10, chunking: bool = True,
                 name: str = "") -> Bundle:
    """Check ``settings`` and write the job bundle into ``bundle_dir`` (replacing a bundle there)."""
    bundle_dir = Path(bundle_dir).absolute()
    if not settings.out:
        settings = RenderSettings(**{**settings.to_dict(), "out": default_render(bundle_dir, settings.still)})
    s = check_settings(settings)
    frames = shot_frames(s)
    if chunk_size < 1:
        raise HostInputError(f"chunk size {chunk_size} must be at least 1")
    if bundle_dir.exists() and not (bundle_dir / "template.yaml").is_file():
        if any(bundle_dir.iterdir()):
            raise HostInputError(f"{bundle_dir} exists and is not a monalisa bundle; choose an empty or new folder")
    spec = format_frames(frames)
    shot = name or Path(s.out).name.split(".")[0] or Path(s.still).stem
    # with a plate, the job's Track step writes the track beside the frames, once for all chunks
    track = s.track or str(Path(s.out).parent / f"{shot}.track.json")
    params = {
        "ShotName": shot,
        "Still": s.still, "Track": track, "Plate": s.plate, "Identity": s.identity, "Model": s.model,
        "Correction": s.correction, "Render": s.out, "Frames": spec, "ChunkSize": int(chunk_size), "Device": s.device,
    }
    text = template_text()
    chunks = chunk_ranges(frames, chunk_size)
    if not chunking:
        text = ranges_template(text, chunks)  # Frames and ChunkSize stay: informative, unused by the tasks
    values = {"parameterValues": [{"name": k, "value": v} for k, v in params.items()]}
    with atomic_dir(bundle_dir) as tmp:
        (tmp / "template.yaml").write_text(text, encoding="utf-8")
        # JSON is YAML: the job-bundle file stays readable by any YAML loader
        (tmp / "parameter_values.yaml").write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
        (tmp / "openjd_parameters.json").write_text(json.dumps(params, indent=2) + "\n", encoding="utf-8")
    log.info("bundle %s: %d frames in %d chunks", bundle_dir, len(frames), len(chunks))
    return Bundle(bundle_dir, frames, chunks, params)
