"""torch -> ONNX: wrapper modules for every model kind's roles, and the trace to ONNX.

Two kinds of generator share one pipeline (``export.pipeline``): the plain (image) generator
(``models/generator.py``) and the warp-conditioned generator (``models/warpgen.py``, composited by
``nodes.warpgen.composite``). Each kind has an embedder, a generic generator and, with an identity
pack, a baked generator (the pack's weights and psi' folded in).

Every graph is exported with the TorchScript exporter (``dynamo=False``: no onnxscript needed,
dynamic axes work, the fp16 conversion stays clean because the networks keep their scales as Python
floats) at opset 17 to 20, with a dynamic batch axis (and a dynamic K axis for the embedder).

I/O (all float32, NCHW, values in [-1, 1]):

- embedder:        ``images`` (B, K, 3, R, R), ``rasters`` (B, K, 3, R, R) -> ``embedding`` (B, E)
- generator:       ``raster`` (B, 3, R, R), ``embedding`` (B, E)           -> ``image`` (B, 3, R, R)
- baked_generator: ``raster`` (B, 3, R, R)                                  -> ``image`` (B, 3, R, R)
- warp_generator:       ``raster``, ``warped`` (B, 3, R, R), ``embedding`` (B, E) -> ``correction`` (B, 3, R, R), ``mask`` (B, 1, R, R)
- baked_warp_generator: ``raster``, ``warped`` (B, 3, R, R)                    -> ``correction``, ``mask``

A warp model's face is ``warped + mask * correction`` (:func:`face`).

The mouth-interior network (``models/mouth.py``, read by ``nodes.mouthmodel``) goes through the same
pipeline as one more role:

- mouth: ``patch`` (B, 4, R, R) (sRGB with the hole blanked, and the hole) -> ``interior`` (B, 3, R, R)
"""
from __future__ import annotations

import io
import logging
import warnings

import torch
from torch import nn

from monalisa.errors import ConfigError
from monalisa.models.layers import fold_spectral_norm
from monalisa.nodes import modelfile, mouthmodel
from monalisa.nodes.modelfile import ROLES  # noqa: F401  (one definition of the file roles)

#: role -> (input names, output names): the face model files' roles and the mouth model's
MOUTH_ROLE = mouthmodel.ROLE
IO = {**modelfile.IO, MOUTH_ROLE: (mouthmodel.INPUTS, mouthmodel.OUTPUTS)}

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
MIN_OPSET = 17

#: ModelConfig.generator -> (generic generator role, baked generator role)
GENERATOR_ROLES = {"plain": ("generator", "baked_generator"), "warp": ("warp_generator", "baked_warp_generator")}


def max_opset() -> int:
    """The newest opset both torch's TorchScript exporter and the installed onnx can write."""
    import onnx
    from torch.onnx import _constants

    return min(int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20)), onnx.defs.onnx_opset_version())


def check_opset(opset) -> int:
    """Return ``opset`` as an int, or raise ConfigError (one line) when it is outside MIN..max."""
    hi = max_opset()
    try:
        value = int(opset)
    except (TypeError, ValueError):
        raise ConfigError(f"--opset {opset!r} is not a number; use {MIN_OPSET} to {hi}") from None
    if not MIN_OPSET <= value <= hi:
        raise ConfigError(f"--opset {value} is not supported; use {MIN_OPSET} to {hi} (default {DEFAULT_OPSET})")
    return value


def inference_copy(net: nn.Module, state: dict | None = None) -> nn.Module:
    """An eval-mode float32 copy of ``net`` (with ``state`` loaded, if given), spectral norm folded.

    The copy is a fresh instance, not a deepcopy: a deepcopy shares the parametrised class that
    torch makes per module, and folding the copy would strip the property from the original too.
    """
    fresh = type(net)(net.cfg)
    fresh.load_state_dict(net.state_dict() if state is None else state)
    net = fresh.float().eval()
    fold_spectral_norm(net)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class EmbedderGraph(nn.Module):
    """images, rasters (B, K, 3, R, R) -> embedding (B, E): the mean of the K frame embeddings."""

    def __init__(self, embedder):
        super().__init__()
        self.embedder = embedder

    def forward(self, images, rasters):
        return self.embedder(images, rasters)


