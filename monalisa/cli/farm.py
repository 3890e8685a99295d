"""``monalisa farm``: Open Job Description job bundles and the per-chunk task they run.

  monalisa farm bundle --still S --track T --out BUNDLE_DIR [--render PATTERN] [--frames A-B]
                       [--chunk-size N] [--device cpu|cuda] [--no-chunking] [--overwrite]
                       [every option of `monalisa render` that changes the pixels, spelled as there:
                        --identity --model --correction --still-landmarks --colorspace --retarget
                        --neutral-frame --no-smooth --smooth-strength --feather --mouth --mouth-model
                        --precision; with --plate also --start-frame and --fps, for the Track step]
                       [--ocio-config CONFIG.ocio]  (the config --colorspace names; default $OCIO)
  monalisa farm track --plate P --track T [--start-frame N] [--fps X]       (the job's Track step)
  monalisa farm run-chunk --still S --track T --out PATTERN --frames A-B [--strict-device]  (each Render task)
  monalisa farm template                                                     (print the template path)

The bundle's render options become the job's parameters, passed to every chunk, so a farm render is
byte-identical to ``monalisa render`` with the same options. Values are checked as the hosts check
them (plugin/core.py check_settings), in one line, before anything is written.
"""

from __future__ import annotations

from monalisa.cli.common import integer


def _shot_arguments(p, out_help: str) -> None:
    p.add_argument("--still", default="", help="the portrait to animate")
    p.add_argument("--track", default="", help="landmark track JSON from `monalisa track`")
    p.add_argument("--plate", default="", help="driving plate, when there is no track")
    p.add_argument("--identity", default="", help="baked identity generator .onnx (optional)")
    p.add_argument("--model", default="", help="exported model folder (default: the bundled default model, warp)")
    p.add_argument("--correction", default="", help="warp models: weight 0..1 of the learned correction "
                   "(default: 1 with --identity, 0 without)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--frames", default="", help="frame range, e.g. 1001-1100 (default: the whole track)")
    _render_options(p)


def _render_options(p) -> None:
    """The render options that change the pixels, as ``monalisa render`` spells them (see its --help);
    empty: the render's default."""
    from monalisa.plugin.core import KNOBS

    default = {k.name: k.default for k in KNOBS}
    p.add_argument("--still-landmarks", default="", metavar="TRACK.json", help="the still's landmarks, a one-frame track")
    p.add_argument("--colorspace", default="", metavar="NAME", help="OCIO colour space of the still")
    p.add_argument("--retarget", default=default["retarget"], help="relative (default) or absolute")
    p.add_argument("--neutral-frame", default="", metavar="N", help="the plate frame whose expression is the still's "
                   "own (default: chosen by the render)")
    p.add_argument("--smooth", default="on", metavar="on|off", help="smooth the track (default on)")
    p.add_argument("--no-smooth", dest="smooth", action="store_const", const="off", help="the same as --smooth off")
    p.add_argument("--smooth-strength", default=default["smooth_strength"], metavar="S",
                   help=f"> 1 smooths more (default {default['smooth_strength']})")
    p.add_argument("--feather", default=default["feather"], metavar="F",
                   help=f"matte feather in eye distances (default {default['feather']})")
    p.add_argument("--mouth", default=default["mouth"], metavar="on|off", help="the mouth model (default on)")
    p.add_argument("--mouth-model", default="", metavar="MOUTH.onnx", help="the mouth-interior model "
                   "(default: the bundled one)")
    p.add_argument("--precision", default=default["precision"], metavar="fp32|fp16", help="model files to use")


def _plate_options(p) -> None:
    p.add_argument("--start-frame", default="", metavar="N", help="a movie plate: the number of its first frame, "
                   "where the comp starts it (default 0); an image sequence keeps its own numbers")
    p.add_argument("--fps", default="", metavar="X", help="a plate's frame rate, recorded in its track for "
                   "smoothing (default: the plate's own)")


