"""The host-agnostic core behind the Nuke node, the Blender add-on and the farm wrapper.

Every decision a host entry makes lives here, in plain Python (standard library only, so Blender's
own Python, which has no monalisa installed, can load this file by path): what a shot's settings
are and whether they are usable, how frame ranges and output patterns read, which ``monalisa``
command renders a range or writes a farm bundle, and how a background render is started and
watched. The hosts only move values between their widgets and :class:`RenderSettings`.

Errors are :class:`HostInputError` (a :class:`monalisa.errors.InputError` when monalisa is
importable): one line naming the value and what to do.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

try:  # inside the monalisa environment the CLI prints these as one line, exit 2
    from monalisa.errors import InputError as _Base
except ImportError:  # loaded by path in a host's own Python (Blender)
    _Base = Exception

__all__ = [
    "HostInputError", "RenderSettings", "Knob", "KNOBS", "DEVICES", "RETARGETS", "parse_frames", "format_frames", "frame_path",
    "pattern_for", "check_settings", "render_command", "bundle_command", "track_command", "monalisa_command",
    "start_render", "render_progress", "run_bundle", "track_frames", "render_frames", "RenderJob",
]

DEVICES = ("cpu", "cuda")
RETARGETS = ("relative", "absolute")
MOUTHS = ("on", "off")
PRECISIONS = ("fp32", "fp16")


class HostInputError(_Base):
    """A setting a host passed that cannot be used; the message says which and what to do."""

    exit_code = 2


@dataclass
class RenderSettings:
    """One shot: what ``monalisa render`` needs. Empty strings mean "not set"."""

    still: str = ""
    track: str = ""
    plate: str = ""
    identity: str = ""
    model: str = ""
    correction: str = ""  # warp models: weight 0..1 of the learned correction; empty = 1 with an identity, 0 without
    out: str = ""  # frame pattern: shot.####.exr, shot.%04d.exr or shot.@@@@.exr
    frames: str = ""  # "1001-1100", "1001-1010,1020"; empty = every frame of the track
    device: str = "cpu"
    still_landmarks: str = ""  # a one-frame track of the still, for faces the detector misses
    colorspace: str = ""  # OCIO name of the still's colour space; empty = monalisa's default for the file type
    retarget: str = "relative"
    feather: str = ""  # matte feather in eye distances; empty = the default (0.25)
    smooth: str = "1"  # "1": One-Euro filter the track (render's default), "0": --no-smooth
    smooth_strength: str = ""  # > 1 smooths more; empty = 1 (the default)
    fps: str = ""  # the plate's frame rate, for tracking a plate (smoothing); empty = the plate's own, else 24
    start_frame: str = ""  # a movie plate's first frame number (where the comp starts it); empty = 0
    neutral_frame: str = ""  # the plate frame whose expression is the still's own; empty = chosen by the render
    mouth: str = "on"  # on: the lips part and the mouth model paints the opening; off: the plain landmark warp
    mouth_model: str = ""  # the mouth-interior model (.onnx); empty = the bundled one
    precision: str = "fp32"  # the model files used: fp32 or fp16

    @classmethod
    def from_mapping(cls, values) -> "RenderSettings":
        """From a host's knob/property values (unknown keys ignored, None read as empty)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: ("" if v is None else str(v)).strip() for k, v in dict(values).items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


class Knob(NamedTuple):
    """One user knob/property: ``kind`` is file | string | choice | float | int | bool | colorspace
    (a choice from the host's OCIO config); ``low``/``high`` bound a float; ``choices`` a choice.
    A float whose default is "" is optional: hosts show it with a toggle (unset: monalisa's default,
    or for fps the comp's/scene's rate)."""

    name: str
    kind: str
    label: str
    default: str
    tip: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple = ()