class GeneratorGraph(nn.Module):
    """raster (B, 3, R, R), embedding (B, E) -> image (B, 3, R, R): synthesize(raster, P e)."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, raster, embedding):
        return self.generator.synthesize(raster, self.generator.project(embedding))


class BakedGeneratorGraph(nn.Module):
    """raster (B, 3, R, R) -> image: the identity's fine-tuned generator with psi' as a constant."""

    def __init__(self, generator, psi):
        super().__init__()
        self.generator = generator
        self.register_buffer("psi", _constant_psi(generator, psi))

    def forward(self, raster):
        # psi stays (1, n): AdaIN broadcasts it over the batch, so every slice of it is a constant
        # that the exporter and onnxruntime fold (an expand to B would keep them at run time)
        return self.generator.synthesize(raster, self.psi)


class WarpGeneratorGraph(nn.Module):
    """raster, warped (B, 3, R, R), embedding (B, E) -> correction (B, 3, R, R), mask (B, 1, R, R)."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, raster, warped, embedding):
        return self.generator.synthesize(raster, warped, self.generator.project(embedding))


class BakedWarpGeneratorGraph(nn.Module):
    """raster, warped (B, 3, R, R) -> correction, mask: the identity's fine-tuned warp generator, psi' constant."""

    def __init__(self, generator, psi):
        super().__init__()
        self.generator = generator
        self.register_buffer("psi", _constant_psi(generator, psi))

    def forward(self, raster, warped):
        return self.generator.synthesize(raster, warped, self.psi)


def _constant_psi(generator, psi):
    """psi' as a (1, n) float32 constant; ShapeError when it does not fit the generator."""
    if psi.ndim != 2 or tuple(psi.shape) != (1, generator.num_adain_params):
        from monalisa.errors import ShapeError

        raise ShapeError("identity psi", (1, generator.num_adain_params), tuple(psi.shape))
    return psi.detach().float().clone()


_WRAPPERS = {"plain": (GeneratorGraph, BakedGeneratorGraph), "warp": (WarpGeneratorGraph, BakedWarpGeneratorGraph)}


