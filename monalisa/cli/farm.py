"""``monalisa farm``: Open Job Description job bundles and the per-chunk task they run.

  monalisa farm bundle --still S --track T --out BUNDLE_DIR [--render PATTERN] [--frames A-B]
                       [--chunk-size N] [--device cpu|cuda] [--identity X.onnx] [--model DIR] [--correction W]
                       [--no-chunking] [--overwrite]
  monalisa farm track --plate P --track T                                    (the job's Track step)
  monalisa farm run-chunk --still S --track T --out PATTERN --frames A-B [--strict-device]  (each Render task)
  monalisa farm template                                                     (print the template path)
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


def add_parser(sub) -> None:
    parser = sub.add_parser("farm", help="render on a farm with Open Job Description",
                            description="Write OpenJD job bundles for a shot and run their chunks.")
    verbs = parser.add_subparsers(dest="farm_command", required=True, metavar="VERB")

    b = verbs.add_parser("bundle", help="write a ready job bundle (template + parameter values) for a shot")
    _shot_arguments(b, "bundle folder")
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
    c.add_argument("--strict-device", action="store_true",
                   help="fail instead of falling back to the CPU when --device cannot run here")
    c.set_defaults(run=run)

    k = verbs.add_parser("track", help="the job's Track step: track --plate into --track once (or check --track)")
    k.add_argument("--plate", default="", help="the plate to track (empty: only check --track)")
    k.add_argument("--track", required=True, help="the track file to write or check")
    k.add_argument("--monalisa", default="", help="the monalisa command to run (default: this one)")
    k.set_defaults(run=run)

    t = verbs.add_parser("template", help="print the path of the job template")
    t.set_defaults(run=run)


def _settings(args, out: str):
    from monalisa.plugin.core import RenderSettings

    return RenderSettings(still=args.still, track=args.track, plate=args.plate, identity=args.identity,
                          model=args.model, correction=args.correction, out=out, frames=args.frames,
                          device=args.device)


def run(args) -> int:
    if args.farm_command == "template":
        from monalisa.plugin.farm.bundle import TEMPLATE

        print(TEMPLATE)
        return 0
    if args.farm_command == "bundle":
        from monalisa.plugin.farm.bundle import write_bundle

        bundle = write_bundle(_settings(args, args.render), args.out, chunk_size=args.chunk_size,
                              chunking=not args.no_chunking, name=args.name, overwrite=args.overwrite)
        print(f"monalisa farm: bundle {bundle.path}: {len(bundle.frames)} frames in {len(bundle.chunks)} tasks "
              f"-> {bundle.parameters['Render']}")
        print(f"  run here: openjd run {bundle.path / 'template.yaml'} "
              f"--job-param file://{bundle.path / 'openjd_parameters.json'}")
        return 0
    if args.farm_command == "track":
        from monalisa.plugin.farm.track_step import run_track_step

        return run_track_step(args.plate, args.track, executable=args.monalisa)
    from monalisa.plugin.farm.chunk import run_chunk

    return run_chunk(_settings(args, args.out), args.frames, executable=args.monalisa,
                     strict_device=args.strict_device)
