"""Detect 68-point facial landmarks on a plate (movie or image sequence) and write a track file.

Examples:
  monalisa track plate.####.exr --out track.json
  monalisa track shot.mov --out track.json --face 1 --smooth --fill hold
"""


def add_parser(sub):
    p = sub.add_parser("track", help="detect facial landmarks on a plate and write a track file", description=__doc__)
    p.add_argument("plate", help="movie, image sequence (plate.####.exr, plate.%%04d.png) or still")
    p.add_argument("--out", required=True, help="track file to write (JSON)")
    p.add_argument("--backend", default="dlib", choices=("dlib", "face-alignment"))
    p.add_argument("--face", default="largest", help="largest | INDEX (left to right) | X,Y on the first frame")
    p.add_argument("--fill", default="interpolate", choices=("interpolate", "hold"), help="how to fill frames where the face is lost")
    p.add_argument("--start", type=int, default=None)
    p.add_argument("--end", type=int, default=None)
    p.add_argument("--upsample", type=int, default=1, help="HOG detector upsampling (finds smaller faces, slower)")
    p.add_argument("--smooth", action="store_true", help="apply the One-Euro filter")
    p.add_argument("--min-cutoff", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--fps", type=float, default=None, help="frame rate for smoothing (default: the plate's, else 24)")
    p.set_defaults(run=run)


def run(args) -> int:
    import numpy as np

    from monalisa.nodes import trackfile
    from monalisa.nodes.media import probe
    from monalisa.nodes.smooth import OneEuro, one_euro
    from monalisa.nodes.track import summarise, track_plate

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