#: The node's user knobs, in order, for hosts that build a UI from a list.
KNOBS = (
    Knob("still", "file", "still", "", "the portrait to animate (image)"),
    Knob("track", "file", "track", "", "landmark track JSON from `monalisa track` (or set plate)"),
    Knob("plate", "file", "plate", "", "driving plate (movie or image sequence) when there is no track"),
    Knob("identity", "file", "identity", "", "optional baked identity generator (.onnx) from `monalisa export --identity`"),
    Knob("model", "file", "model", "", "optional exported model folder (default: the bundled default model, warp)"),
    Knob("correction", "float", "correction", "", "warp models: weight 0..1 of the learned correction "
         "(unset: 1 with an identity, 0 without, i.e. the landmark warp alone)", 0.0, 1.0),
    Knob("out", "file", "output", "", "output frames, e.g. /shots/sh010/monalisa/sh010.####.exr"),
    Knob("frames", "string", "frame range", "", "e.g. 1001-1100; empty = the whole track"),
    Knob("device", "choice", "device", "cpu", "cpu or cuda", choices=DEVICES),
    Knob("still_landmarks", "file", "still landmarks", "", "the still's landmarks as a one-frame track file "
         "(`monalisa track STILL`, corrected by hand), for paintings the face detector misses"),
    Knob("colorspace", "colorspace", "still colourspace", "", "OCIO colour space of the still; EXR frames are "
         "written in it (unset: linear for float files, sRGB for 8/16-bit ones)"),
    Knob("retarget", "choice", "retarget", "relative", "relative: the plate's motion on the still's own face; "
         "absolute: the plate's landmarks mapped onto the still", choices=RETARGETS),
    Knob("feather", "float", "matte feather", "0.25", "matte feather in eye distances", 0.0, 2.0),
    Knob("smooth", "bool", "smooth track", "1", "One-Euro filter the track before rendering"),
    Knob("smooth_strength", "float", "smoothing", "1", "> 1 smooths more, < 1 follows the plate more closely",
         0.1, 10.0),
    Knob("fps", "float", "fps", "", "the plate's frame rate, used when the plate is tracked (smoothing); "
         "hosts fill it from the comp/scene", 1.0, 240.0),
    Knob("start_frame", "int", "movie start frame", "", "a movie plate's first frame number, where the comp "
         "starts it (hosts fill the comp's/scene's first frame); image sequences keep their own numbers",
         0, 10 ** 9 - 1),
    Knob("neutral_frame", "string", "neutral frame", "", "the plate frame whose expression is the still's own "
         "(empty: of the frames with open eyes, the one with the most closed mouth)"),
    Knob("mouth", "choice", "mouth", "on", "on: the lips part and the mouth model paints teeth and tongue; "
         "off: the still's lips stretch over the opening (the plain landmark warp)", choices=MOUTHS),
    Knob("mouth_model", "file", "mouth model", "", "optional mouth-interior model (.onnx; default: the bundled one)"),
    Knob("precision", "choice", "precision", "fp32", "model files to use", choices=PRECISIONS),
)

_DEFAULTS = {k.name: k.default for k in KNOBS}


def _shared(name: str):
    """A standard-library module of monalisa.nodes that the hosts run as the CLI does (``frames``, the
    frame grammar; ``trackschema``, the track reader): imported from monalisa when this Python has it, else loaded by path from beside
    this file (the Blender extension carries it there, plugin/blender/package.py) or from
    ``<this folder>/../nodes/`` (a source checkout: plugin/ and nodes/; an installed package:
    monalisa/plugin/ and monalisa/nodes/). Either way it is the very file the CLI imports."""
    import importlib

    try:
        return importlib.import_module(f"monalisa.nodes.{name}")
    except ImportError:
        pass
    key = f"monalisa_{name}"
    if key in sys.modules:
        return sys.modules[key]
    import importlib.util

    here = Path(__file__).resolve().parent
    places = (here / f"{name}.py", here.parent / "nodes" / f"{name}.py")
    path = next((p for p in places if p.is_file()), None)
    if path is None:
        raise ImportError(f"monalisa: {name}.py is in none of {', '.join(map(str, places))}; load core.py from a "
                          "monalisa checkout or installation, or install the packaged Blender extension")
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


_frames = _shared("frames")
_tracks = _shared("trackschema")


def _host_error(function):
    """``function`` of the frame grammar with its FrameError raised as HostInputError (what hosts catch)."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except _frames.FrameError as exc:
            raise HostInputError(str(exc)) from None

    return call


parse_frames = _host_error(_frames.parse_frames)
format_frames = _host_error(_frames.format_frames)
frame_path = _host_error(_frames.frame_path)
pattern_for = _host_error(_frames.pattern_for)
_check_pattern = _host_error(_frames.parse_pattern)


def _existing(value: str, what: str, fix: str) -> str:
    path = Path(os.path.expanduser(value)).absolute()
    if not path.exists():
        raise HostInputError(f"{what} {path} does not exist; {fix}")
    return str(path)


def _number(value: str, what: str, low: float, high: float, fix: str, above: bool = False) -> str:
    """``value`` checked to lie in low..high (``above``: strictly above low), as the shortest exact text."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (low < number <= high if above else low <= number <= high):
        raise HostInputError(f"{what} {value!r} must be {fix}")
    short = f"{number:g}"
    return short if float(short) == number else repr(number)  # never rounded: the render gets the very number


