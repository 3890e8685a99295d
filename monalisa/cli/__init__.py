"""The ``monalisa`` command: one module per subcommand, each a thin wrapper over the library.

Each module ``monalisa.cli.<name>`` has ``add_parser(subparsers)`` (cheap: heavy imports stay
inside its ``run``) and ``run(args) -> int``. A :class:`~monalisa.errors.MonalisaError` becomes
one line on stderr and its exit code (2 bad input, 1 failure); nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from monalisa import __version__
from monalisa.cli.common import Parser
from monalisa.errors import MonalisaError

COMMANDS = ("prepare", "train", "finetune", "track", "render", "export", "evaluate", "farm", "publish")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="monalisa", description="Bring a still portrait to life from a tracked performance."
    )
    parser.add_argument("--version", action="version", version=f"monalisa {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"monalisa.cli.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # a bad option was said in one line (common.Parser); --help and --version exit 0
        if stop.code == 2:
            return 2
        raise
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.run(args) or 0)
    except MonalisaError as error:
        print(f"monalisa {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"monalisa {args.command}: interrupted; {_after_interrupt(args)}", file=sys.stderr)
        return 130


def _after_interrupt(args) -> str:
    """What a re-run does after Ctrl-C: the command module's ``interrupted(args)`` says, if it has one."""
    say = getattr(importlib.import_module(f"monalisa.cli.{args.command}"), "interrupted", None)
    try:
        return say(args) if say else "nothing was written; re-run the same command to start again"
    except Exception:  # never hide the interrupt behind a second error
        return "re-run the same command"
