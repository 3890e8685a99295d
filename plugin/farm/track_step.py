"""The job's Track step: track the plate once, before the Render chunks run.

With a plate, ``monalisa track PLATE --out TRACK`` runs (skipped when TRACK already holds a track
of that plate, so a re-queued step resumes); every Render chunk then reads TRACK instead of
tracking the whole plate again. Without a plate, the step only checks that TRACK is there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monalisa.errors import TrackFileError
from monalisa.nodes import trackschema
from monalisa.plugin.core import HostInputError, monalisa_command


def _tracked_from(track: Path) -> str:
    """The plate a track file was made from ("" when it is not a readable monalisa track)."""
    try:
        return str(trackschema.read(track).provenance.get("source", ""))
    except TrackFileError:
        return ""


def run_track_step(plate: str, track: str, executable: str = "", stream=None) -> int:
    stream = stream or sys.stdout
    if not track:
        raise HostInputError("the Track step needs --track (the track file to read or write)")
    target = Path(track)
    if not plate:
        if not target.is_file():
            raise HostInputError(f"track {target} does not exist; write it with `monalisa track PLATE --out {target}`")
        stream.write(f"openjd_status: using track {target}\nopenjd_progress: 100.0\n")
        stream.flush()
        return 0
    if target.is_file() and _tracked_from(target) == str(Path(plate)):
        stream.write(f"openjd_status: {target} already tracks {plate}; skipped\nopenjd_progress: 100.0\n")
        stream.flush()
        return 0
    stream.write(f"openjd_status: tracking {plate}\nopenjd_progress: 0.0\n")
    stream.flush()
    proc = subprocess.run(monalisa_command(executable) + ["track", str(plate), "--out", str(target)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    stream.write(proc.stdout)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        stream.write(f"openjd_fail: tracking {plate} failed: {lines[-1] if lines else proc.returncode}\n")
        stream.flush()
        return proc.returncode
    stream.write(f"openjd_status: tracked {plate} into {target}\nopenjd_progress: 100.0\n")
    stream.flush()
    return 0
