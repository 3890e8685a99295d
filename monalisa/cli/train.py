"""Meta-train the talking-head model (E, G, D) on a prepared folder; re-run to resume.

Examples:
  monalisa train --data data/prepared --out runs/base --config small --steps 20000
  torchrun --nproc-per-node 2 -m monalisa train ...      (several processes: DDP, gloo on CPU)
  monalisa train --data data/prepared256 --out runs/warp --config warp --init monalisa/weights/warp_small
      --no-adversarial --steady 3 --k 2 --batch 4        (one command: the warp generator, docs/warpgen.md)

Writes RUN/checkpoints/step_XXXXXXX/ (safetensors + JSON + preview.png), RUN/losses.csv, RUN/run.json.
"""
from pathlib import Path

from monalisa.cli.common import HELP_FORMAT, add_overwrite, add_steady, add_threads, integer, torch_device


def add_parser(sub):
    from monalisa.models.config import PRESETS  # torch-free

    p = sub.add_parser("train", help="meta-train E, G, D on prepared clips (resumable)", description=__doc__,
                       formatter_class=HELP_FORMAT)
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder written by monalisa prepare")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="run folder (checkpoints, losses.csv); resumed if present")
    p.add_argument("--config", default="small", choices=list(PRESETS),
                   help="model preset: small (64 px), medium (128 px), paper (256 px); warp_* the "
                        "warp-conditioned generator (default small)")
    p.add_argument("--steps", type=integer(1, 10**9), metavar="N", default=1000, help="total steps of the run (default 1000)")
    p.add_argument("--batch", type=integer(1, 1024), metavar="N", default=2, help="episodes per step and process (default 2)")
    p.add_argument("--k", type=integer(1, 64), metavar="N", default=8, help="reference frames per episode, fewer than the shortest "
                   "clip's frames (default 8)")
    p.add_argument("--checkpoint-every", type=integer(1, 10**9), metavar="N", default=500, help="steps between checkpoints (default 500)")
    p.add_argument("--keep", type=integer(1, 10**6), metavar="N", default=3, help="newest checkpoints kept (default 3)")
    p.add_argument("--seed", type=integer(0, 2**32 - 1), metavar="N", default=0, help="seed of the initial weights and of "
                   "episode sampling, 0 to 2^32-1 (default 0); a resumed run keeps its own")
    p.add_argument("--device", type=torch_device, default="auto", help="auto, cpu, cuda or cuda:N (default auto: cuda "
                   "when torch sees a GPU)")
    p.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA too")
    p.add_argument("--vgg19", type=Path, default=None, metavar="FILE", help="local VGG19 .safetensors for the content loss")
    p.add_argument("--vggface", type=Path, default=None, metavar="FILE", help="local VGGFace .safetensors for the content loss")
    p.add_argument("--reference", type=Path, default=None, metavar="DIR",
                   help="also write the final weights as compact float16 reference weights to this folder")
    p.add_argument("--no-adversarial", dest="adversarial", action="store_false",
                   help="content loss only, no discriminator (the fast CPU setting)")
    p.add_argument("--init", type=Path, default=None, metavar="CHECKPOINT",
                   help="start a new run from these weights (same preset; the bundled warp_small also grows "
                        "into --config warp: 256² through the same 64² trunk)")
    add_steady(p)
    add_threads(p)
    add_overwrite(p, "the run (and --reference)")
    p.set_defaults(run=run)


def interrupted(args) -> str:
    from monalisa.models.meta import latest_checkpoint

    last = latest_checkpoint(args.out) if Path(args.out).is_dir() else None
    if last is None:
        return (f"no checkpoint was written yet (the first comes at step {args.checkpoint_every}); "
                "re-run the same command to start again")
    return f"re-run the same command to resume from {last.name}"


def run(args) -> int:
    from monalisa.cli.common import need_torch, set_threads
    from monalisa.errors import ConfigError, MediaError

    need_torch("train")
    set_threads(args.threads)
    from monalisa.files import check_out_dir
    from monalisa.models.checkpoint import FILES, export_reference
    from monalisa.models.config import get_config
    from monalisa.models.losses import ContentLoss
    from monalisa.models.meta import TrainConfig, train

    model = get_config(args.config)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch, k=args.k, seed=args.seed,
                      checkpoint_every=args.checkpoint_every, keep=args.keep, amp=not args.no_amp,
                      adversarial=args.adversarial, steady_weight=args.steady)
    for path in (args.vgg19, args.vggface):
        if path is not None and not path.is_file():
            raise MediaError(f"{path}: perceptual weights not found; give a local .safetensors file")
    if args.reference is not None:
        check_out_dir(args.reference, FILES, overwrite=args.overwrite, flag="--reference")
    content = ContentLoss(vgg19_path=args.vgg19, vggface_path=args.vggface)
    if args.steady and model.generator != "warp":
        raise ConfigError(f"--steady is a warp_* option; --config {args.config} has the plain generator")
    result = train(args.data, args.out, model, cfg, device=args.device, overwrite=args.overwrite, content=content,
                   init=args.init)
    last = result["losses"]
    print(f"step {result['step']}: G {last.get('g_total')} D {last.get('d_total', '-')}; checkpoint {result['checkpoint']}")
    if args.reference is not None and result["checkpoint"] is not None:
        sha = export_reference(result["checkpoint"], args.reference)
        print(f"reference weights (float16) in {args.reference}, sha256 {sha[:12]}")
    return 0
