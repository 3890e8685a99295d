"""What the subcommands share: the parser (one-line errors), typed and ranged numeric options, help
layout, the torch check, --threads and --overwrite.

Every numeric option is parsed by :func:`integer` or :func:`number`: a value that is not a number,
not finite, or out of range is refused at parse time in one line naming the range, e.g.
``monalisa render: error: argument --feather: inf is not a number from 0.001 to 10`` (exit 2).
"""
from __future__ import annotations

import argparse
import math

#: keeps the line breaks of a command's description (its examples)
HELP_FORMAT = argparse.RawDescriptionHelpFormatter

#: the most threads any --threads accepts
MAX_THREADS = 4096


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``monalisa CMD: error: ...`` and exit 2, without the usage block
    (``--help`` shows it). Subcommand parsers made from it are of this class too."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _range_text(lo, hi, lo_open: bool) -> str:
    lo, hi = (v if v is None or isinstance(v, int) else f"{v:g}" for v in (lo, hi))
    if hi is None:
        return f"above {lo}" if lo_open else f"at least {lo}"
    return f"above {lo} and at most {hi}" if lo_open else f"from {lo} to {hi}"


def integer(lo: int, hi: int | None = None):
    """An argparse type: a whole number in lo..hi (hi None: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({_range_text(lo, hi, False)})") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{value} is out of range: use a whole number {_range_text(lo, hi, False)}")
        return value

    parse.__name__ = "integer"
    return parse


def number(lo: float, hi: float | None = None, *, lo_open: bool = False, what: str = "a number"):
    """An argparse type: a finite number in [lo, hi] (``lo_open``: above lo; hi None: no upper bound);
    ``what`` names it in the message ("a frame rate in frames per second")."""

    def parse(text: str) -> float:
        span = f"{what} {_range_text(lo, hi, lo_open)}"
        try:
            value = float(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number: use {span}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number: use {span}")
        if (value <= lo if lo_open else value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"{text} is out of range: use {span}")
        return value

    parse.__name__ = "number"
    return parse


def frame_number(text: str) -> int:
    """An argparse type: a frame number, as the frame grammar allows (nodes/frames.py: at most 9 digits)."""
    from monalisa.nodes.frames import MAX_DIGITS

    return integer(-(10**MAX_DIGITS - 1), 10**MAX_DIGITS - 1)(text)


def torch_device(text: str) -> str:
    """An argparse type: auto, cpu, cuda or cuda:N (torch's device, checked before torch loads)."""
    value = str(text).strip()
    kind, _, index = value.partition(":")
    if kind in ("auto", "cpu", "cuda") and (not index or (kind == "cuda" and index.isdigit() and len(index) < 4)):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a device monalisa trains on; use auto, cpu, cuda or cuda:N")


def add_overwrite(p, what: str) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"write {what} into a folder that holds files monalisa did not write "
                        "(they are kept; without it such a folder is refused; one of a name monalisa "
                        "writes there is refused either way)")


def add_threads(p) -> None:
    p.add_argument("--threads", type=integer(1, MAX_THREADS), default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice, every core; on a shared box "
                        "1-2 are often several times faster)")


#: the largest steadiness weight accepted (the shipped default is 35)
MAX_STEADY = 1000.0


def add_steady(p, flag: str = "--steady", what: str = "", default: float = 0.0) -> None:
    """The steadiness term's weight (warp generators), in train, finetune and evaluate."""
    p.add_argument(flag, type=number(0.0, MAX_STEADY), default=default, metavar="W",
                   help=f"warp generators: weight of the steadiness term{what} (the network's part must not change "
                        f"when the landmarks move by a pixel; against flicker; default {default:g})")


def need_torch(command: str) -> None:
    """BackendUnavailableError (one line, exit 2) when torch cannot be imported."""
    from monalisa.errors import BackendUnavailableError

    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(f"monalisa {command} needs torch ({exc}); install it with "
                                      "pip install 'monalisa[train,cpu]'") from None


def set_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads (after need_torch); ``threads`` was checked by :func:`add_threads`."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)
