"""monalisa export: checkpoint (+ identity pack) -> verified ONNX files for onnxruntime hosts.

Writes DIR atomically: embedder.onnx and the generator (generator.onnx, or warp_generator.onnx for
a warp checkpoint), the baked generator with --identity (baked_generator.onnx or
baked_warp_generator.onnx), or mouth.onnx for a mouth-model folder (mouth.json + model.safetensors,
the mouth-interior network of `monalisa render --mouth`), *.fp16.onnx (--fp16), *generator.int8.onnx
or mouth.int8.onnx (--int8, kept only within SSIM 0.99 of fp32) and export.json. Each file passes onnx.checker (full check) and matches torch
on real inputs (max |diff| <= 1e-4 fp32, <= 2e-2 fp16), or nothing is written. Only monalisa's own
files in DIR are replaced (those the folder's ledger lists); other files are refused, or kept with
--overwrite (a user's file under a name the export writes is refused even then).

Example:
  monalisa export runs/base/checkpoints/step_0020000 --identity packs/anna --out onnx/anna --fp16
  monalisa export monalisa/weights/mouth --out monalisa/weights/mouth/onnx
"""
from __future__ import annotations

from monalisa.cli.common import HELP_FORMAT, add_overwrite, integer


def add_parser(sub):
    p = sub.add_parser("export", help="write verified ONNX models (embedder, generator, baked identity)",
                       description=__doc__, formatter_class=HELP_FORMAT)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint folder (checkpoint.json + model.safetensors), or a mouth-model folder "
                   "(mouth.json + model.safetensors)")
    p.add_argument("--identity", metavar="PACK", help="identity pack from `monalisa finetune`: also write "
                   "the baked generator (its weights and psi folded in; no embedding input)")
    p.add_argument("--out", metavar="DIR", required=True, help="output folder, written atomically "
                   "(a new or empty folder, or a previous export, whose files are replaced)")
    p.add_argument("--opset", type=integer(17, 30), default=17, metavar="N", help="ONNX opset, 17 or newer, up to what "
                   "the installed exporter writes (default 17)")
    p.add_argument("--fp16", action="store_true", help="also write half-precision variants (*.fp16.onnx)")
    p.add_argument("--int8", action="store_true", help="also write static int8 (QDQ) generators for CPU, "
                   "kept only if SSIM >= 0.99 against fp32 on real inputs")
    p.add_argument("--no-slim", dest="slim", action="store_false", help="skip onnxslim graph simplification")
    p.add_argument("--calibration", metavar="FILE.npz", help="real inputs for parity and int8 calibration "
                   "(images uint8 (N,S,S,3), landmarks (N,68,2)); default: the bundled calibration set")
    add_overwrite(p, "the export")
    p.set_defaults(run=run)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def format_report(result) -> str:
    rows = [("file", "size", "nodes", "checker", "parity", "bound", "kept")]
    for f in result.files:
        value = f"SSIM {f.value:.4f}" if f.metric == "SSIM" else f"max|diff| {f.value:.2e}"
        bound = f">= {f.bound:g}" if f.metric == "SSIM" else f"<= {f.bound:g}"
        rows.append((f.name, _size(f.size) if f.kept else "-", str(f.nodes), "ok" if f.checker else "FAIL",
                     value, bound, "yes" if f.kept else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args) -> int:
    from monalisa.errors import BackendUnavailableError

    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import torch  # noqa: F401

        from monalisa.export.pipeline import export_checkpoint
    except ImportError as exc:
        raise BackendUnavailableError(f"monalisa export needs torch, onnx and onnxruntime ({exc}); "
                                      "install them with pip install 'monalisa[train,cpu]'") from None

    result = export_checkpoint(args.checkpoint, args.out, identity=args.identity, opset=args.opset,
                               fp16=args.fp16, int8=args.int8, slim=args.slim, calibration=args.calibration,
                               progress=lambda msg: print(msg, flush=True), overwrite=args.overwrite)
    print(format_report(result))
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.out}")
    return 0

