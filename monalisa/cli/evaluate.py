"""Self-reenactment quality on real clips: monalisa against copy-source, the landmark warp and the
blurred warp (the protocol of ../shared/QUALITY.md; see monalisa.models.evaluate).

Example: monalisa evaluate clips/a.mp4 clips/b.mp4 --k 1 8 32 --out eval/
Prints a Markdown table of the means; --out also gets results.csv, table.md and per clip a contact
sheet (rows: truth, monalisa, warp) and a preview movie. A re-run skips clips already evaluated.
"""
from pathlib import Path

from monalisa.cli.common import add_steady


def add_parser(sub):
    from monalisa.models.config import FINETUNE_JITTER, FINETUNE_STEADY, STAND_INS  # torch-free

    p = sub.add_parser("evaluate", help="measure animation quality on real clips against baselines",
                       description=__doc__)
    p.add_argument("clips", type=Path, nargs="+", help="movie files, one talking person each")
    p.add_argument("--k", type=int, nargs="+", default=[1, 8, 32], help="stills per identity (default 1 8 32)")
    p.add_argument("--out", type=Path, default=None, help="folder for results.csv, table.md, sheets, movies")
    p.add_argument("--model", type=Path, default=None,
                   help="exported model folder for the render path (default: the bundled default model, warp)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint to fine-tune per clip and K (fine-tuned identities; skipped without it)")
    p.add_argument("--finetune-steps", type=int, default=100, help="fine-tuning steps per identity (default 100)")
    p.add_argument("--finetune-jitter", type=int, default=FINETUNE_JITTER,
                   help="warp generators: landmark-jittered copies of each fine-tuning pair (default %(default)s)")
    add_steady(p, "--finetune-steady", " in fine-tuning", default=FINETUNE_STEADY)
    p.add_argument("--finetune-loss", default=STAND_INS[0], choices=STAND_INS,
                   help="content loss stand-in of fine-tuning (default pyramid: L1 + gradient L1 over 3 scales "
                        "+ MS-SSIM; l1-msssim: the earlier one, for ablation)")
    p.add_argument("--targets", type=int, default=32, help="target frames per clip (default 32)")
    p.add_argument("--window", type=int, default=12, help="consecutive frames for flicker and the movie (default 12)")
    p.add_argument("--baselines-only", action="store_true", help="evaluate only the three baselines")
    p.set_defaults(run=run)


def run(args) -> int:
    from monalisa.errors import ConfigError

    if any(k < 1 or k > 32 for k in args.k):
        raise ConfigError(f"--k {args.k}: each K must be 1..32 stills")
    if args.targets < 1 or args.window < 0 or args.finetune_steps < 1 or args.finetune_jitter < 0 \
            or args.finetune_steady < 0:
        raise ConfigError("--targets and --finetune-steps must be at least 1, --window, --finetune-jitter and --finetune-steady at least 0")
    from monalisa.models import evaluate as ev

    protocol = ev.Protocol(targets=args.targets, window=args.window, ks=tuple(sorted(set(args.k))))
    methods = ev.default_methods(protocol, model=args.model, checkpoint=args.checkpoint,
                                 finetune_steps=args.finetune_steps, baselines_only=args.baselines_only,
                                 finetune_jitter=args.finetune_jitter, finetune_steady=args.finetune_steady,
                                 finetune_loss=args.finetune_loss)
    settings = {"model": str(args.model), "checkpoint": str(args.checkpoint),
                **{k: v for k, v in vars(args).items() if k.startswith("finetune_")}}
    result = ev.evaluate(args.clips, args.out, methods, protocol, settings=settings)
    print(result["table"], end="")
    if args.out is not None:
        print(f"monalisa evaluate: {len(args.clips)} clip(s); results in {args.out}")
    return 0
