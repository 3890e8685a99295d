"""The whole export as one library function: checkpoint (+ identity pack) -> a verified folder of .onnx.

``export_checkpoint`` does every check before it writes anything, then writes the folder atomically
(``monalisa.files.atomic_dir``): a failed export leaves no folder (or the previous one untouched).

Files (fp16/int8 variants only when asked for and verified):

- ``embedder.onnx``, ``generator.onnx``, ``baked_generator.onnx`` (with ``--identity``)
- ``*.fp16.onnx`` (``fp16=True``), ``generator.int8.onnx`` / ``baked_generator.int8.onnx`` (``int8=True``)
- ``export.json``: the report below plus hashes, as a sidecar for pipeline tools
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from monalisa.errors import ExportError, InputError

log = logging.getLogger(__name__)

SIDECAR = "export.json"


@dataclass
class FileReport:
    name: str
    role: str
    precision: str
    nodes: int
    checker: bool
    metric: str  # "max|diff|" (vs torch) or "SSIM" (int8 vs fp32 ORT)
    value: float
    bound: float
    kept: bool = True
    size: int = 0
    sha256: str = ""
    note: str = ""


@dataclass
class ExportResult:
    out: Path
    files: list = field(default_factory=list)
    notes: list = field(default_factory=list)


@dataclass
class Bounds:
    fp32: float = 1e-4
    fp16: float = 2e-2
    int8_ssim: float = 0.99


def check_out_dir(out) -> Path:
    """Refuse (InputError, one line) an --out that cannot be written or that holds unrelated files."""
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose a new folder for --out")
    if out.is_dir():
        strangers = [p.name for p in out.iterdir() if not (p.suffix == ".onnx" or p.name == SIDECAR)]
        if strangers:
            raise InputError(f"{out}: holds other files ({', '.join(sorted(strangers)[:3])}); export replaces "
                             "the whole folder, so choose a new or empty --out folder")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{out}: {parent} is not a folder; choose a writable --out folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise InputError(f"{out}: cannot write in {parent} ({exc.strerror}); choose a writable --out folder") from None
    return out


def _real_feeds(graphs, real, k: int = 4) -> dict:
    """role -> tuple of real numpy inputs (the embedder on K-frame groups; the generator on every
    frame with the embedding of its group)."""
    from monalisa.export.onnx import torch_reference

    images, rasters = real.groups(k)  # (B, K, 3, R, R)
    groups = torch_reference(graphs["embedder"], (images, rasters))  # (B, E)
    per_frame = np.repeat(groups, images.shape[1], axis=0)
    emb = np.concatenate([per_frame, np.repeat(groups[-1:], len(real.rasters) - len(per_frame), axis=0)])
    feeds = {"embedder": (images, rasters), "generator": (real.rasters, emb.astype(np.float32))}
    if "baked_generator" in graphs:
        feeds["baked_generator"] = (real.rasters,)
    return feeds


def export_checkpoint(checkpoint, out, *, identity=None, opset: int | None = None, fp16: bool = False,
                      int8: bool = False, slim: bool = True, calibration=None, bounds: Bounds | None = None,
                      progress=None) -> ExportResult:
    """Export, verify and write. Raises InputError subclasses for bad input (before any work),
    ExportError/ExportMismatchError when a check fails; in both cases nothing is written.

    progress: optional callable(str) told about each step (the CLI prints it).
    """
    import onnx

    from monalisa import __version__
    from monalisa.export import onnx as onnx_export
    from monalisa.export import verify
    from monalisa.export.metadata import build_metadata, set_metadata
    from monalisa.files import atomic_dir, sha256_file
    from monalisa.models.checkpoint import load_checkpoint
    from monalisa.models.identity import load_identity

    say = progress or (lambda msg: log.info("%s", msg))
    bounds = bounds or Bounds()
    opset = onnx_export.check_opset(onnx_export.DEFAULT_OPSET if opset is None else opset)
    out = check_out_dir(out)
    ckpt = load_checkpoint(checkpoint)
    pack, pack_sha = None, ""
    if identity is not None:
        pack = load_identity(identity, base_sha256=ckpt.sha256)
        pack_sha = sha256_file(Path(identity) / "identity.safetensors")
    ident_name = str(pack.meta.get("name") or pack.path.name) if pack else ""
    cfg = ckpt.config
    real = verify.load_real_inputs(calibration, cfg.resolution)
    calib = {"file": real.path.name, "sha256": sha256_file(real.path), "frames": int(len(real.rasters))}
    say(f"checkpoint {ckpt.path} ({ckpt.sha256[:12]}), {cfg.resolution}px, opset {opset}; "
        f"real inputs: {len(real.rasters)} frames from {real.path.name}")

    graphs = onnx_export.build_graphs(ckpt, pack)
    feeds = _real_feeds(graphs, real)
    result = ExportResult(out)
    models = {}  # file name -> ModelProto

    def finish(name, role, precision, model, metric, value, bound, note=""):
        inputs, outputs = onnx_export.IO[role]
        on_baked = role == "baked_generator"
        meta = build_metadata(role, cfg, checkpoint_sha256=ckpt.sha256, opset=opset, precision=precision,
                              identity_name=ident_name if on_baked else "",
                              identity_sha256=pack_sha if on_baked else "", inputs=inputs, outputs=outputs,
                              crop=ckpt.meta.get("crop"),
                              extra={"verification": {"metric": metric, "value": value, "bound": bound,
                                                      "inputs": calib}})
        set_metadata(model, meta)
        models[name] = model
        result.files.append(FileReport(name, role, precision, len(model.graph.node), True, metric, value, bound,
                                       note=note))

    for role, graph in graphs.items():
        names = onnx_export.IO[role][0]
        inputs = feeds[role]
        feed = dict(zip(names, inputs))
        ref = onnx_export.torch_reference(graph, inputs)
        model = onnx_export.export_graph(graph, role, cfg, opset)
        verify.check_graph(model, f"{role}.onnx")
        diff = verify.check_parity(f"{role}.onnx", verify.run_ort(model, feed), ref, bounds.fp32)
        fp32, note = model, ""
        if slim:
            slimmed, why = _slim(model)
            if slimmed is not None:
                folded = onnx_export.fuse_constant_adain(slimmed) if role == "baked_generator" else 0
                verify.check_graph(slimmed, f"{role}.onnx (slimmed)")
                sdiff = verify.max_abs_diff(verify.run_ort(slimmed, feed), ref)
                if sdiff <= bounds.fp32:
                    note = f"onnxslim {len(model.graph.node)}->{len(slimmed.graph.node)} nodes"
                    note += f", {folded} AdaIN folded into InstanceNorm" if folded else ""
                    fp32, diff = slimmed, sdiff
                else:
                    note = f"onnxslim dropped (max|diff| {sdiff:.2g} > {bounds.fp32:g})"
            else:
                note = f"onnxslim skipped ({why})"
        say(f"{role}: fp32 max|diff| {diff:.2e} (bound {bounds.fp32:g}); {note}")
        finish(f"{role}.onnx", role, "fp32", fp32, "max|diff|", diff, bounds.fp32, note)

        if fp16:
            from monalisa.export.fp16 import to_fp16

            half = to_fp16(model)  # from the un-slimmed graph (slim-then-fp16 breaks Resize casts)
            verify.check_graph(half, f"{role}.fp16.onnx")
            hdiff = verify.check_parity(f"{role}.fp16.onnx", verify.run_ort(half, feed), ref, bounds.fp16)
            say(f"{role}: fp16 max|diff| {hdiff:.2e} (bound {bounds.fp16:g})")
            finish(f"{role}.fp16.onnx", role, "fp16", half, "max|diff|", hdiff, bounds.fp16,
                   "onnxconverter-common, float32 I/O")

        if int8 and role != "embedder":
            from monalisa.export.int8 import quantize

            q = quantize(fp32, feed)  # the slimmed (and, baked, AdaIN-folded) graph: fewer float ops
            verify.check_graph(q, f"{role}.int8.onnx")
            got, base = verify.run_ort(q, feed), verify.run_ort(fp32, feed)
            score = verify.ssim(got, base)
            qdiff = verify.max_abs_diff(got, ref)
            if score >= bounds.int8_ssim:
                say(f"{role}: int8 SSIM {score:.4f} vs fp32 (bound {bounds.int8_ssim}); kept")
                finish(f"{role}.int8.onnx", role, "int8", q, "SSIM", score, bounds.int8_ssim,
                       f"QDQ static, max|diff| {qdiff:.2g}")
            else:
                msg = (f"{role}.int8.onnx not written: lowest SSIM {score:.4f} vs fp32 on real inputs is under "
                       f"{bounds.int8_ssim}")
                say(msg)
                result.notes.append(msg)
                result.files.append(FileReport(f"{role}.int8.onnx", role, "int8", len(q.graph.node), True, "SSIM",
                                               score, bounds.int8_ssim, kept=False, note="below SSIM bound"))

    sidecar = {"format": "monalisa-export", "version": 1, "monalisa_version": __version__, "opset": opset,
               "checkpoint": {"path": str(ckpt.path), "sha256": ckpt.sha256, "step": ckpt.step},
               "identity": {"name": ident_name, "sha256": pack_sha} if pack else None,
               "config": cfg.to_dict(), "calibration": calib, "files": []}
    try:
        with atomic_dir(out) as tmp:
            for rep in result.files:
                if not rep.kept:
                    continue
                path = tmp / rep.name
                onnx.save(models[rep.name], str(path))
                rep.size, rep.sha256 = path.stat().st_size, sha256_file(path)
            sidecar["files"] = [asdict(r) for r in result.files]
            sidecar["notes"] = result.notes
            (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise ExportError(f"{out}: could not write the export ({exc.strerror or exc}); nothing was kept") from exc
    return result


def _slim(model):
    """onnxslim.slim on a copy -> (model, None), or (None, reason) when onnxslim fails."""
    import onnx

    try:
        import onnxslim

        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        slimmed = onnxslim.slim(copy)
        # onnxslim keeps metadata_props, opset and I/O names; check the I/O names anyway
        if [i.name for i in slimmed.graph.input] != [i.name for i in model.graph.input]:
            return None, "changed the graph inputs"
        return slimmed, None
    except Exception as exc:  # onnxslim is an optimisation: never fail the export on it
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
