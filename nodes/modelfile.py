"""What an exported .onnx is, read from its metadata_props without torch or the onnx package.

``monalisa export`` writes ``monalisa.*`` keys into every file (see docs/export.md); this module is
their one definition on the runtime side and refuses any file it does not fully understand with a
one-line :class:`~monalisa.errors.ModelFormatError` naming the file. The metadata is read through
``onnxruntime.InferenceSession(...).get_modelmeta().custom_metadata_map`` (onnx is not installed on
runtime boxes); pass an existing session to avoid loading the model twice.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from monalisa.errors import ConfigError, ModelFormatError
from monalisa.nodes.facecrop import CropGeometry

log = logging.getLogger(__name__)

FORMAT = "monalisa-onnx"
FORMAT_VERSION = 2  # the newest version this runtime reads
MIN_FORMAT_VERSION = 2  # version 2 added the crop geometry (monalisa.crop)
LANDMARKS = "ibug68"
ROLES = ("embedder", "generator", "baked_generator", "warp_generator", "baked_warp_generator")
PRECISIONS = ("fp32", "fp16", "int8")

#: role -> (input names, output names)
IO = {
    "embedder": (("images", "rasters"), ("embedding",)),
    "generator": (("raster", "embedding"), ("image",)),
    "baked_generator": (("raster",), ("image",)),
    # warp-conditioned generator (models/warpgen.py; composited by nodes/warpgen.py)
    "warp_generator": (("raster", "warped", "embedding"), ("correction", "mask")),
    "baked_warp_generator": (("raster", "warped"), ("correction", "mask")),
}

#: Colour encoding of each named input/output.
ENCODINGS = {
    "images": "srgb-rgb-nchw-float32-[-1,1]",  # aligned face crops: uint8 sRGB / 127.5 - 1
    "rasters": "ibug68-raster-rgb-nchw-float32-[-1,1]",  # nodes.raster.rasterize then to_model
    "raster": "ibug68-raster-rgb-nchw-float32-[-1,1]",
    "embedding": "identity-embedding-float32",
    "image": "srgb-rgb-nchw-float32-[-1,1]",  # tanh output; (x + 1) * 127.5 -> uint8 sRGB
    "warped": "srgb-rgb-nchw-float32-[-1,1]",  # model crop of the still densely warped to the frame's landmarks
    "correction": "srgb-delta-nchw-float32-[-2,2]",  # face = warped + mask * correction (network units)
    "mask": "blend-mask-n1hw-float32-[0,1]",
}

REQUIRED = ("format", "format_version", "role", "precision", "config", "resolution", "embed_dim", "landmarks",
            "inputs", "outputs", "input_encoding", "output_encoding", "identity_name", "identity_sha256",
            "checkpoint_sha256", "version", "crop")


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    role: str
    format_version: int
    precision: str
    config: dict
    resolution: int
    embed_dim: int
    landmarks: str
    inputs: tuple
    outputs: tuple
    input_encoding: dict
    output_encoding: dict
    identity_name: str
    identity_sha256: str
    checkpoint_sha256: str
    monalisa_version: str
    crop: CropGeometry
    metadata: dict = field(repr=False, default_factory=dict)


def open_session(path, providers=("CPUExecutionProvider",), options=None):
    """An onnxruntime session on ``path``; ModelFormatError when the file is missing or not ONNX."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such model file; write one with `monalisa export`")
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{path}: onnxruntime cannot load it ({first}); re-export with `monalisa export`") from exc


def read_metadata(path, session=None) -> dict:
    """The raw metadata_props (str -> str) of an .onnx file."""
    session = session or open_session(path)
    return dict(session.get_modelmeta().custom_metadata_map)


