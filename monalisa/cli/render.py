"""Animate a still portrait from a tracked plate and write a frame sequence a compositor can use.

Examples:
  monalisa render --still mona.exr --track track.json --out renders/mona.####.exr
  monalisa render --still mona.png --plate plate.####.exr --out out/mona.%04d.exr --frames 1001-1050 --preview
  monalisa render --still anna.jpg --track t.json --identity exports/anna/baked_warp_generator.onnx --out a.####.exr

The default model is the bundled 256 px warp-conditioned one: the still's own texture, warped to the
plate's landmarks, plus a learned correction of what a warp cannot show (mouth interior, eyes,
shading, the background the head uncovers) once it has an --identity fine-tuned on the still (see
monalisa/weights/warp/MODEL_CARD.md); without one it renders the landmark warp alone.

EXR frames hold R G B A (scene-linear, premultiplied), a face matte `matte.A` and forward motion vectors
(`forward.u`, `forward.v`, pixels per frame, y up as Nuke reads them; again as Blender's `Vector.XYZW`), with the still's data/display
windows and pixel aspect, plus monalisa:* provenance and `monalisa:synthetic = 1`.
Frames already rendered with the same inputs are skipped (re-run to resume); --overwrite redoes them.
"""
from __future__ import annotations

import argparse

from monalisa.cli.common import MAX_THREADS, frame_number, integer, number


def add_parser(sub):
    p = sub.add_parser("render", help="animate a still from a track or plate -> EXR sequence",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--still", required=True, metavar="IMG", help="the portrait (EXR, DPX, TIFF, PNG, JPEG)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--track", metavar="TRACK.json", help="landmark track of the plate (`monalisa track`)")
    src.add_argument("--plate", metavar="PLATE", help="movie or image sequence to track on the fly (dlib)")
    p.add_argument("--start-frame", type=integer(0, 10 ** 9 - 1), metavar="N", help="with a movie --plate: the number of its first "
                   "frame, where the comp starts it (default 0); an image sequence keeps its own numbers")
    p.add_argument("--out", required=True, metavar="PATTERN",
                   help="output frames, e.g. out/mona.####.exr (#### = 4-digit frame number; also %%04d, %%d, @@@@)")
    p.add_argument("--frames", metavar="RANGE", help="frames to render, e.g. 1001-1100, 1001,1005-1010 or 1001-1100x2 "
                   "(default: every frame of the track)")
    p.add_argument("--identity", metavar="BAKED.onnx", help="an identity's baked generator "
                   "(`monalisa export --identity`); without one a warp model renders the landmark warp alone, an image model "
                   "draws the face feed-forward from the still")
    p.add_argument("--model", metavar="DIR|NAME", help="export folder with embedder.onnx + warp_generator.onnx "
                   "(or generator.onnx), or a bundled model: warp (default: the 256 px warp-conditioned model), "
                   "reference (the paper's 64 px image generator) or warp_small (64 px warp model)")
    p.add_argument("--correction", type=number(0.0, 1.0), metavar="W", help="warp models: weight 0..1 of the learned "
                   "correction (default: 1 with --identity; 0 without, i.e. the landmark warp alone, since the "
                   "feed-forward correction loses to it on faces the model never saw)")
    p.add_argument("--mouth", default="on", metavar="on|off", help="on (default): the lips part and the bundled "
                   "mouth model paints teeth, tongue and the dark of the mouth between them; off: the still's lips "
                   "stretch over the opening (the plain landmark warp)")
    p.add_argument("--mouth-model", metavar="MOUTH.onnx", help="the mouth-interior model (default: the bundled "
                   "monalisa/weights/mouth/onnx/mouth.onnx)")
    p.add_argument("--precision", choices=("fp32", "fp16"), default="fp32", help="model files to use (default fp32)")
    p.add_argument("--still-landmarks", metavar="TRACK.json",
                   help="the still's landmarks as a one-frame track file, for faces the detector misses")
    p.add_argument("--colorspace", metavar="NAME", help="OCIO colour space of the still (default: lin_rec709 for "
                   "float files, sRGB for 8/16-bit ones); EXR frames are written in it (sRGB stills: lin_rec709)")
    p.add_argument("--retarget", choices=("relative", "absolute"), default="relative",
                   help="relative (default): the plate's expression and head motion applied to the still's own "
                   "face; absolute: the plate's landmarks mapped onto the still")
    p.add_argument("--neutral-frame", type=frame_number, metavar="N", help="the plate frame whose expression is the "
                   "still's own (default: of the frames with open eyes, the one with the most closed mouth)")
    p.add_argument("--no-smooth", dest="smooth", action="store_false", help="do not smooth the track")
    p.add_argument("--smooth-strength", type=number(0.0, 100.0, lo_open=True), default=1.0, metavar="S",
                   help="> 1 smooths more: every cutoff divided by S, above 0 up to 100 (default 1)")
    p.add_argument("--feather", type=number(0.0, 10.0, lo_open=True), default=0.25, metavar="F",
                   help="matte feather in eye distances, above 0 up to 10 (default 0.25)")
    p.add_argument("--batch", type=integer(1, 256), default=4, metavar="N", help="frames per inference batch, "
                   "1-256 (default 4)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="onnxruntime device (default cpu)")
    p.add_argument("--strict-device", action="store_true", help="fail (exit 2) instead of falling back to the "
                   "CPU when CUDA cannot run")
    p.add_argument("--threads", type=integer(0, MAX_THREADS), default=0, metavar="N",
                   help="onnxruntime threads (default 0: all cores)")
    p.add_argument("--overwrite", action="store_true", help="re-render frames that already exist")
    p.add_argument("--preview", action="store_true", help="also write a preview movie and a contact sheet")
    p.set_defaults(run=run)


def run(args) -> int:
    from monalisa.nodes.frames import parse_frames
    from monalisa.nodes.render import RenderJob, render_sequence

    job = RenderJob(still=args.still, track=args.track, plate=args.plate, start_frame=args.start_frame, out=args.out,
                    frames=parse_frames(args.frames) if args.frames else None, identity=args.identity,
                    model=args.model, correction=args.correction, mouth=args.mouth,
                    mouth_model=args.mouth_model, precision=args.precision, still_landmarks=args.still_landmarks,
                    colorspace=args.colorspace, retarget=args.retarget, neutral_frame=args.neutral_frame,
                    smooth=args.smooth,
                    smooth_strength=args.smooth_strength, feather=args.feather, batch=args.batch,
                    device=args.device, strict_device=args.strict_device, threads=args.threads,
                    overwrite=args.overwrite, preview=args.preview)
    summary = render_sequence(job, report=lambda line: print(line, flush=True))
    print(f"monalisa render: {summary.line()}")
    return 1 if summary.failed else 0
