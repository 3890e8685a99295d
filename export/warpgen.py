"""torch -> ONNX for the warp-conditioned generator (models/warpgen.py).

Roles (``nodes.modelfile.IO``), float32 NCHW, dynamic batch:

- embedder:             ``images``, ``rasters`` (B, K, 3, R, R)                -> ``embedding`` (B, E)
- warp_generator:       ``raster``, ``warped`` (B, 3, R, R), ``embedding`` (B, E) -> ``correction`` (B, 3, R, R), ``mask`` (B, 1, R, R)
- baked_warp_generator: ``raster``, ``warped`` (B, 3, R, R)                    -> ``correction``, ``mask``

The face is ``warped + mask * correction``; the runtime composites it at the still's resolution
(``nodes.warpgen.composite``). :func:`export_warp_checkpoint` writes a verified folder
(onnx.checker + onnxruntime-vs-torch parity on real inputs) atomically, like ``export.pipeline``.
"""
from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from monalisa.errors import ShapeError
from monalisa.export.onnx import DEFAULT_OPSET, EmbedderGraph, check_opset, inference_copy, torch_reference
from monalisa.nodes.modelfile import IO

log = logging.getLogger(__name__)

ROLES = ("embedder", "warp_generator", "baked_warp_generator")


class WarpGeneratorGraph(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, raster, warped, embedding):
        return self.generator.synthesize(raster, warped, self.generator.project(embedding))


class BakedWarpGeneratorGraph(nn.Module):
    """The identity's fine-tuned warp generator with psi' a constant (1, n), broadcast over the batch."""

    def __init__(self, generator, psi):
        super().__init__()
        self.generator = generator
        if psi.ndim != 2 or tuple(psi.shape) != (1, generator.num_adain_params):
            raise ShapeError("identity psi", (1, generator.num_adain_params), tuple(psi.shape))
        self.register_buffer("psi", psi.detach().float().clone())

    def forward(self, raster, warped):
        return self.generator.synthesize(raster, warped, self.psi)


