"""What the subcommands share: help layout, the torch check, --threads and --overwrite."""
from __future__ import annotations

import argparse

#: keeps the line breaks of a command's description (its examples)
HELP_FORMAT = argparse.RawDescriptionHelpFormatter


def add_overwrite(p, what: str) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"write {what} into a folder that holds files monalisa did not write "
                        "(they are kept; without it such a folder is refused)")


def add_threads(p) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice, every core; on a shared box "
                        "1-2 are often several times faster)")


def add_steady(p, flag: str = "--steady", what: str = "", default: float = 0.0) -> None:
    """The steadiness term's weight (warp generators), in train, finetune and evaluate."""
    p.add_argument(flag, type=float, default=default, metavar="W",
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
    """Pin torch's intra-op threads (after need_torch)."""
    if threads is None:
        return
    from monalisa.errors import ConfigError

    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)