def check_settings(settings: RenderSettings, need_out: bool = True) -> RenderSettings:
    """A copy with absolute paths, every input checked to exist; HostInputError otherwise."""
    s = RenderSettings(**settings.to_dict())
    if not s.still:
        raise HostInputError("no still given; choose the portrait image to animate")
    s.still = _existing(s.still, "still", "choose the portrait image to animate")
    if bool(s.track) == bool(s.plate):
        raise HostInputError("give either a track (from `monalisa track`) or a plate, not "
                             + ("both" if s.track else "neither"))
    if s.track:
        s.track = _existing(s.track, "track", "write one with `monalisa track PLATE --out TRACK.json`")
    if s.plate:
        if not _frames.has_pattern(s.plate):
            s.plate = _existing(s.plate, "plate", "check the path")
        else:
            s.plate = str(Path(os.path.expanduser(s.plate)).absolute())
    if s.identity:
        s.identity = _existing(s.identity, "identity", "export one with `monalisa export --identity`")
    if s.model:
        s.model = _existing(s.model, "model folder", "point it at a `monalisa export` output folder")
    if s.correction:
        s.correction = _number(s.correction, "correction", 0.0, 1.0, "a number from 0 to 1, or empty for the default")
    if s.still_landmarks:
        s.still_landmarks = _existing(s.still_landmarks, "still landmarks", "write a one-frame track with "
                                      "`monalisa track STILL --out STILL.track.json`")
    if s.retarget not in RETARGETS:
        raise HostInputError(f"retarget {s.retarget!r} is unknown; use one of: {', '.join(RETARGETS)}")
    if s.feather:
        s.feather = _number(s.feather, "matte feather", 0.0, 10.0, "a number of eye distances above 0 up to 10",
                            above=True)
    if s.smooth_strength:
        s.smooth_strength = _number(s.smooth_strength, "smoothing", 0.0, 100.0, "a number above 0 up to 100 "
                                    "(1 = default)", above=True)
    if s.fps:
        s.fps = _number(s.fps, "fps", 0.01, 1000.0, "the plate's frame rate, above 0")
    if s.start_frame:
        try:
            first = int(s.start_frame)
        except ValueError:
            first = -1
        if not 0 <= first < 10 ** 9:
            raise HostInputError(f"movie start frame {s.start_frame!r} must be a whole frame number from 0")
        s.start_frame = str(first)
    if s.neutral_frame:
        try:
            s.neutral_frame = str(int(s.neutral_frame))
        except ValueError:
            raise HostInputError(f"neutral frame {s.neutral_frame!r} must be a whole frame number of the plate, "
                                 "or empty to let the render choose") from None
    for name, allowed in (("mouth", MOUTHS), ("precision", PRECISIONS)):
        if getattr(s, name) not in allowed:
            raise HostInputError(f"{name} {getattr(s, name)!r} is unknown; use one of: {', '.join(allowed)}")
    if s.mouth_model:
        s.mouth_model = _existing(s.mouth_model, "mouth model", "give a mouth model .onnx, or leave it empty for "
                                  "the bundled one")
    s.smooth = "0" if s.smooth.lower() in ("0", "false", "no", "off") else "1"
    if s.device not in DEVICES:
        raise HostInputError(f"device {s.device!r} is unknown; use one of: {', '.join(DEVICES)}")
    if s.frames:
        s.frames = format_frames(parse_frames(s.frames))
    if need_out or s.out:
        if not s.out:
            raise HostInputError("no output given; set a frame pattern like /shots/sh010/sh010.####.exr")
        s.out = str(Path(os.path.expanduser(s.out)).absolute())
        _check_pattern(s.out)
    return s


def monalisa_command(executable: str = "") -> list:
    """How to call monalisa: ``executable`` when given (a host's setting), else $MONALISA_EXECUTABLE,
    else the ``monalisa`` beside this Python (a venv's own script), else ``monalisa`` on PATH.

    Never ``sys.executable -m monalisa``: inside Nuke or Blender ``sys.executable`` is the host's own
    binary, which would start another Nuke or Blender; a host that finds no command says how to set one."""
    chosen = executable or os.environ.get("MONALISA_EXECUTABLE", "")
    if chosen:
        chosen = os.path.expanduser(chosen)
        found = shutil.which(chosen) or (chosen if Path(chosen).is_file() else "")
        if not found:
            raise HostInputError(f"monalisa executable {chosen!r} not found; point it at the `monalisa` "
                                 "command of the environment monalisa is installed in")
        return [found]
    beside = Path(sys.executable).with_name("monalisa")  # a venv's Python: its own monalisa script
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("monalisa")
    if found:
        return [found]
    raise HostInputError("no `monalisa` command found; set $MONALISA_EXECUTABLE (or the host's monalisa executable "
                         "setting) to the `monalisa` of the environment monalisa is installed in, e.g. "
                         "/opt/monalisa/.venv/bin/monalisa")


