"""monalisa train (placeholder: being written; replace this whole file)."""


def add_parser(sub):
    p = sub.add_parser("train", help="(not yet available)")
    p.set_defaults(run=run)


def run(args) -> int:
    raise SystemExit("monalisa train: not yet available")
