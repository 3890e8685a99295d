"""The whole export as one library function: checkpoint (+ identity pack) -> a verified folder of .onnx.

One pipeline for every model kind: a plain (image) generator checkpoint gives the ``embedder``,
``generator`` and ``baked_generator`` roles, a warp-generator checkpoint the ``embedder``,
``warp_generator`` and ``baked_warp_generator`` roles (``export.onnx.GENERATOR_ROLES``), a
mouth-model folder (``mouth.json`` + ``model.safetensors``, ``models.mouth_train``) the ``mouth``
role (``mouth.onnx``, in the format ``nodes.mouthmodel`` reads); the options, checks, report and
export.json are the same for every kind.

``export_checkpoint`` reads top to bottom: :func:`load_job` checks and loads every input, an
:class:`Exporter` verifies one precision per method (fp32 + onnxslim, fp16, int8), and its
``write`` puts the folder down atomically (``monalisa.files.atomic_dir``): a failed export leaves
no folder (or the previous one untouched), and files monalisa did not write are never removed.

Files (fp16/int8 variants only when asked for and verified):

- ``embedder.onnx``, ``GENERATOR.onnx``, ``BAKED.onnx`` (with ``--identity``); or ``mouth.onnx``
- ``*.fp16.onnx`` (``fp16=True``), ``GENERATOR.int8.onnx`` / ``BAKED.int8.onnx`` / ``mouth.int8.onnx`` (``int8=True``, kept
  only within the SSIM bound of fp32 on the picture the role makes)
- ``export.json``: the report below plus hashes, as a sidecar for pipeline tools (format
  ``monalisa-export`` version 2)

Only monalisa's own files are ever replaced or removed: those the folder's ledger
(``monalisa.files``, ``.monalisa-files.json``) lists as written by monalisa and unchanged since.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from monalisa.errors import ExportError, InputError

log = logging.getLogger(__name__)

SIDECAR = "export.json"
SIDECAR_FORMAT, SIDECAR_VERSION = "monalisa-export", 2  # version 2: one shape for every model kind


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


def _file_names() -> tuple:
    """Every name an export writes: ROLE.onnx, ROLE.fp16.onnx, ROLE.int8.onnx for each role, export.json."""
    from monalisa.nodes.modelfile import ROLES
    from monalisa.nodes.mouthmodel import ROLE as MOUTH

    return tuple(sorted({f"{role}{suffix}.onnx" for role in (*ROLES, MOUTH) for suffix in ("", ".fp16", ".int8")}
                        | {SIDECAR}))


OURS = _file_names()  # exact names: a user's my_model.onnx is not one of them


def check_out_dir(out, overwrite: bool = False) -> Path:
    """The output guard, before any work (``monalisa.files.check_out_dir`` with the names an export
    writes): InputError (one line) for an --out that cannot be written; for a file there under a
    name the export writes that monalisa did not write (even with ``overwrite``: it would be
    replaced); for any other file monalisa did not write, unless ``overwrite`` (it is then kept)."""
    from monalisa.files import check_out_dir as guard

    return guard(Path(out).absolute(), OURS, overwrite=overwrite)


def _real_feeds(graphs, real, k: int = 4) -> dict:
    """role -> tuple of real numpy inputs, by input name: the embedder on K-frame groups; a
    generator on every frame's ``raster``, with the ``embedding`` of its group and, for a warp
    model, ``warped`` = the previous frame's crop (a real face near, not at, the frame's landmarks);
    the mouth model on every face's mouth patch (``verify.load_real_patches``)."""
    from monalisa.export.onnx import IO, MOUTH_ROLE, torch_reference

    if MOUTH_ROLE in graphs:
        return {MOUTH_ROLE: (real.images,)}

    images, rasters = real.groups(k)  # (B, K, 3, R, R)
    groups = torch_reference(graphs["embedder"], (images, rasters))[0]  # (B, E)
    per_frame = np.repeat(groups, images.shape[1], axis=0)
    emb = np.concatenate([per_frame, np.repeat(groups[-1:], len(real.rasters) - len(per_frame), axis=0)])
    named = {"images": images, "rasters": rasters, "raster": real.rasters, "embedding": emb.astype(np.float32),
             "warped": np.roll(real.images, 1, axis=0)}
    return {role: tuple(named[name] for name in IO[role][0]) for role in graphs}


@dataclass
class Job:
    """Everything an export works from, loaded and checked before any graph is built."""

    out: Path
    ckpt: object  # models.checkpoint.Checkpoint
    pack: object  # models.identity.IdentityPack or None
    pack_sha: str
    ident_name: str
    opset: int
    crop: dict | None  # the checkpoint's crop geometry (None for the mouth model: it cuts its own patch)
    real: object  # verify.RealInputs
    calib: dict
    bounds: Bounds