def _changed(s: RenderSettings, name: str) -> str:
    """``s.name`` when it asks for something other than monalisa's default, else ""."""
    value = getattr(s, name)
    return "" if value in ("", _DEFAULTS[name]) else value


def _options(s: RenderSettings) -> list:
    """The render options of ``s`` beyond the inputs, as command-line arguments."""
    cmd = []
    for flag, name in (("--correction", "correction"), ("--still-landmarks", "still_landmarks"),
                       ("--colorspace", "colorspace"), ("--feather", "feather"), ("--retarget", "retarget"),
                       ("--neutral-frame", "neutral_frame"), ("--mouth", "mouth"), ("--mouth-model", "mouth_model"),
                       ("--precision", "precision")):
        if _changed(s, name):
            cmd += [flag, getattr(s, name)]
    if s.smooth == "0":
        cmd += ["--no-smooth"]
    elif _changed(s, "smooth_strength"):
        cmd += ["--smooth-strength", s.smooth_strength]
    return cmd


def render_command(settings: RenderSettings, frames=None, executable: str = "") -> list:
    """The ``monalisa render`` command line for ``settings`` (already checked), over ``frames``
    (a spec or a list; default: the settings' range, else the whole track)."""
    s = settings
    cmd = monalisa_command(executable) + ["render", "--still", s.still]
    cmd += ["--track", s.track] if s.track else ["--plate", s.plate]
    if s.identity:
        cmd += ["--identity", s.identity]
    if s.model:
        cmd += ["--model", s.model]
    cmd += _options(s)
    cmd += ["--out", s.out, "--device", s.device]
    if frames is not None and not isinstance(frames, str):
        frames = format_frames(frames)
    frames = frames or s.frames
    if frames:
        cmd += ["--frames", frames]
    return cmd


def bundle_command(settings: RenderSettings, bundle_dir, chunk_size: int = 10, executable: str = "",
                   ocio: str = "") -> list:
    """The ``monalisa farm bundle`` command line writing a job bundle for ``settings``: every render
    option the settings change, and for a plate the host's fps and a movie's first frame number (the
    job's Track step tracks it as :func:`track_command` would); ``ocio``: the host's OCIO config, which
    the job's chunks then render with (its colour space names are the host's)."""
    s = settings
    cmd = monalisa_command(executable) + ["farm", "bundle", "--still", s.still]
    cmd += ["--track", s.track] if s.track else ["--plate", s.plate]
    for flag, value in (("--identity", s.identity), ("--model", s.model), ("--render", s.out), ("--frames", s.frames)):
        if value:
            cmd += [flag, value]
    cmd += _options(s)
    if s.plate and s.fps:
        cmd += ["--fps", s.fps]
    if s.plate and s.start_frame and not _frames.has_pattern(s.plate):  # a sequence keeps its own numbers
        cmd += ["--start-frame", s.start_frame]
    if ocio:
        cmd += ["--ocio-config", ocio]
    cmd += ["--device", s.device, "--chunk-size", str(int(chunk_size)), "--out", str(bundle_dir)]
    return cmd


def track_command(settings: RenderSettings, track_path, frames, executable: str = "") -> list:
    """The ``monalisa track`` command line tracking ``settings.plate`` over ``frames`` into ``track_path``
    (with the host's fps, which the track records for smoothing, and a movie's first frame number)."""
    cmd = monalisa_command(executable) + ["track", settings.plate, "--out", str(track_path),
                                          "--start", str(min(frames)), "--end", str(max(frames))]
    if settings.fps:
        cmd += ["--fps", settings.fps]
    if settings.start_frame and not _frames.has_pattern(settings.plate):  # a sequence keeps its own numbers
        cmd += ["--start-frame", settings.start_frame]
    return cmd


def _pdeathsig():  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child dies with its parent, so killing a farm task kills its render."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _background(cmd, log_path, ocio: str = "") -> subprocess.Popen:
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OCIO": ocio} if ocio else None
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)


