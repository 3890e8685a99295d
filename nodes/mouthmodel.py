"""The mouth-interior model file: an .onnx written by ``monalisa export`` (``export.pipeline``, role
``mouth``), run through onnxruntime.

Its metadata_props (``monalisa.*``) say what it is; :func:`load_mouth_model` refuses, in one line
naming the file, anything it does not fully understand: another format, a format version this
runtime does not read, a patch side other than the graph's or the node's geometry's, other inputs.

    model = load_mouth_model()                 # the bundled one, monalisa/weights/mouth/onnx/mouth.onnx
    interior = model.paint(inputs)             # (B, 4, R, R) float32 -> (B, 3, R, R) sRGB in [-1, 1]

``inputs`` is ``nodes.mouth.model_input`` per patch: sRGB in [-1, 1] with the hole blanked, and the hole.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monalisa.errors import ModelFormatError, ShapeError
from monalisa.files import sha256_file
from monalisa.nodes import mouth as geometry

FORMAT, FORMAT_VERSION = "monalisa-mouth", 1
ROLE = "mouth"  # its role in `monalisa export` (export.pipeline) and its file name, mouth.onnx
INPUTS, OUTPUTS = ("patch",), ("interior",)
ENCODING = {"patch": "srgb-rgb+hole-nchw-float32-[-1,1]-hole-blanked", "interior": "srgb-rgb-nchw-float32-[-1,1]"}
REQUIRED = ("format", "format_version", "resolution", "mouth_width", "inputs", "outputs", "encoding", "config",
            "checkpoint_sha256", "version")


def bundled_path() -> Path:
    """monalisa/weights/mouth/onnx/mouth.onnx (installed package or source tree)."""
    import monalisa

    return Path(monalisa.__file__).resolve().parent / "weights" / "mouth" / "onnx" / "mouth.onnx"


def parse_metadata(meta: dict, path) -> dict:
    """Checked metadata (resolution int, the rest as written); ModelFormatError when anything is off."""
    fix = "use the bundled mouth model or re-export it (monalisa export MOUTH_DIR --out MOUTH_DIR/onnx)"
    if meta.get("monalisa.format") != FORMAT:
        raise ModelFormatError(f"{path}: not a monalisa mouth model (monalisa.format is "
                               f"{meta.get('monalisa.format')!r}, not {FORMAT!r}); {fix}")
    missing = [k for k in REQUIRED if f"monalisa.{k}" not in meta]
    if missing:
        raise ModelFormatError(f"{path}: metadata keys missing: {', '.join('monalisa.' + k for k in missing)}; {fix}")
    get = {k: meta[f"monalisa.{k}"] for k in REQUIRED}
    if get["format_version"] != str(FORMAT_VERSION):
        raise ModelFormatError(f"{path}: mouth model format version {get['format_version']} is not the one this "
                               f"monalisa reads ({FORMAT_VERSION}); {fix}")
    try:
        resolution, width = int(get["resolution"]), float(get["mouth_width"])
        io = (tuple(json.loads(get["inputs"])), tuple(json.loads(get["outputs"])), json.loads(get["encoding"]))
    except ValueError as exc:
        raise ModelFormatError(f"{path}: malformed metadata value ({exc}); {fix}") from None
    if io != (INPUTS, OUTPUTS, ENCODING):
        raise ModelFormatError(f"{path}: inputs/outputs/encoding {io} are not the ones this runtime feeds; {fix}")
    if abs(width - geometry.WIDTH) > 1e-6:
        raise ModelFormatError(f"{path}: made for mouth patches with the corners {width} of the side apart, this "
                               f"runtime cuts them {geometry.WIDTH} apart; {fix}")
    return {**get, "resolution": resolution}


class MouthModel:
    """One mouth model file on the CPU (see the module docstring)."""

    def __init__(self, path=None, threads: int = 1):
        from monalisa.nodes.runtime import create_session

        self.path = Path(path) if path is not None else bundled_path()
        self.session = create_session(self.path, "cpu", threads, spinning=False)
        self.info = parse_metadata(dict(self.session.get_modelmeta().custom_metadata_map), self.path)
        self.resolution = self.info["resolution"]
        graph = self.session.get_inputs()
        side = [d for d in graph[0].shape[-2:] if isinstance(d, int)]
        if tuple(i.name for i in graph) != INPUTS or any(d != self.resolution for d in side):
            raise ModelFormatError(f"{self.path}: the graph takes {[i.name for i in graph]} of {side} px, its metadata "
                                   f"says {list(INPUTS)} of {self.resolution} px; re-export it")
        self.sha256 = sha256_file(self.path)

    def paint(self, inputs) -> np.ndarray:
        x = np.asarray(inputs, np.float32)
        r = self.resolution
        if x.ndim != 4 or x.shape[1:] != (4, r, r):
            raise ShapeError("mouth model input", ("B", 4, r, r), x.shape)
        return self.session.run(None, {"patch": np.ascontiguousarray(x)})[0]


def load_mouth_model(path=None, threads: int = 1) -> MouthModel:
    """The mouth model at ``path`` (default: the bundled one)."""
    return MouthModel(path, threads)