def load_job(checkpoint, out, *, identity=None, opset=None, calibration=None, bounds=None,
             overwrite: bool = False) -> Job:
    """Check every input (InputError subclasses, one line) and load it; nothing is written."""
    from monalisa.export import onnx as onnx_export
    from monalisa.export import verify
    from monalisa.files import sha256_file
    from monalisa.models.checkpoint import crop_geometry, load_checkpoint
    from monalisa.models.identity import load_identity

    from monalisa.models.mouth import is_mouth_checkpoint, load_mouth_checkpoint

    opset = onnx_export.check_opset(onnx_export.DEFAULT_OPSET if opset is None else opset)
    out = check_out_dir(out, overwrite)
    if is_mouth_checkpoint(checkpoint):
        if identity is not None:
            raise InputError(f"{checkpoint}: a mouth model has no identity to bake; drop --identity "
                             "(it is for face checkpoints)")
        ckpt = load_mouth_checkpoint(checkpoint)
        real = verify.load_real_patches(calibration, ckpt.config.resolution)
        calib = {"file": real.path.name, "sha256": sha256_file(real.path), "frames": int(len(real.images))}
        return Job(out, ckpt, None, "", "", opset, None, real, calib, bounds or Bounds())
    ckpt = load_checkpoint(checkpoint)
    pack, pack_sha = None, ""
    if identity is not None:
        pack = load_identity(identity, base_sha256=ckpt.sha256)
        pack_sha = sha256_file(Path(identity) / "identity.safetensors")
    ident_name = str(pack.meta.get("name") or pack.path.name) if pack else ""
    geometry = crop_geometry(ckpt)
    real = verify.load_real_inputs(calibration, geometry)
    calib = {"file": real.path.name, "sha256": sha256_file(real.path), "frames": int(len(real.rasters))}
    return Job(out, ckpt, pack, pack_sha, ident_name, opset, geometry.to_dict(), real, calib, bounds or Bounds())


