"""One farm task: render a chunk of frames and report to Open Job Description.

``run_chunk`` runs ``monalisa render`` over the chunk's frames in a child process and, while it
runs, prints the lines an OpenJD worker reads from a task's stdout:

- ``openjd_status: <text>``   what the task is doing
- ``openjd_progress: <0-100>`` the share of the chunk's frames finished (files under their final name)
- ``openjd_fail: <text>``      why the task failed, on one line (a non-zero exit comes with it)

Bad settings (a missing file, a bad frame range) fail the task before anything runs, in one
``openjd_fail`` line (exit 2). The render's own output is passed through to the task log, except a
Python traceback: only its last line (the exception) is passed on, and it is the failure's reason;
the render command is printed first, to run by hand for the whole traceback. Before starting, the temporaries a
killed writer left beside this chunk's frames are removed (monalisa.files.remove_stale_temps:
pid-tagged names whose process is gone), so a chunk killed mid-frame and run again leaves no
partial file; finished frames are skipped by the render itself. The child dies with this process
(Linux PR_SET_PDEATHSIG), and a SIGTERM from the worker is passed on to it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from pathlib import Path

from monalisa.errors import MonalisaError
from monalisa.files import remove_stale_temps
from monalisa.plugin.core import (HostInputError, RenderSettings, _pdeathsig, check_settings, format_frames, frame_path,
                                  parse_frames, render_command, render_progress)

log = logging.getLogger(__name__)


def _say(stream, kind: str, text) -> None:
    stream.write(f"openjd_{kind}: {text}\n")
    stream.flush()


CRASHED = "monalisa farm: monalisa render crashed: "


def _forward(pipe, stream, lines: list) -> None:
    """Pass the render's lines on (kept in ``lines`` too); a traceback becomes its last line."""
    in_traceback = False
    for line in iter(pipe.readline, ""):
        text = line.rstrip("\n")
        if text.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback:
            if not text.strip() or text[:1].isspace():
                continue  # the traceback's frames
            in_traceback = False
            text = CRASHED + text
        lines.append(text)
        if len(lines) > 200:
            del lines[:100]
        stream.write(text + "\n")
        stream.flush()
    pipe.close()


def _reason(lines: list, rc: int) -> str:
    """The render's own one-line error when it printed one, else its last line."""
    for line in reversed(lines):
        if line.startswith(CRASHED):
            return line[len("monalisa farm: "):].strip() + "; run the render command above for the traceback"
        if "error:" in line or "failed" in line.lower():
            return line.strip()
    tail = [ln.strip() for ln in lines if ln.strip()]
    return tail[-1] if tail else f"monalisa render exited {rc}"


def run_chunk(settings: RenderSettings, frames, executable: str = "", poll: float = 0.5, stream=None,
              strict_device: bool = False, ocio: str = "") -> int:
    """Render ``frames`` (a spec like "1001-1010") for ``settings``; returns the exit code for the
    task. A failure is reported in one ``openjd_fail`` line, never raised. ``strict_device``: fail
    rather than fall back to the CPU when the device cannot run (a GPU job on a CPU worker); ``ocio``:
    the OCIO config the render uses (the job's OcioConfig; empty: $OCIO, else OCIO's built-in)."""
    stream = stream or sys.stdout
    try:
        if not str(frames or "").strip():
            raise HostInputError("no frames given; run-chunk needs --frames (the chunk's frames, e.g. 1001-1010)")
        s = check_settings(settings)
        wanted = parse_frames(frames)
        cmd = render_command(s, wanted, executable) + (["--strict-device"] if strict_device else [])
        if ocio and not ocio.startswith("ocio://") and not Path(ocio).is_file():
            raise HostInputError(f"OCIO config {ocio} does not exist on this worker; map the job's OcioConfig "
                                 "to a path the worker sees")
    except MonalisaError as exc:
        _say(stream, "fail", f"frames {frames}: {' '.join(str(exc).split())}")
        return exc.exit_code
    spec = format_frames(wanted)
    for frame in wanted:  # what a killed writer of this chunk left (its process is gone)
        target = Path(frame_path(s.out, frame))
        for stale in remove_stale_temps(target.parent, target.name):
            stream.write(f"monalisa farm: removed {stale} (left by an interrupted render)\n")
    done, total = render_progress(s.out, wanted)
    _say(stream, "status", f"rendering frames {spec} ({done} of {total} already done)")
    _say(stream, "progress", f"{100.0 * done / total:.1f}")
    stream.write("monalisa farm: " + " ".join(cmd) + "\n")
    stream.flush()
    env = {**os.environ, "OCIO": ocio} if ocio else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, bufsize=1, preexec_fn=_pdeathsig, env=env)
    previous = signal.getsignal(signal.SIGTERM)

    def _pass_on(signum, frame):  # the worker cancels: stop the render, which keeps only whole frames
        proc.terminate()

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _pass_on)
    lines: list = []
    reader = threading.Thread(target=_forward, args=(proc.stdout, stream, lines), daemon=True)
    reader.start()
    try:
        last = done
        while proc.poll() is None:
            time.sleep(poll)
            now, _ = render_progress(s.out, wanted)
            if now != last:
                _say(stream, "progress", f"{100.0 * now / total:.1f}")
                _say(stream, "status", f"frames {spec}: {now} of {total} done")
                last = now
        reader.join()
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.kill()
    rc = proc.returncode
    done, _ = render_progress(s.out, wanted)
    missing = [f for f in wanted if done < total and not _is_done(s.out, f)]
    if rc != 0:
        _say(stream, "fail", f"frames {spec}: {_reason(lines, rc)}")
        return rc if rc > 0 else 1
    if missing:
        _say(stream, "fail", f"frames {spec}: monalisa render finished but frame {missing[0]} "
                             f"({frame_path(s.out, missing[0])}) was not written; see the render log above")
        return 1
    if last != total:
        _say(stream, "progress", "100.0")
    _say(stream, "status", f"frames {spec} done")
    return 0


def _is_done(pattern, frame) -> bool:
    return render_progress(pattern, [frame])[0] == 1
