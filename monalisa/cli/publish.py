"""``monalisa publish``: run the pyblish plug-ins on a render and publish it as a new version.

  monalisa publish --render shot.####.exr --still still.png --track track.json --to /publish [--name sh010]

Exit 0 when a version was written (its folder is the last line), 2 for a bad request or when a
collector or validator rejected the render (each failing plug-in is printed on one line with its
reason, the last line of stderr), 1 when extraction or integration failed. What an interrupted
publish of the same name left is removed first, one stdout line each. pyblish's own log only
with ``monalisa --verbose``.
"""

from __future__ import annotations

import sys

from monalisa.cli.common import number


def add_parser(sub) -> None:
    p = sub.add_parser("publish", help="validate a render and publish it as a new version (pyblish)",
                       description="Collect, validate, extract review media and integrate a monalisa render "
                                   "into ROOT/NAME/vNNN with the pyblish plug-ins in plugin/pyblish "
                                   "(and any on $PYBLISHPLUGINPATH).")
    p.add_argument("--render", required=True, help="rendered frame pattern, e.g. shot.####.exr")
    p.add_argument("--still", required=True, help="the still the render animated")
    p.add_argument("--track", default="", help="the track the render used (checks its hash and frames)")
    p.add_argument("--model", default="", help="exported model folder the render used (default: the bundled default model, warp)")
    p.add_argument("--identity", default="", help="baked identity generator the render used")
    p.add_argument("--frames", default="", help="frames the publish must hold (default: the track's)")
    p.add_argument("--to", dest="root", required=True, help="publish root; versions go to ROOT/NAME/vNNN")
    p.add_argument("--name", default="", help="publish name (default: the render's name)")
    from monalisa.plugin.publish import MAX_FPS

    p.add_argument("--fps", type=number(0.0, MAX_FPS, lo_open=True, what="a frame rate in frames per second"),
                   default=None,
                   help="preview movie frame rate (default: the render's, the plate's rate its frames record "
                   "as monalisa:fps; 24 when they do not say)")
    p.add_argument("--comment", default="", help="a note stored in publish.json")
    p.add_argument("--plugin-path", action="append", default=[], help="more pyblish plug-in folders")
    p.set_defaults(run=run)


def run(args) -> int:
    from monalisa.plugin.publish import PublishRequest, run_publish

    req = PublishRequest(render=args.render, still=args.still, root=args.root, name=args.name, frames=args.frames,
                         track=args.track, model=args.model, identity=args.identity, fps=args.fps,
                         comment=args.comment)
    result = run_publish(req, extra_paths=args.plugin_path)
    for path in result.cleaned:
        print(f"monalisa publish: removed {path} (left by an interrupted publish)")
    if result.failures:
        for failure in result.failures:
            print(f"monalisa publish: {failure.stage} failed: {failure.line()}", file=sys.stderr)
        validation = any(f.stage in ("collection", "validation") for f in result.failures)
        return 2 if validation else 1
    if result.version_dir is None:
        print("monalisa publish: error: nothing was published (no plug-in integrated the render)", file=sys.stderr)
        return 1
    print(f"monalisa publish: {len(result.instances)} instances published")
    print(result.version_dir)
    return 0
