"""monalisa track (placeholder: being written; replace this whole file)."""


def add_parser(sub):
    p = sub.add_parser("track", help="(not yet available)")
    p.set_defaults(run=run)


def run(args) -> int:
    raise SystemExit("monalisa track: not yet available")