class Exporter:
    """Collects verified ModelProtos and their reports; one method per precision."""

    def __init__(self, job: Job, say):
        self.job, self.say = job, say
        self.result = ExportResult(job.out)
        self.models = {}  # file name -> ModelProto

    def finish(self, name, role, precision, model, metric, value, bound, note=""):
        from monalisa.export import onnx as onnx_export
        from monalisa.export.metadata import build_metadata, build_mouth_metadata, set_metadata

        j = self.job
        inputs, outputs = onnx_export.IO[role]
        on_baked = role.startswith("baked_")
        extra = {"verification": {"metric": metric, "value": value, "bound": bound, "inputs": j.calib}}
        if role == onnx_export.MOUTH_ROLE:
            meta = build_mouth_metadata(j.ckpt.config, checkpoint_sha256=j.ckpt.sha256, opset=j.opset,
                                        precision=precision, extra=extra)
        else:
            meta = build_metadata(role, j.ckpt.config, checkpoint_sha256=j.ckpt.sha256, opset=j.opset,
                                  precision=precision, identity_name=j.ident_name if on_baked else "",
                                  identity_sha256=j.pack_sha if on_baked else "", inputs=inputs, outputs=outputs,
                                  crop=j.crop, extra=extra)
        set_metadata(model, meta)
        self.models[name] = model
        self.result.files.append(FileReport(name, role, precision, len(model.graph.node), True, metric, value,
                                            bound, note=note))

    def fp32(self, role, graph, feed, ref, slim: bool):
        """Export, check and (optionally) slim the float32 graph; -> (unslimmed, kept) ModelProtos."""
        from monalisa.export import onnx as onnx_export
        from monalisa.export import verify

        bound = self.job.bounds.fp32
        model = onnx_export.export_graph(graph, role, self.job.ckpt.config, self.job.opset)
        verify.check_graph(model, f"{role}.onnx")
        diff = verify.check_parity(f"{role}.onnx", verify.run_ort(model, feed), ref, bound)
        kept, note = model, ""
        if slim:
            slimmed, why = _slim(model)
            if slimmed is not None:
                folded = onnx_export.fuse_constant_adain(slimmed) if role.startswith("baked_") else 0
                verify.check_graph(slimmed, f"{role}.onnx (slimmed)")
                sdiff = verify.max_abs_diff(verify.run_ort(slimmed, feed), ref)
                if sdiff <= bound:
                    note = f"onnxslim {len(model.graph.node)}->{len(slimmed.graph.node)} nodes"
                    note += f", {folded} AdaIN folded into InstanceNorm" if folded else ""
                    kept, diff = slimmed, sdiff
                else:
                    note = f"onnxslim dropped (max|diff| {sdiff:.2g} > {bound:g})"
            else:
                note = f"onnxslim skipped ({why})"
        self.say(f"{role}: fp32 max|diff| {diff:.2e} (bound {bound:g}); {note}")
        self.finish(f"{role}.onnx", role, "fp32", kept, "max|diff|", diff, bound, note)
        return model, kept

    def fp16(self, role, model, feed, ref):
        """Half precision from the un-slimmed graph (slim-then-fp16 breaks Resize casts)."""
        from monalisa.export import verify
        from monalisa.export.fp16 import to_fp16

        bound = self.job.bounds.fp16
        half = to_fp16(model)
        verify.check_graph(half, f"{role}.fp16.onnx")
        hdiff = verify.check_parity(f"{role}.fp16.onnx", verify.run_ort(half, feed), ref, bound)
        self.say(f"{role}: fp16 max|diff| {hdiff:.2e} (bound {bound:g})")
        self.finish(f"{role}.fp16.onnx", role, "fp16", half, "max|diff|", hdiff, bound,
                    "onnxconverter-common, float32 I/O")

    def int8(self, role, fp32, feed, ref):
        """Static QDQ int8 of the kept fp32 graph (fewer float ops); kept only when the picture the
        role makes (``export.onnx.face``) stays within the SSIM bound of the fp32 graph's."""
        from monalisa.export import verify
        from monalisa.export.int8 import quantize
        from monalisa.export.onnx import IO, face

        bound = self.job.bounds.int8_ssim
        q = quantize(fp32, feed)
        verify.check_graph(q, f"{role}.int8.onnx")
        got, base = verify.run_ort(q, feed), verify.run_ort(fp32, feed)
        names = IO[role][1]
        score = verify.ssim(face({**feed, **dict(zip(names, got))}), face({**feed, **dict(zip(names, base))}))
        qdiff = verify.max_abs_diff(got, ref)
        if score >= bound:
            self.say(f"{role}: int8 SSIM {score:.4f} vs fp32 (bound {bound}); kept")
            self.finish(f"{role}.int8.onnx", role, "int8", q, "SSIM", score, bound, f"QDQ static, max|diff| {qdiff:.2g}")
            return
        msg = f"{role}.int8.onnx not written: lowest SSIM {score:.4f} vs fp32 on real inputs is under {bound}"
        self.say(msg)
        self.result.notes.append(msg)
        self.result.files.append(FileReport(f"{role}.int8.onnx", role, "int8", len(q.graph.node), True, "SSIM",
                                            score, bound, kept=False, note="below SSIM bound"))

    def write(self) -> ExportResult:
        """The kept files and export.json, atomically; only monalisa's own files are replaced or removed."""
        import onnx

        from monalisa import __version__
        from monalisa.files import atomic_dir, remove_stale_temps, sha256_file

        j, result = self.job, self.result
        sidecar = {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "monalisa_version": __version__, "opset": j.opset,
                   "checkpoint": {"path": str(j.ckpt.path), "sha256": j.ckpt.sha256, "step": j.ckpt.step},
                   "identity": {"name": j.ident_name, "sha256": j.pack_sha} if j.pack else None,
                   "config": j.ckpt.config.to_dict(), "crop": j.crop, "calibration": j.calib, "files": []}
        remove_stale_temps(j.out.parent, j.out.name)
        try:
            with atomic_dir(j.out, ours=OURS) as tmp:
                for rep in result.files:
                    if not rep.kept:
                        continue
                    path = tmp / rep.name
                    onnx.save(self.models[rep.name], str(path))
                    rep.size, rep.sha256 = path.stat().st_size, sha256_file(path)
                sidecar["files"] = [asdict(r) for r in result.files]
                sidecar["notes"] = result.notes
                (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise ExportError(f"{j.out}: could not write the export ({exc.strerror or exc}); nothing was kept") from exc
        return result


def export_checkpoint(checkpoint, out, *, identity=None, opset: int | None = None, fp16: bool = False,
                      int8: bool = False, slim: bool = True, calibration=None, bounds: Bounds | None = None,
                      progress=None, overwrite: bool = False) -> ExportResult:
    """Export a checkpoint of any kind (+ identity pack), verify and write. Raises InputError
    subclasses for bad input (before any work), ExportError/ExportMismatchError when a check fails;
    in both cases nothing is written.

    progress: optional callable(str) told about each step (the CLI prints it).
    """
    from monalisa.export import onnx as onnx_export

    say = progress or (lambda msg: log.info("%s", msg))
    job = load_job(checkpoint, out, identity=identity, opset=opset, calibration=calibration, bounds=bounds,
                   overwrite=overwrite)
    kind = f"{job.ckpt.config.generator} generator" if job.crop is not None else "mouth model"
    say(f"checkpoint {job.ckpt.path} ({job.ckpt.sha256[:12]}), {job.ckpt.config.resolution}px, opset {job.opset}; "
        f"{kind}; real inputs: {len(job.real.rasters)} frames from {job.real.path.name}")
    graphs = onnx_export.build_graphs(job.ckpt, job.pack)
    feeds = _real_feeds(graphs, job.real)
    exporter = Exporter(job, say)
    for role, graph in graphs.items():
        inputs = feeds[role]
        feed = dict(zip(onnx_export.IO[role][0], inputs))
        ref = onnx_export.torch_reference(graph, inputs)
        model, kept = exporter.fp32(role, graph, feed, ref, slim)
        if fp16:
            exporter.fp16(role, model, feed, ref)
        if int8 and role != "embedder":
            exporter.int8(role, kept, feed, ref)
    return exporter.write()


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
