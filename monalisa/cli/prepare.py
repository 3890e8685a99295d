"""Decode talking-face clips, find 68-point landmarks per frame, store aligned face squares.

Example:
  monalisa prepare clips/*.mp4 --out data/prepared --size 256

Writes DIR/manifest.json and DIR/<clip>/{frames.npy, landmarks.npy, frames.json} (see
models/prepare.py). Re-running the same command skips clips already done.
"""
from pathlib import Path

from monalisa.cli.common import HELP_FORMAT, add_overwrite, integer

#: the largest --size: a 4096² face square is already 50 MB a frame
MAX_SIZE = 4096


def add_parser(sub):
    p = sub.add_parser("prepare", help="clips -> aligned faces + landmarks for training", description=__doc__,
                       formatter_class=HELP_FORMAT)
    p.add_argument("clips", type=Path, nargs="+", help="movie files or image-sequence patterns (plate.####.png)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the prepared data to (a new or empty "
                   "folder, or an earlier prepare's, which is resumed)")
    p.add_argument("--size", type=integer(16, MAX_SIZE), metavar="N", default=256, help="side of the aligned face square, "
                   f"16-{MAX_SIZE}, at least the model's resolution (default 256)")
    p.add_argument("--every", type=integer(1, 10**6), metavar="N", default=1, help="keep every n-th frame (default 1)")
    p.add_argument("--max-frames", type=integer(1, 10**9), metavar="N", default=None,
                   help="at most this many frames per clip (default: all)")
    p.add_argument("--backend", default="dlib", choices=["dlib", "face-alignment"],
                   help="landmark detector (default dlib)")
    add_overwrite(p, "the prepared data")
    p.set_defaults(run=run)


def interrupted(args) -> str:
    done = [p.parent.name for p in Path(args.out).glob("*/frames.json")]
    if done:
        return f"{len(done)} clip(s) finished; re-run the same command to prepare the rest"
    return "no clip was finished; re-run the same command to start again"


def run(args) -> int:
    from monalisa.models.prepare import PrepareOptions, prepare

    options = PrepareOptions(size=args.size, every=args.every, max_frames=args.max_frames, backend=args.backend)
    manifest = prepare(args.clips, args.out, options, overwrite=args.overwrite)
    kept = sum(v["frames"] for v in manifest["videos"])
    skipped = sum(v["skipped"] for v in manifest["videos"])
    for v in manifest["videos"]:
        print(f"{v['id']}: {v['frames']} frames kept, {v['skipped']} without a face skipped")
    print(f"prepared {len(manifest['videos'])} clips, {kept} frames ({skipped} skipped) in {args.out}")
    return 0
