"""Fine-tune a meta-trained checkpoint on K = 1..32 stills of a new person; write an identity pack.

Example:
  monalisa finetune ckpt/ --stills a.jpg b.jpg --out packs/anna --steps 300

The pack holds identity.safetensors, identity.json and contact_sheet.png (crops | rasters | output).
A warp-generator checkpoint (warp_small, warp) learns from the first still warped to each still's
expression: give the still you will animate first.
"""
from pathlib import Path

from monalisa.cli.common import HELP_FORMAT, add_overwrite, add_steady, add_threads, integer


def add_parser(sub):
    from monalisa.models.config import FINETUNE_JITTER, FINETUNE_STEADY  # torch-free

    p = sub.add_parser("finetune", help="fine-tune on stills of one person -> identity pack",
                       description=__doc__, formatter_class=HELP_FORMAT)
    p.add_argument("checkpoint", type=Path, help="checkpoint folder from monalisa train")
    p.add_argument("--stills", type=Path, nargs="*", default=[], help="1..32 images of the person")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="identity pack folder to write (a new or empty "
                   "folder, or an earlier pack, which is replaced)")
    p.add_argument("--steps", type=integer(1, 10**6), metavar="N", default=300, help="fine-tuning steps (default 300)")
    p.add_argument("--name", default=None, help="identity name (default: the --out folder name)")
    p.add_argument("--vgg19", type=Path, default=None, metavar="FILE", help="local VGG19 .safetensors for the content loss")
    add_steady(p, default=FINETUNE_STEADY)
    p.add_argument("--jitter", type=integer(0, 64), default=FINETUNE_JITTER, metavar="N",
                   help="warp generators: landmark-jittered copies of each still's pair, 0-64 (default %(default)s)")
    add_threads(p)
    add_overwrite(p, "the pack")
    p.set_defaults(run=run)


def run(args) -> int:
    from monalisa.cli.common import need_torch, set_threads
    from monalisa.errors import MediaError

    need_torch("finetune")
    set_threads(args.threads)
    from monalisa.models.finetune import make_identity_pack

    if args.vgg19 is not None and not args.vgg19.is_file():
        raise MediaError(f"{args.vgg19}: perceptual weights not found; give a local .safetensors file")
    meta = make_identity_pack(args.checkpoint, args.stills, args.out, steps=args.steps, name=args.name,
                              vgg19=args.vgg19, overwrite=args.overwrite, steady=args.steady,
                              jitter=args.jitter)
    print(f"wrote identity pack {args.out} (K={meta['k']}, {meta['steps']} steps)")
    return 0
