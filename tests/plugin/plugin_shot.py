"""Helpers of the plugin tests: child processes in this venv, the shared shot's layout."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MONALISA = str(BIN / "monalisa")
CLIP = REPO / "assets" / "clips" / "liveportrait_d0.mp4"
PORTRAIT = REPO / "assets" / "portraits" / "liveportrait_s3.jpg"
FRAMES = list(range(0, 6))


@dataclass
class Shot:
    still: Path
    track: Path
    reference: Path  # folder of the reference render, s.0000.exr ...

    @property
    def pattern(self) -> str:
        return str(self.reference / "s.####.exr")


def env(**extra) -> dict:
    """The environment of a child process: this venv first on PATH, one thread per process."""
    e = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    e.update(extra)
    return e


def run(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env(), timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def frames_of(folder) -> dict:
    """{name: bytes} of every entry in ``folder`` (hidden ones too)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