def parse_metadata(meta: dict, path) -> ModelInfo:
    """Validate monalisa.* metadata -> ModelInfo; ModelFormatError (one line, names the file) if unknown."""
    path = Path(path)
    fix = "re-export it with `monalisa export`"
    if meta.get("monalisa.format") is None:
        raise ModelFormatError(f"{path}: no monalisa metadata (monalisa.format missing); {fix}")
    if meta["monalisa.format"] != FORMAT:
        raise ModelFormatError(f"{path}: format {meta['monalisa.format']!r} is not {FORMAT!r}; {fix}")
    missing = [k for k in REQUIRED if f"monalisa.{k}" not in meta]
    if missing:
        raise ModelFormatError(f"{path}: metadata keys missing: {', '.join('monalisa.' + k for k in missing)}; {fix}")
    get = {k: meta[f"monalisa.{k}"] for k in REQUIRED}
    try:
        version = int(get["format_version"])
    except ValueError:
        raise ModelFormatError(f"{path}: format version {get['format_version']!r} is not a number; {fix}") from None
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format version {version} is newer than this monalisa reads "
                               f"({FORMAT_VERSION}); upgrade monalisa on this box")
    if version < MIN_FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format version {version} is older than this monalisa reads "
                               f"({MIN_FORMAT_VERSION}: it records the crop geometry); {fix}")
    role = get["role"]
    if role not in ROLES:
        raise ModelFormatError(f"{path}: role {role!r} is unknown (known: {', '.join(ROLES)}); {fix}")
    if get["precision"] not in PRECISIONS:
        raise ModelFormatError(f"{path}: precision {get['precision']!r} is unknown "
                               f"(known: {', '.join(PRECISIONS)}); {fix}")
    if get["landmarks"] != LANDMARKS:
        raise ModelFormatError(f"{path}: landmark layout {get['landmarks']!r} is not {LANDMARKS!r}; {fix}")
    try:
        config = json.loads(get["config"])
        inputs, outputs = tuple(json.loads(get["inputs"])), tuple(json.loads(get["outputs"]))
        enc_in, enc_out = json.loads(get["input_encoding"]), json.loads(get["output_encoding"])
        resolution, embed_dim = int(get["resolution"]), int(get["embed_dim"])
        crop = CropGeometry.from_dict(json.loads(get["crop"]))
    except (ValueError, TypeError, ConfigError) as exc:
        raise ModelFormatError(f"{path}: malformed metadata value ({exc}); {fix}") from None
    if (inputs, outputs) != IO[role]:
        raise ModelFormatError(f"{path}: a {role} must have inputs {list(IO[role][0])} and outputs "
                               f"{list(IO[role][1])}, metadata says {list(inputs)} -> {list(outputs)}; {fix}")
    for names, enc in ((inputs, enc_in), (outputs, enc_out)):
        bad = [n for n in names if not isinstance(enc, dict) or enc.get(n) != ENCODINGS[n]]
        if bad:
            got = {n: enc.get(n) for n in bad} if isinstance(enc, dict) else enc
            raise ModelFormatError(f"{path}: colour encoding of {', '.join(bad)} is {got}, not the one this "
                                   f"runtime feeds ({', '.join(ENCODINGS[n] for n in bad)}); {fix}")
    if crop.resolution != resolution:
        raise ModelFormatError(f"{path}: crop geometry is for {crop.resolution} px, the model is {resolution} px; {fix}")
    if not isinstance(config, dict) or config.get("resolution") != resolution or config.get("embed_dim") != embed_dim:
        raise ModelFormatError(f"{path}: monalisa.config disagrees with monalisa.resolution/embed_dim; {fix}")
    return ModelInfo(path, role, version, get["precision"], config, resolution, embed_dim, get["landmarks"],
                     inputs, outputs, enc_in, enc_out, get["identity_name"], get["identity_sha256"],
                     get["checkpoint_sha256"], get["version"], crop, dict(meta))


def read_model_info(path, session=None) -> ModelInfo:
    """Open (or use ``session`` on) an exported file and validate its metadata."""
    info = parse_metadata(read_metadata(path, session), path)
    if session is not None:
        names = tuple(i.name for i in session.get_inputs())
        if names != info.inputs:
            raise ModelFormatError(f"{path}: graph inputs {list(names)} differ from its metadata "
                                   f"{list(info.inputs)}; re-export it with `monalisa export`")
        side = [d for d in session.get_inputs()[0].shape[-2:] if isinstance(d, int)]
        if side and any(d != info.resolution for d in side):
            raise ModelFormatError(f"{path}: the graph takes {side[0]} px images but its metadata says "
                                   f"{info.resolution} px; re-export it with `monalisa export`")
    return info
