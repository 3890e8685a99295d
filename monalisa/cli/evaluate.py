"""Animation quality on real clips against honest baselines (see monalisa.evaluate, monalisa.crosseval).

Self-reenactment (a clip animates its own first frame; the protocol of docs/evaluate.md):
  monalisa evaluate clips/a.mp4 clips/b.mp4 --k 1 8 32 --out eval/
Prints a Markdown table of the means; --out also gets results.csv, table.md and per clip a contact
sheet (rows: truth, monalisa, warp) and a preview movie. A re-run skips clips already evaluated.

Cross-reenactment (stills of other people, no ground truth):
  monalisa evaluate --driver clips/a.mp4 --stills mona.jpg anna.png --checkpoint monalisa/weights/warp --out cross/
Per still x clip: identity, landmark error, mouth correlation, mouth interior, detail and faces found
for the plain warp, the default render and (with --checkpoint) an identity fine-tuned on the still.
"""
from pathlib import Path

from monalisa.cli.common import add_steady, integer


def add_parser(sub):
    from monalisa.models.config import FINETUNE_JITTER, FINETUNE_STEADY, STAND_INS  # torch-free

    p = sub.add_parser("evaluate", help="measure animation quality on real clips against baselines",
                       description=__doc__)
    p.add_argument("clips", type=Path, nargs="*", help="self-reenactment: movie files, one talking person each")
    p.add_argument("--driver", type=Path, nargs="+", default=None, metavar="CLIP",
                   help="cross-reenactment: clips that drive the --stills")
    p.add_argument("--stills", type=Path, nargs="+", default=None, metavar="STILL",
                   help="cross-reenactment: stills of other people than the drivers")
    p.add_argument("--frames", type=integer(1, 10**5), default=48,
                   help="cross-reenactment: the clips' first N frames (default 48)")
    p.add_argument("--k", type=integer(1, 32), nargs="+", default=[1, 8, 32],
                   help="stills per identity, each 1-32 (default 1 8 32)")
    p.add_argument("--out", type=Path, default=None, help="folder for results.csv, table.md, sheets, movies")
    p.add_argument("--model", type=Path, default=None,
                   help="exported model folder for the render path (default: the bundled default model, warp)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint to fine-tune per clip and K, or per still (K = 1) in cross-reenactment "
                        "(fine-tuned rows are skipped without it)")
    p.add_argument("--finetune-steps", type=integer(1, 10**6), default=None,
                   help="fine-tuning steps per identity (default 100; cross-reenactment: 300, as monalisa finetune)")
    p.add_argument("--finetune-jitter", type=integer(0, 64), default=FINETUNE_JITTER,
                   help="warp generators: landmark-jittered copies of each fine-tuning pair (default %(default)s)")
    add_steady(p, "--finetune-steady", " in fine-tuning", default=FINETUNE_STEADY)
    p.add_argument("--finetune-loss", default=STAND_INS[0], choices=STAND_INS,
                   help="content loss stand-in of fine-tuning (default pyramid: L1 + gradient L1 over 3 scales "
                        "+ MS-SSIM; l1-msssim: the earlier one, for ablation)")
    p.add_argument("--targets", type=integer(1, 10**4), default=32, help="target frames per clip (default 32)")
    p.add_argument("--window", type=integer(0, 10**4), default=12,
                   help="consecutive frames for flicker and the movie (default 12)")
    p.add_argument("--baselines-only", action="store_true", help="evaluate only the three baselines")
    p.set_defaults(run=run)


def run(args) -> int:
    from monalisa.errors import ConfigError

    cross = args.driver is not None
    if cross == bool(args.clips) or (args.stills is not None and not cross):
        raise ConfigError("give CLIP... (self-reenactment) or --driver CLIP... --stills STILL... "
                          "(cross-reenactment), not both")
    steps = args.finetune_steps if args.finetune_steps is not None else (300 if cross else 100)
    if cross:
        return _cross(args, steps)
    from monalisa import evaluate as ev

    protocol = ev.Protocol(targets=args.targets, window=args.window, ks=tuple(sorted(set(args.k))))
    methods = ev.default_methods(protocol, model=args.model, checkpoint=args.checkpoint,
                                 finetune_steps=steps, baselines_only=args.baselines_only,
                                 finetune_jitter=args.finetune_jitter, finetune_steady=args.finetune_steady,
                                 finetune_loss=args.finetune_loss)
    settings = {"model": str(args.model), "checkpoint": str(args.checkpoint), "finetune_steps": steps,
                **{k: v for k, v in vars(args).items() if k.startswith("finetune_") and k != "finetune_steps"}}
    result = ev.evaluate(args.clips, args.out, methods, protocol, settings=settings)
    print(result["table"], end="")
    if args.out is not None:
        print(f"monalisa evaluate: {len(args.clips)} clip(s); results in {args.out}")
    return 0


def _cross(args, steps: int) -> int:
    from monalisa.crosseval import evaluate_cross

    finetune = {"steps": steps, "jitter": args.finetune_jitter, "steady": args.finetune_steady,
                "stand_in": args.finetune_loss}
    result = evaluate_cross(args.stills or [], args.driver, args.out, frames=args.frames, model=args.model,
                            checkpoint=args.checkpoint, finetune=finetune)
    print(result["table"], end="")
    print(result["goals"], end="")
    if args.out is not None:
        print(f"monalisa evaluate: {len(args.stills)} still(s) x {len(args.driver)} clip(s); results in {args.out}")
    return 0