def add_parser(sub) -> None:
    parser = sub.add_parser("farm", help="render on a farm with Open Job Description",
                            description="Write OpenJD job bundles for a shot and run their chunks.")
    verbs = parser.add_subparsers(dest="farm_command", required=True, metavar="VERB")

    b = verbs.add_parser("bundle", help="write a ready job bundle (template + parameter values) for a shot")
    _shot_arguments(b, "bundle folder")
    _plate_options(b)
    b.add_argument("--ocio-config", default=None, metavar="CONFIG.ocio", help="the OCIO config the chunks render "
                   "with, carried as the job's OcioConfig (default: $OCIO when set here, as a local render uses it; "
                   "else none: the worker's $OCIO or OCIO's built-in)")
    b.add_argument("--out", required=True, help="bundle folder to write")
    b.add_argument("--render", default="", help="output frame pattern (default: BUNDLE/../render/STILL.####.exr)")
    from monalisa.plugin.farm.bundle import MAX_CHUNK_SIZE

    b.add_argument("--chunk-size", type=integer(1, MAX_CHUNK_SIZE), default=10,
                   help=f"frames per farm task, 1 to {MAX_CHUNK_SIZE} (default 10)")
    b.add_argument("--overwrite", action="store_true",
                   help="write into a folder that holds other files too (they are kept; only the bundle's are replaced)")
    b.add_argument("--name", default="", help="job name (default: the output's name)")
    b.add_argument("--no-chunking", action="store_true",
                   help="one task per frame range, for farms without the TASK_CHUNKING extension")
    b.set_defaults(run=run)

    c = verbs.add_parser("run-chunk", help="render one chunk of frames, reporting openjd_progress/status")
    _shot_arguments(c, "frame pattern")
    c.add_argument("--out", required=True, help="output frame pattern, e.g. shot.####.exr")
    c.add_argument("--monalisa", default="", help="the monalisa command to run (default: this one)")
    c.add_argument("--ocio-config", default="", metavar="CONFIG.ocio", help="render with this OCIO config "
                   "(empty: $OCIO or OCIO's built-in)")
    c.add_argument("--strict-device", action="store_true",
                   help="fail instead of falling back to the CPU when --device cannot run here")
    c.set_defaults(run=run)

    k = verbs.add_parser("track", help="the job's Track step: track --plate into --track once (or check --track)")
    k.add_argument("--plate", default="", help="the plate to track (empty: only check --track)")
    k.add_argument("--track", required=True, help="the track file to write or check")
    _plate_options(k)
    k.add_argument("--monalisa", default="", help="the monalisa command to run (default: this one)")
    k.set_defaults(run=run)

    t = verbs.add_parser("template", help="print the path of the job template")
    t.set_defaults(run=run)


def _settings(args, out: str):
    from monalisa.plugin.core import RenderSettings

    return RenderSettings(still=args.still, track=args.track, plate=args.plate, identity=args.identity,
                          model=args.model, correction=args.correction, out=out, frames=args.frames,
                          device=args.device, still_landmarks=args.still_landmarks, colorspace=args.colorspace,
                          retarget=args.retarget, neutral_frame=args.neutral_frame, smooth=args.smooth,
                          smooth_strength=args.smooth_strength, feather=args.feather, mouth=args.mouth,
                          mouth_model=args.mouth_model, precision=args.precision,
                          fps=getattr(args, "fps", ""), start_frame=getattr(args, "start_frame", ""))


def run(args) -> int:
    if args.farm_command == "template":
        from monalisa.plugin.farm.bundle import TEMPLATE

        print(TEMPLATE)
        return 0
    if args.farm_command == "bundle":
        from monalisa.plugin.farm.bundle import write_bundle

        import os

        ocio = os.environ.get("OCIO", "") if args.ocio_config is None else args.ocio_config
        bundle = write_bundle(_settings(args, args.render), args.out, chunk_size=args.chunk_size, ocio=ocio,
                              chunking=not args.no_chunking, name=args.name, overwrite=args.overwrite)
        print(f"monalisa farm: bundle {bundle.path}: {len(bundle.frames)} frames in {len(bundle.chunks)} tasks "
              f"-> {bundle.parameters['Render']}")
        print(f"  run here: openjd run {bundle.path / 'template.yaml'} "
              f"--job-param file://{bundle.path / 'openjd_parameters.json'}")
        return 0
    if args.farm_command == "track":
        from monalisa.plugin.farm.track_step import run_track_step

        return run_track_step(args.plate, args.track, executable=args.monalisa, start_frame=args.start_frame,
                              fps=args.fps)
    from monalisa.plugin.farm.chunk import run_chunk

    return run_chunk(_settings(args, args.out), args.frames, executable=args.monalisa, ocio=args.ocio_config,
                     strict_device=args.strict_device)
