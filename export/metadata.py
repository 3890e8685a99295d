"""The metadata_props every exported .onnx carries: what the file is and how to feed it.

All keys start with ``monalisa.``; values are strings (JSON for structured values). The runtime
(``monalisa.nodes.modelfile``) refuses a file whose format, version or role it does not know; the
mouth model's file has its own format (``monalisa-mouth``), read by ``monalisa.nodes.mouthmodel``.
"""
from __future__ import annotations

import json

from monalisa import __version__
from monalisa.nodes.facecrop import CropGeometry

# One definition, shared with the runtime that reads these files (torch-free, so importable here).
from monalisa.nodes.modelfile import ENCODINGS, FORMAT, FORMAT_VERSION, LANDMARKS  # noqa: F401


def build_metadata(role: str, config, *, checkpoint_sha256: str, opset: int, precision: str = "fp32",
                   identity_name: str = "", identity_sha256: str = "", inputs=(), outputs=(),
                   crop: dict, extra: dict | None = None) -> dict:
    """The metadata dict (str -> str) for one exported file. ``crop``: the checkpoint's crop geometry
    as a dict (``models.checkpoint.crop_geometry(ckpt).to_dict()``)."""
    cfg = config.to_dict()
    crop = CropGeometry.from_dict(crop).to_dict()
    meta = {
        "monalisa.format": FORMAT,
        "monalisa.format_version": str(FORMAT_VERSION),
        "monalisa.role": role,
        "monalisa.precision": precision,
        "monalisa.opset": str(opset),
        "monalisa.config": json.dumps(cfg, sort_keys=True),
        "monalisa.resolution": str(cfg["resolution"]),
        "monalisa.embed_dim": str(cfg["embed_dim"]),
        "monalisa.landmarks": LANDMARKS,
        "monalisa.inputs": json.dumps(list(inputs)),
        "monalisa.outputs": json.dumps(list(outputs)),
        "monalisa.input_encoding": json.dumps({n: ENCODINGS[n] for n in inputs}, sort_keys=True),
        "monalisa.output_encoding": json.dumps({n: ENCODINGS[n] for n in outputs}, sort_keys=True),
        "monalisa.identity_name": identity_name,
        "monalisa.identity_sha256": identity_sha256,
        "monalisa.checkpoint_sha256": checkpoint_sha256,
        "monalisa.version": __version__,
        "monalisa.crop": json.dumps(crop, sort_keys=True),
    }
    for k, v in (extra or {}).items():
        meta[f"monalisa.{k}"] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return meta


def build_mouth_metadata(config, *, checkpoint_sha256: str, opset: int, precision: str = "fp32",
                         extra: dict | None = None) -> dict:
    """The metadata dict (str -> str) of a mouth model file: the keys ``nodes.mouthmodel`` checks
    (its format, patch side, corner spacing, I/O and encoding), plus role, precision and opset."""
    from monalisa.nodes import mouth, mouthmodel

    meta = {
        "monalisa.format": mouthmodel.FORMAT,
        "monalisa.format_version": str(mouthmodel.FORMAT_VERSION),
        "monalisa.role": mouthmodel.ROLE,
        "monalisa.precision": precision,
        "monalisa.opset": str(opset),
        "monalisa.resolution": str(config.resolution),
        "monalisa.mouth_width": str(mouth.WIDTH),
        "monalisa.inputs": json.dumps(list(mouthmodel.INPUTS)),
        "monalisa.outputs": json.dumps(list(mouthmodel.OUTPUTS)),
        "monalisa.encoding": json.dumps(mouthmodel.ENCODING),
        "monalisa.config": json.dumps(config.to_dict()),
        "monalisa.checkpoint_sha256": checkpoint_sha256,
        "monalisa.version": __version__,
    }
    for k, v in (extra or {}).items():
        meta[f"monalisa.{k}"] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return meta


def set_metadata(model, meta: dict) -> None:
    """Replace the model's metadata_props with ``meta`` (onnx.ModelProto, in place)."""
    del model.metadata_props[:]
    for key, value in sorted(meta.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    model.producer_name, model.producer_version = "monalisa", __version__


def get_metadata(model) -> dict:
    return {p.key: p.value for p in model.metadata_props}
