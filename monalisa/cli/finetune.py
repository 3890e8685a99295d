"""monalisa finetune (placeholder: being written; replace this whole file)."""


def add_parser(sub):
    p = sub.add_parser("finetune", help="(not yet available)")
    p.set_defaults(run=run)


def run(args) -> int:
    raise SystemExit("monalisa finetune: not yet available")
