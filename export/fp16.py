"""Half-precision variants with onnxconverter-common.

Route: ``float16.convert_float_to_float16(model, keep_io_types=True)`` on the *un-slimmed* fp32
export (onnxslim first, then fp16, breaks the Resize casts; see docs/export.md, fp16 route). Inputs and outputs stay
float32, so the runtime feeds the same arrays; weights and activations inside are float16.
On a CPU, onnxruntime runs most float16 nodes through inserted casts (slow: fp16 is for CUDA).
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def to_fp16(model):
    """fp32 onnx.ModelProto -> fp16 ModelProto with float32 I/O."""
    import warnings

    from onnxconverter_common import float16

    # Cast nodes that the converter would re-type (shape-derived casts) stay as they are.
    block = [n.name for n in model.graph.node if n.op_type == "Cast"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the float32 number ... will be truncated to 1e-07", per weight
        return float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=block)
