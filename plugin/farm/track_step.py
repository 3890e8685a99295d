"""The job's Track step: track the plate once, before the Render chunks run.

With a plate, ``monalisa track PLATE --out TRACK`` runs, with the job's movie start frame and fps
when set (skipped when TRACK already holds a track of that plate with those numbers and rate, so a
re-queued step resumes); every Render chunk then reads TRACK instead of tracking the whole plate
again. Without a plate, the step only checks that TRACK is there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from monalisa.errors import TrackFileError
from monalisa.nodes import trackschema
from monalisa.nodes.frames import has_pattern
from monalisa.plugin.core import HostInputError, monalisa_command


def _tracks(track: Path, plate: str, start_frame: int, fps: float) -> bool:
    """Whether ``track`` is a readable monalisa track of ``plate`` as this job asks: a movie numbered
    from ``start_frame``, at ``fps`` when given (0: the plate's own)."""
    try:
        data = trackschema.read(track)
    except TrackFileError:
        return False
    if str(data.provenance.get("source", "")) != str(Path(plate)) or not data.frames:
        return False
    if not has_pattern(plate) and min(data.frames) != start_frame:
        return False
    return not fps or data.fps == fps


def _value(value, what: str, convert):
    try:
        return convert(value or 0)
    except ValueError:
        raise HostInputError(f"the Track step's {what} {value!r} is not a number") from None


def run_track_step(plate: str, track: str, executable: str = "", stream=None, start_frame="", fps="") -> int:
    """Track ``plate`` into ``track`` (a movie's frames numbered from ``start_frame``, the track
    recording ``fps``; empty or 0: the plate's own), or check ``track`` when there is no plate."""
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
    first, rate = _value(start_frame, "start frame", int), _value(fps, "fps", float)
    if target.is_file() and _tracks(target, plate, first, rate):
        stream.write(f"openjd_status: {target} already tracks {plate}; skipped\nopenjd_progress: 100.0\n")
        stream.flush()
        return 0
    stream.write(f"openjd_status: tracking {plate}\nopenjd_progress: 0.0\n")
    stream.flush()
    cmd = monalisa_command(executable) + ["track", str(plate), "--out", str(target)]
    if first and not has_pattern(plate):  # a sequence keeps its own numbers
        cmd += ["--start-frame", str(first)]
    if rate:
        cmd += ["--fps", repr(rate)]
    proc = subprocess.run(cmd,
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
