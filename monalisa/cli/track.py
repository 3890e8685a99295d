"""Detect 68-point facial landmarks on a plate (movie or image sequence) and write a track file.

Examples:
  monalisa track plate.####.exr --out track.json
  monalisa track shot.mov --out track.json --face 1 --smooth --fill hold
  monalisa track shot.mov --out track.json --start-frame 1001     # numbered as a 1001-based comp reads it
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
    p.add_argument("--start-frame", type=integer(0, 10 ** 9 - 1), metavar="N", default=None, help="movies: the "
                   "number of the movie's first frame, where the comp starts it (default 0); an image sequence keeps "
                   "its own numbers")
    p.add_argument("--start", type=frame_number, metavar="N", default=None, help="first frame to track (default: the plate's first)")
    p.add_argument("--end", type=frame_number, metavar="N", default=None, help="last frame to track, inclusive (default: the plate's last)")
    p.add_argument("--upsample", type=integer(0, MAX_UPSAMPLE), metavar="N", default=1, help="HOG detector upsampling, 0-4: higher finds smaller "
                   "faces, slower (default 1)")
    p.add_argument("--smooth", action="store_true", help="apply the One-Euro filter")
    p.add_argument("--min-cutoff", type=number(0.0, 1000.0, lo_open=True), metavar="X", default=1.0, help="One-Euro minimum cutoff in Hz: lower is "
                   "steadier at rest, laggier (default 1.0)")
    p.add_argument("--beta", type=number(0.0, 1000.0), metavar="X", default=1.0, help="One-Euro speed coefficient: higher follows fast "
                   "motion with less lag (default 1.0)")
    p.add_argument("--fps", type=number(0.0, 1000.0, lo_open=True), metavar="X", default=None, help="the plate's "
                   "frame rate, recorded in the track for smoothing and previews (default: the movie's, or the "
                   "rate a sequence's EXR/DPX header records; else 24 is used)")
    p.add_argument("--overwrite", action="store_true", help="replace an --out file that is not a monalisa track")
    p.set_defaults(run=run)


def run(args) -> int:
    import numpy as np

    from monalisa.files import check_out_file
    from monalisa.nodes import trackfile
    from monalisa.nodes.drive import DEFAULT_FPS
    from monalisa.nodes.smooth import OneEuro, one_euro
    from monalisa.nodes.track import summarise, track_plate
    from monalisa.nodes.trackschema import is_track

    check_out_file(args.out, ours=is_track, overwrite=args.overwrite)
    track = track_plate(args.plate, backend=args.backend, face=args.face, start=args.start, end=args.end,
                        fill_method=args.fill, upsample=args.upsample, start_frame=args.start_frame, fps=args.fps)
    if args.smooth:
        fps = track.fps or DEFAULT_FPS
        track.points = one_euro(track.points, fps, OneEuro(args.min_cutoff, args.beta)).astype(np.float32)
        track.provenance["smoothing"] = {"filter": "one_euro", "min_cutoff": args.min_cutoff, "beta": args.beta, "fps": fps}
    trackfile.save(track, args.out)
    s = summarise(track)
    print(f"monalisa track: {args.out}: {s.frames} frames, face found on {s.detected}, filled {s.filled} ({args.fill})")
    return 0
