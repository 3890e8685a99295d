"""monalisa prepare (placeholder: being written; replace this whole file)."""


def add_parser(sub):
    p = sub.add_parser("prepare", help="(not yet available)")
    p.set_defaults(run=run)


def run(args) -> int:
    raise SystemExit("monalisa prepare: not yet available")