def build_graphs(ckpt, identity=None) -> dict:
    """role -> eval-mode wrapper module for a loaded checkpoint of either kind (and identity pack, if given)."""
    from monalisa.models.checkpoint import build_models

    from monalisa.models.mouth import MouthConfig, MouthNet

    if isinstance(ckpt.config, MouthConfig):  # models.mouth.load_mouth_checkpoint
        net = MouthNet(ckpt.config)
        net.load_state_dict(ckpt.state)
        return {MOUTH_ROLE: net.float().eval().requires_grad_(False)}
    kind = ckpt.config.generator
    generic, baked = GENERATOR_ROLES[kind]
    wrap, wrap_baked = _WRAPPERS[kind]
    embedder, generator, _ = build_models(ckpt)
    graphs = {"embedder": EmbedderGraph(inference_copy(embedder)), generic: wrap(inference_copy(generator))}
    if identity is not None:
        own = generator.state_dict()
        state = {k: v.float() for k, v in identity.state.items()}
        bad = sorted(set(own) ^ set(state)) + [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
        if bad:
            from monalisa.errors import IdentityPackError

            raise IdentityPackError(f"{identity.path}: generator weights do not fit the checkpoint's {kind} "
                                    f"generator ({bad[:3]}); use the pack's own base checkpoint")
        graphs[baked] = wrap_baked(inference_copy(generator, state), identity.psi.float())
    for g in graphs.values():
        g.eval()
    return graphs


def example_inputs(role: str, config, batch: int = 2, k: int = 2) -> tuple:
    """Dummy inputs of the right shapes for tracing (batch >= 2 keeps the batch axis symbolic)."""
    r, gen = config.resolution, torch.Generator().manual_seed(0)
    shapes = {"images": (batch, k, 3, r, r), "rasters": (batch, k, 3, r, r), "raster": (batch, 3, r, r),
              "warped": (batch, 3, r, r), "patch": (batch, 4, r, r)}
    out = []
    for name in IO[role][0]:
        if name == "embedding":
            out.append(torch.randn(batch, config.embed_dim, generator=gen))
        else:
            out.append(torch.rand(*shapes[name], generator=gen) * 2 - 1)
    if role == "embedder":  # the same frames as images and rasters, as the original trace did
        out[1] = out[0].clone()
    return tuple(out)


def export_graph(module: nn.Module, role: str, config, opset: int = DEFAULT_OPSET):
    """Trace ``module`` to an in-memory onnx.ModelProto with dynamic batch (and K) axes."""
    import onnx

    inputs, outputs = IO[role]
    if role == "embedder":
        dynamic = {"images": {0: "B", 1: "K"}, "rasters": {0: "B", 1: "K"}, "embedding": {0: "B"}}
    else:
        dynamic = {name: {0: "B"} for name in (*inputs, *outputs)}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(module, example_inputs(role, config), buf, dynamo=False, opset_version=opset,
                          input_names=list(inputs), output_names=list(outputs), dynamic_axes=dynamic,
                          do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    log.debug("exported %s: %d nodes, opset %d", role, len(model.graph.node), opset)
    return model


def torch_reference(module: nn.Module, inputs: tuple) -> list:
    """Run the torch module on numpy inputs -> its outputs as a list of float32 numpy arrays."""
    with torch.no_grad():
        out = module(*(torch.from_numpy(x) for x in inputs))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def face(outputs: dict):
    """The picture a generator role makes, from its named outputs (numpy, network units):
    ``image``, ``interior`` for the mouth model, or ``warped + mask * correction`` clipped to
    [-1, 1] for a warp model."""
    import numpy as np

    for name in ("image", "interior"):
        if name in outputs:
            return outputs[name]
    return np.clip(outputs["warped"] + outputs["mask"] * outputs["correction"], -1.0, 1.0)


def fuse_constant_adain(model):
    """Fold ``InstanceNormalization -> Mul(c1) -> Add(c2)`` with per-channel constants into one
    InstanceNormalization (scale * c1, bias * c1 + c2), in place; returns the number folded.

    In the baked generator psi is a constant, so every AdaIN is such a chain; the fold removes two
    full-size elementwise passes per AdaIN. Run it on a slimmed graph (constants as initializers).
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def const(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def per_channel(value, c):
        if value is None or value.size != c or (value.ndim and value.shape[-1] != 1 and value.ndim > 1):
            return None
        if value.ndim == 4 and value.shape[:1] == (1,) and value.shape[2:] == (1, 1):
            return value.reshape(c)
        if value.ndim == 3 and value.shape[1:] == (1, 1):
            return value.reshape(c)
        return None

    removed, folded = set(), 0
    for node in list(graph.node):
        if node.op_type != "InstanceNormalization" or len(node.input) != 3:
            continue
        scale, bias = const(node.input[1]), const(node.input[2])
        if scale is None or bias is None or node.output[0] in outputs:
            continue
        c = scale.size
        nexts = consumers.get(node.output[0], [])
        if len(nexts) != 1 or nexts[0].op_type != "Mul":
            continue
        mul = nexts[0]
        other = [n for n in mul.input if n != node.output[0]]
        if len(other) != 1 or mul.output[0] in outputs:
            continue
        c1 = per_channel(const(other[0]), c)
        adds = consumers.get(mul.output[0], [])
        if c1 is None or len(adds) != 1 or adds[0].op_type != "Add":
            continue
        add = adds[0]
        other = [n for n in add.input if n != mul.output[0]]
        c2 = per_channel(const(other[0]), c) if len(other) == 1 else None
        if c2 is None:
            continue
        new_scale = (scale * c1).astype(scale.dtype)
        new_bias = (bias * c1 + c2).astype(bias.dtype)
        s_name, b_name = f"{node.name or node.output[0]}_folded_scale", f"{node.name or node.output[0]}_folded_bias"
        graph.initializer.extend([numpy_helper.from_array(new_scale, s_name), numpy_helper.from_array(new_bias, b_name)])
        node.input[1], node.input[2] = s_name, b_name
        node.output[0] = add.output[0]
        removed.update((id(mul), id(add)))
        folded += 1
    if folded:
        keep = [n for n in graph.node if id(n) not in removed]
        del graph.node[:]
        graph.node.extend(keep)
        used = {name for n in graph.node for name in n.input}
        unused = [t for t in graph.initializer if t.name not in used]
        for t in unused:
            graph.initializer.remove(t)
    return folded