def start_render(settings: RenderSettings, log_path, executable: str = "", frames=None, ocio: str = "") -> subprocess.Popen:
    """Start ``monalisa render`` in the background, its output going to ``log_path``; ``ocio``: the
    host's OCIO config (colour space names are the host's), else monalisa's own ($OCIO or built-in)."""
    s = check_settings(settings)
    return _background(render_command(s, frames, executable), log_path, ocio)


def render_progress(pattern, frames) -> tuple:
    """(frames done, frames asked) for a render into ``pattern``: a frame is done once its file
    exists under its final name (monalisa renames finished frames into place)."""
    frames = parse_frames(frames) if isinstance(frames, str) else list(frames)
    return sum(1 for f in frames if _nonempty(frame_path(pattern, f))), len(frames)


def _nonempty(path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size > 0 and not os.path.isdir(path)


def track_frames(path) -> list:
    """The frame numbers of a monalisa track file, read by monalisa's one track reader (trackschema)."""
    try:
        return _tracks.read(path).frames
    except _tracks.TrackFileError as exc:
        raise HostInputError(str(exc)) from None


def render_frames(settings: RenderSettings) -> list:
    """The frames a render of ``settings`` writes: its range, else every frame of its track."""
    if settings.frames:
        return parse_frames(settings.frames)
    if settings.track:
        return sorted(track_frames(settings.track))
    raise HostInputError("with a plate, give a frame range (the plate's frames are known once it is tracked)")


class RenderJob:
    """A background ``monalisa render`` a host watches: ``poll()`` -> (done, total, exit code or None).

    With a plate, the plate is first tracked (``monalisa track``, with the settings' fps) into
    ``STEM.track.json`` beside the frames, and the render reads that track; ``stage`` says which runs."""

    def __init__(self, settings: RenderSettings, log_path=None, executable: str = "", ocio: str = ""):
        self.settings = check_settings(settings)
        self.frames = render_frames(self.settings)
        self.executable, self.ocio = executable, ocio
        stem = Path(frame_path(self.settings.out, self.frames[0])).with_name(Path(self.settings.out).name.split(".")[0])
        self.log_path = Path(log_path) if log_path else stem.with_name(stem.name + ".monalisa.log")
        self.cancelled = False
        if self.settings.plate:
            self.stage = "track"
            self.track_path = stem.with_name(stem.name + ".track.json")
            self.track_command = track_command(self.settings, self.track_path, self.frames, executable)
            self.process = _background(self.track_command, self.log_path)
        else:
            self._start_render()

    def _start_render(self):
        self.stage = "render"
        self.process = start_render(self.settings, self.log_path, self.executable, self.frames, self.ocio)

    def poll(self) -> tuple:
        code = self.process.poll()
        if self.stage == "track" and code == 0:
            if self.cancelled:  # cancelled between the steps: the render never starts
                code = -15
            else:
                self.settings = RenderSettings(**{**self.settings.to_dict(), "track": str(self.track_path), "plate": ""})
                self._start_render()
                code = self.process.poll()
        done, total = render_progress(self.settings.out, self.frames)
        return done, total, code

    def wait(self, timeout=None) -> int:
        """Block until the job ends; its exit code (subprocess.TimeoutExpired past ``timeout`` seconds)."""
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.poll()[2]
            if code is not None:
                return code
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(self.process.args, timeout)
            time.sleep(0.1)

    def cancel(self) -> None:
        """Stop the job: its process is terminated; frames already written stay (a re-run resumes)."""
        self.cancelled = True
        if self.process.poll() is None:
            self.process.terminate()

    def error(self) -> str:
        """The render's last error line (from its log), or "" when it succeeded."""
        if self.poll()[2] in (None, 0):
            return ""
        try:
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            lines = []
        for line in reversed(lines):
            if "error" in line.lower() or "failed" in line.lower():
                return line.strip()
        return lines[-1].strip() if lines else f"monalisa render exited {self.process.returncode}"

    def first_file(self) -> str:
        return frame_path(self.settings.out, self.frames[0])


def run_bundle(settings: RenderSettings, bundle_dir, chunk_size: int = 10, executable: str = "", ocio: str = "") -> str:
    """Write a farm bundle with ``monalisa farm bundle``; returns its folder or raises HostInputError
    with monalisa's own one-line message."""
    s = check_settings(settings, need_out=False)
    proc = subprocess.run(bundle_command(s, bundle_dir, chunk_size, executable, ocio), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        raise HostInputError(lines[-1] if lines else f"monalisa farm bundle exited {proc.returncode}")
    return str(Path(bundle_dir).absolute())
