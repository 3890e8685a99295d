"""Validate each ONNX model file: onnx.checker-valid, and monalisa metadata the runtime reads."""
import pyblish.api

from monalisa.plugin import publish as lib


class ValidateOnnxModel(pyblish.api.InstancePlugin):
    """The file passes onnx.checker (when the onnx package is installed) and carries monalisa
    metadata onnxruntime can load. Repair: re-export it with `monalisa export`."""

    order = pyblish.api.ValidatorOrder
    families = [lib.MODEL_FAMILY]
    label = "ONNX model valid"

    def process(self, instance):
        path = instance.data["path"]
        try:
            import onnx
        except ImportError:
            self.log.warning("onnx is not installed: checking %s with onnxruntime only", path)
        else:
            try:
                onnx.checker.check_model(path)
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ValueError(f"{path}: onnx.checker rejects it ({first}); re-export it with `monalisa export`") from None
        from monalisa.nodes.modelfile import read_model_info

        info = read_model_info(path)  # ModelFormatError names the file and what to do
        instance.data["role"] = info.role
        self.log.info("%s: %s %s, %s", path, info.role, info.precision, info.monalisa_version)