def build_warp_graphs(ckpt, identity=None) -> dict:
    """role -> eval-mode wrapper for a warp checkpoint (and identity pack)."""
    from monalisa.errors import IdentityPackError
    from monalisa.models.checkpoint import build_models

    embedder, generator, _ = build_models(ckpt)
    graphs = {"embedder": EmbedderGraph(inference_copy(embedder)),
              "warp_generator": WarpGeneratorGraph(inference_copy(generator))}
    if identity is not None:
        own = generator.state_dict()
        state = {k: v.float() for k, v in identity.state.items()}
        bad = sorted(set(own) ^ set(state)) + [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
        if bad:
            raise IdentityPackError(f"{identity.path}: generator weights do not fit the checkpoint's warp "
                                    f"generator ({bad[:3]}); use the pack's own base checkpoint")
        graphs["baked_warp_generator"] = BakedWarpGeneratorGraph(inference_copy(generator, state), identity.psi.float())
    for g in graphs.values():
        g.eval()
    return graphs


def example_inputs(role: str, config, batch: int = 2, k: int = 2) -> tuple:
    r, gen = config.resolution, torch.Generator().manual_seed(0)
    img = lambda: torch.rand(batch, 3, r, r, generator=gen) * 2 - 1  # noqa: E731
    if role == "embedder":
        pair = torch.rand(batch, k, 3, r, r, generator=gen) * 2 - 1
        return pair, pair.clone()
    if role == "warp_generator":
        return img(), img(), torch.rand(batch, config.embed_dim, generator=gen)
    return img(), img()


def export_graph(module: nn.Module, role: str, config, opset: int = DEFAULT_OPSET):
    """Trace to an in-memory onnx.ModelProto with a dynamic batch axis (and K for the embedder)."""
    import onnx

    inputs, outputs = IO[role]
    if role == "embedder":
        dynamic = {"images": {0: "B", 1: "K"}, "rasters": {0: "B", 1: "K"}, "embedding": {0: "B"}}
    else:
        dynamic = {name: {0: "B"} for name in (*inputs, *outputs)}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example_inputs(role, config), buf, dynamo=False, opset_version=opset,
                          input_names=list(inputs), output_names=list(outputs), dynamic_axes=dynamic,
                          do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


def reference_outputs(module, inputs: tuple) -> list:
    """torch outputs (list of numpy arrays) of a wrapper on numpy inputs."""
    with torch.no_grad():
        out = module(*(torch.from_numpy(x) for x in inputs))
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def real_feeds(graphs: dict, real, k: int = 4) -> dict:
    """role -> real numpy inputs: calibration crops and rasters; ``warped`` = the previous frame's crop
    (a real face close to, but not exactly at, the frame's landmarks)."""
    images, rasters = real.groups(k)
    emb = torch_reference(graphs["embedder"], (images, rasters))
    n = len(real.rasters)
    per = np.concatenate([np.repeat(emb, images.shape[1], axis=0),
                          np.repeat(emb[-1:], max(0, n - emb.shape[0] * images.shape[1]), axis=0)])[:n]
    warped = np.roll(real.images, 1, axis=0)
    feeds = {"embedder": (images, rasters), "warp_generator": (real.rasters, warped, per.astype(np.float32))}
    if "baked_warp_generator" in graphs:
        feeds["baked_warp_generator"] = (real.rasters, warped)
    return feeds


def export_warp_checkpoint(checkpoint, out, *, identity=None, opset: int | None = None, fp16: bool = False,
                           calibration=None, bound: float = 1e-4, fp16_bound: float = 2e-2, progress=None) -> dict:
    """Export a warp checkpoint (+ identity pack) to ``out``; every file checked before any is written.

    -> the sidecar dict written as export.json.
    """
    import onnx

    from monalisa import __version__
    from monalisa.export import verify
    from monalisa.export.metadata import build_metadata, set_metadata
    from monalisa.files import atomic_dir, check_out_dir, sha256_file
    from monalisa.models.checkpoint import load_checkpoint
    from monalisa.models.identity import load_identity

    say = progress or (lambda msg: log.info("%s", msg))
    opset = check_opset(DEFAULT_OPSET if opset is None else opset)
    out = check_out_dir(out, ours=("*.onnx", "export.json"))
    ckpt = load_checkpoint(checkpoint)
    pack = load_identity(identity, base_sha256=ckpt.sha256) if identity is not None else None
    pack_sha = sha256_file(Path(identity) / "identity.safetensors") if pack else ""
    name = str(pack.meta.get("name") or pack.path.name) if pack else ""
    cfg = ckpt.config
    real = verify.load_real_inputs(calibration, cfg.resolution)
    calib = {"file": real.path.name, "sha256": sha256_file(real.path), "frames": int(len(real.rasters))}
    graphs = build_warp_graphs(ckpt, pack)
    feeds = real_feeds(graphs, real)
    models, files = {}, []
    for role, graph in graphs.items():
        inputs, outputs = IO[role]
        feed = dict(zip(inputs, feeds[role]))
        refs = reference_outputs(graph, feeds[role])
        variants = [("fp32", export_graph(graph, role, cfg, opset), bound)]
        if fp16:
            from monalisa.export.fp16 import to_fp16

            variants.append(("fp16", to_fp16(variants[0][1]), fp16_bound))
        for precision, model, limit in variants:
            fname = f"{role}.onnx" if precision == "fp32" else f"{role}.fp16.onnx"
            verify.check_graph(model, fname)
            got = verify.ort_session(model).run(list(outputs), feed)
            diff = max(verify.check_parity(f"{fname} ({o})", g, r, limit) for o, g, r in zip(outputs, got, refs))
            say(f"{fname}: max|diff| {diff:.2e} (bound {limit:g})")
            baked = role.startswith("baked")
            set_metadata(model, build_metadata(role, cfg, checkpoint_sha256=ckpt.sha256, opset=opset,
                                               precision=precision, identity_name=name if baked else "",
                                               identity_sha256=pack_sha if baked else "", inputs=inputs,
                                               outputs=outputs, crop=ckpt.meta.get("crop"),
                                               extra={"verification": {"metric": "max|diff|", "value": diff,
                                                                       "bound": limit, "inputs": calib}}))
            models[fname] = model
            files.append({"name": fname, "role": role, "precision": precision, "max_abs_diff": diff})
    sidecar = {"format": "monalisa-export", "version": 1, "monalisa_version": __version__, "opset": opset,
               "checkpoint": {"path": str(ckpt.path), "sha256": ckpt.sha256, "step": ckpt.step},
               "identity": {"name": name, "sha256": pack_sha} if pack else None, "config": cfg.to_dict(),
               "calibration": calib, "files": files}
    with atomic_dir(out) as tmp:
        for fname, model in models.items():
            onnx.save(model, str(tmp / fname))
        for f in files:
            f["sha256"] = sha256_file(tmp / f["name"])
        (tmp / "export.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return sidecar
