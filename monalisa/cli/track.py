"""Detect 68-point facial landmarks on a plate (movie or image sequence) and write a track file.

Examples:
  monalisa track plate.####.exr --out track.json
  monalisa track shot.mov --out track.json --face 1 --smooth --fill hold
"""
from monalisa.cli.common import HELP_FORMAT, frame_number, integer, number
from monalisa.nodes.detect import MAX_UPSAMPLE


def add_parser(sub):
    p = sub.add_parser("track", help="detect facial landmarks on a plate and write a track file",
                       description=__doc__, formatter_class=HELP_FORMAT)
    p.add_argument("plate", help="movie, image sequence (plate.####.exr, plate.%%04d.png) or still")
    p.add_argument("--out", required=True, metavar="FILE", help="track file to write (JSON)")
    p.add_argument("--backend", default="dlib", choices=("dlib", "face-alignment"), help="landmark detector "
                   "(default dlib)")
    p.add_argument("--face", default="largest", metavar="WHICH", help="which face: largest | INDEX (0, 1, ... left to right) | "
                   "X,Y (a pixel on the face in the first frame) (default largest)")
    p.add_argument("--fill", default="interpolate", choices=("interpolate", "hold"),
                   help="how to fill frames where the face is lost (default interpolate)")
    p.add_argument("--start", type=frame_number, metavar="N", default=None, help="first frame to track (default: the plate's first)")
    p.add_argument("--end", type=frame_number, metavar="N", default=None, help="last frame to track, inclusive (default: the plate's last)")
    p.add_argument("--upsample", type=integer(0, MAX_UPSAMPLE), metavar="N", default=1, help="HOG detector upsampling, 0-4: higher finds smaller "
                   "faces, slower (default 1)")
    p.add_argument("--smooth", action="store_true", help="apply the One-Euro filter")
    p.add_argument("--min-cutoff", type=number(0.0, 1000.0, lo_open=True), metavar="X", default=1.0, help="One-Euro minimum cutoff in Hz: lower is "
                   "steadier at rest, laggier (default 1.0)")
    p.add_argument("--beta", type=number(0.0, 1000.0), metavar="X", default=1.0, help="One-Euro speed coefficient: higher follows fast "
                   "motion with less lag (default 1.0)")
    p.add_argument("--fps", type=number(0.0, 1000.0, lo_open=True), metavar="X", default=None, help="frame rate for smoothing (default: the plate's, else 24)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out file that is not a monalisa track")
    p.set_defaults(run=run)


def run(args) -> int:
    import numpy as np

    from monalisa.files import check_out_file
    from monalisa.nodes import trackfile
    from monalisa.nodes.media import probe
    from monalisa.nodes.smooth import OneEuro, one_euro
    from monalisa.nodes.track import summarise, track_plate
    from monalisa.nodes.trackschema import is_track

    check_out_file(args.out, ours=is_track, overwrite=args.overwrite)
    track = track_plate(args.plate, backend=args.backend, face=args.face, start=args.start, end=args.end,
                        fill_method=args.fill, upsample=args.upsample)
    if args.smooth:
        fps = args.fps or probe(args.plate).fps or 24.0
        track.points = one_euro(track.points, fps, OneEuro(args.min_cutoff, args.beta)).astype(np.float32)
        track.provenance["smoothing"] = {"filter": "one_euro", "min_cutoff": args.min_cutoff, "beta": args.beta, "fps": fps}
    trackfile.save(track, args.out)
    s = summarise(track)
    print(f"monalisa track: {args.out}: {s.frames} frames, face found on {s.detected}, filled {s.filled} ({args.fill})")
    return 0
