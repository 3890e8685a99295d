"""Collect the ONNX model files a monalisa render used, one instance per file."""
from pathlib import Path

import pyblish.api

from monalisa.plugin import publish as lib


class CollectMonalisaModels(pyblish.api.ContextPlugin):
    """Every .onnx in the request's model folder, and the baked identity generator when given."""

    order = pyblish.api.CollectorOrder + 0.01  # after the render, so the publish lists it first
    label = "Collect monalisa models"

    def process(self, context):
        req = lib.request_from(context)
        if req is None:
            return
        paths = sorted(Path(req.model).glob("*.onnx"))
        if req.identity:
            paths.append(Path(req.identity))
        if not paths:
            raise RuntimeError(f"no .onnx files in {req.model}; give the exported model folder the render used (--model)")
        for path in paths:
            instance = context.create_instance(f"model {path.name}", family=lib.MODEL_FAMILY)
            instance.data["families"] = [lib.MODEL_FAMILY]
            instance.data["path"] = str(path)
            instance.data["sha256"] = lib.sha256(path)
            instance.data["identity"] = bool(req.identity) and str(path) == str(Path(req.identity))
