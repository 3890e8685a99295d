"""Publishing a monalisa render with pyblish: the request, the plug-ins' shared helpers, the driver.

The plug-ins live one per file in ``plugin/pyblish/`` (found by pyblish through
``PYBLISHPLUGINPATH`` or by :func:`discover`). They read what to publish from
``context.data["monalisa.publish"]`` (a :class:`PublishRequest` as a dict), which
:func:`run_publish` sets; a host without the driver can instead point ``$MONALISA_PUBLISH`` at a
JSON file of the same dict.

A publish lands in ``ROOT/NAME/vNNN/`` (``render/``, ``models/``, ``review/``, ``publish.json``),
built in a hidden temporary folder and renamed into place (``monalisa.files.atomic_dir``). The
version number is one more than any ``vNNN`` entry already there, complete or not, so an existing
version, even a half-written one left by a crash elsewhere, is never reused or overwritten. The
number is reserved by a hidden ``.vNNN.reserved`` link to that temporary folder.

What a killed publish leaves (its temporary version folder ``.vNNN.~PID@HOST~XXXX.tmp``, its
reservation, its staging folder ``.monalisa-publish.~PID@HOST~XXXX.tmp`` in the temp dir) is
removed by the next publish to the same ``ROOT/NAME`` (:func:`clean_interrupted`), which says so.

:func:`run_publish` runs the plug-ins stage by stage (collect, validate, extract, integrate),
stops at the first stage with a failure, and returns every failure of that stage with the
plug-in's label and its message on one line.

For tests of kills: ``$MONALISA_PUBLISH_PAUSE=STEP`` makes a publish print
``monalisa publish: paused at STEP`` on stderr and sleep at that step (``staged``: review media
made, nothing reserved; ``reserved``: the number reserved, the version folder empty; ``filled``:
the version complete under its temporary name; ``renamed``: in place, the reservation not yet
removed).
"""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from monalisa.errors import InputError, MonalisaError
from monalisa.nodes.frames import sequence_files  # {frame: file} on disk, for the plug-ins

log = logging.getLogger(__name__)

PLUGIN_DIR = Path(__file__).with_name("pyblish")
REQUEST_KEY = "monalisa.publish"
ENV_REQUEST = "MONALISA_PUBLISH"
RENDER_FAMILY = "monalisa.render"
MODEL_FAMILY = "monalisa.model"
_VERSION = re.compile(r"^\.?v(\d{3,})(?:$|\.)")
STAGING = "monalisa-publish"  # the staging folder's name in the temp dir: .monalisa-publish.~PID@HOST~XXXX.tmp
ENV_PAUSE = "MONALISA_PUBLISH_PAUSE"
MAX_FPS = 1000.0


class PublishRequestError(InputError):
    """A publish request that names missing files or an unusable folder."""


@dataclass
class PublishRequest:
    render: str  # frame pattern of the rendered sequence
    still: str
    root: str  # publish root; versions go to ROOT/NAME/vNNN
    name: str = ""  # default: the render's name before its frame number
    frames: str = ""  # default: the track's frames, else the frames found on disk
    track: str = ""
    model: str = ""  # exported model folder; default: the bundled default model
    identity: str = ""
    fps: float | None = None  # preview movie rate; None: the render's (its frames' monalisa:fps), else 24
    comment: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> "PublishRequest":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in dict(data).items() if k in known})


def default_model_dir() -> Path:
    """The ONNX folder of the bundled model a render uses by default (``nodes.models.DEFAULT_MODEL``)."""
    from monalisa.nodes.models import default_model_dir as bundled

    return bundled()


def checked_request(req: PublishRequest) -> PublishRequest:
    """Absolute paths, inputs checked to exist (one-line PublishRequestError otherwise)."""
    from monalisa.plugin.core import HostInputError, format_frames, parse_frames, pattern_for

    r = PublishRequest.from_dict(req.to_dict())

    def need(value, what, fix):
        if not value:
            raise PublishRequestError(f"no {what} given; {fix}")
        p = Path(os.path.expanduser(value)).absolute()
        if not p.exists():
            raise PublishRequestError(f"{what} {p} does not exist; {fix}")
        return str(p)

    r.still = need(r.still, "still", "give the portrait the render animated (--still)")
    image_size(r.still)  # readable as an image, before any plug-in runs
    if not r.render:
        raise PublishRequestError("no render given; give the rendered frames' pattern (--render shot.####.exr)")
    try:
        r.render = str(Path(os.path.expanduser(pattern_for(r.render, "hash"))).absolute())
        r.frames = format_frames(parse_frames(r.frames)) if r.frames else ""
    except HostInputError as exc:
        raise PublishRequestError(str(exc)) from None
    if r.track:
        r.track = need(r.track, "track", "give the track file the render used (--track)")
    r.model = need(r.model, "model folder", "give the exported model folder the render used (--model)") \
        if r.model else str(default_model_dir())
    if not Path(r.model).is_dir():
        raise PublishRequestError(f"model folder {r.model} does not exist; give the exported model folder the render used (--model)")
    if r.identity:
        r.identity = need(r.identity, "identity", "give the baked identity .onnx the render used (--identity)")
    if r.fps not in (None, ""):
        try:
            fps = float(r.fps)
        except (TypeError, ValueError):
            fps = math.nan
        if not 0 < fps <= MAX_FPS:  # also refuses nan
            raise PublishRequestError(f"frame rate {r.fps!r} must be above 0 and at most {MAX_FPS:g} "
                                      "frames per second (--fps)")
        r.fps = fps
    else:
        r.fps = None
    if not r.root:
        raise PublishRequestError("no publish root given (--to FOLDER)")
    r.root = str(Path(os.path.expanduser(r.root)).absolute())
    _check_root(Path(r.root))
    r.name = r.name or Path(r.render).name.split(".")[0] or Path(r.still).stem
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", r.name) or r.name.startswith("."):
        raise PublishRequestError(f"publish name {r.name!r} must be letters, digits, '_', '-' or '.' (--name)")
    return r


def _check_root(root: Path) -> None:
    """PublishRequestError unless versions can be written below ``root`` (created if missing)."""
    base = root
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise PublishRequestError(f"publish root {root}: {base} is a file, not a folder; choose a folder (--to)")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise PublishRequestError(f"publish root {root}: cannot write in {base} ({exc.strerror or exc}); "
                                  "choose a writable folder (--to)") from None


def one_line(text) -> str:
    """``text`` on one line: its non-empty lines joined with "; " (OIIO errors span several)."""
    return "; ".join(ln.strip() for ln in str(text).splitlines() if ln.strip())


# ---------------------------------------------------------------- helpers the plug-ins share

def request_from(context) -> PublishRequest | None:
    data = context.data.get(REQUEST_KEY)
    if data is None and os.environ.get(ENV_REQUEST):
        with open(os.environ[ENV_REQUEST], encoding="utf-8") as f:
            data = json.load(f)
    return None if data is None else PublishRequest.from_dict(data)


def expected_frames(req: PublishRequest) -> list:
    """The frames the publish must hold: --frames, else the track's, else first..last on disk."""
    from monalisa.plugin.core import parse_frames

    if req.frames:
        return parse_frames(req.frames)
    if req.track:
        from monalisa.nodes import trackfile

        return [int(f) for f in trackfile.load(req.track).frames]
    on_disk = sequence_files(req.render)
    return list(range(min(on_disk), max(on_disk) + 1)) if on_disk else []


def image_size(path) -> tuple:
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise PublishRequestError(f"{path}: cannot be read as an image ({one_line(oiio.geterror())})")
    try:
        spec = inp.spec()
        return spec.width, spec.height
    finally:
        inp.close()


def headers(instance) -> dict:
    """{frame: header dict} of the readable, non-empty frames of a render instance (cached).
    Missing, empty and unreadable frames are left out: other validators report them."""
    if "headers" not in instance.data:
        from monalisa.nodes.writer import read_header

        out = {}
        for frame, path in instance.data["files"].items():
            try:
                if os.path.getsize(path) == 0:
                    continue
            except OSError:
                continue
            header = read_header(path)
            if header is not None:
                out[frame] = header
        instance.data["headers"] = out
    return instance.data["headers"]


DEFAULT_FPS = 24.0  # a render whose frames do not say their rate (rendered before monalisa:fps, or a CSV track)


def render_fps(instance) -> float:
    """The render's frame rate: the ``monalisa:fps`` its frames record (the plate's), else 24."""
    for _, header in sorted(headers(instance).items()):
        rate = header.get("monalisa:fps")
        if isinstance(rate, (int, float)) and 0 < rate <= MAX_FPS:
            return float(rate)
    return DEFAULT_FPS


def frame_list(frames) -> str:
    """A short list for messages: "1003" / "1003, 1004 and 3 more"."""
    frames = list(frames)
    head = ", ".join(str(f) for f in frames[:3])
    return head if len(frames) <= 3 else f"{head} and {len(frames) - 3} more"


def sha256(path) -> str:
    from monalisa.files import sha256_file

    return sha256_file(path)


# ---------------------------------------------------------------- versions

def version_numbers(folder) -> list:
    """Every version number present in ``folder``: vNNN entries (complete or not), our reservations
    and temporaries; the next publish takes one more than the largest."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for e in folder.iterdir() if (m := _VERSION.match(e.name)))


def incomplete_versions(folder) -> list:
    """vNNN folders without a publish.json: half-written by something else; never reused."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(e.name for e in folder.iterdir()
                  if re.fullmatch(r"v\d{3,}", e.name) and not (e / "publish.json").is_file())


def _reservation(folder: Path, number: int) -> Path:
    return folder / f".v{number:03d}.reserved"


def _reserve(folder: Path, number: int, tmp: Path) -> Path | None:
    """Reserve ``number``: a link ``.vNNN.reserved`` -> our temporary folder, made atomically
    (exactly one process can make it). None when the number is taken."""
    link = _reservation(folder, number)
    try:
        os.symlink(tmp.name, link)
    except FileExistsError:
        return None
    return link


def clean_interrupted(parent) -> list:
    """Remove what killed publishes of ``parent`` (ROOT/NAME) left: their temporary version folders,
    their reservations and their staging folders in the temp dir (pid-tagged, process gone; a
    live publish's are left alone). Returns the paths removed."""
    from monalisa.files import remove_stale_temps

    parent = Path(parent)
    removed = [*remove_stale_temps(tempfile.gettempdir(), STAGING), *remove_stale_temps(parent)]
    if parent.is_dir():
        for entry in sorted(parent.iterdir()):
            # a reservation whose temporary folder is gone: its publish was killed, or has just renamed
            if re.fullmatch(r"\.v\d{3,}\.reserved", entry.name) and entry.is_symlink() and not entry.exists():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def pause(step: str) -> None:
    """Sleep here when $MONALISA_PUBLISH_PAUSE names ``step`` (for tests that kill a publish)."""
    if os.environ.get(ENV_PAUSE) == step:
        print(f"monalisa publish: paused at {step}", file=sys.stderr, flush=True)
        time.sleep(3600)


def _place(src, dst) -> None:
    """Hard-link a finished file into the publish (same disk), else copy it."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fill(tmp: Path, context, number: int) -> None:
    """Write the version's files into ``tmp``: render/, models/, review/, publish.json."""
    from monalisa import __version__

    req = request_from(context)
    files = {}
    manifest = {"format": "monalisa.publish", "version": number, "name": req.name, "user": getpass.getuser(),
                "monalisa_version": __version__, "comment": req.comment, "request": req.to_dict(),
                "files": files}
    for instance in context:
        family = instance.data.get("family")
        if family == RENDER_FAMILY:
            (tmp / "render").mkdir(exist_ok=True)
            for src in instance.data["files"].values():
                dst = tmp / "render" / Path(src).name
                _place(src, dst)
                files[f"render/{dst.name}"] = sha256(dst)
            manifest["frames"] = instance.data["frames"]
            manifest["provenance"] = instance.data.get("provenance", {})
            for src in instance.data.get("review", {}).values():
                (tmp / "review").mkdir(exist_ok=True)
                dst = tmp / "review" / Path(src).name
                shutil.copy2(src, dst)
                files[f"review/{dst.name}"] = sha256(dst)
        elif family == MODEL_FAMILY:
            (tmp / "models").mkdir(exist_ok=True)
            src = instance.data["path"]
            dst = tmp / "models" / Path(src).name
            _place(src, dst)
            files[f"models/{dst.name}"] = instance.data["sha256"]
    (tmp / "publish.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


class _Taken(Exception):
    """The version number was reserved by another publish first."""


def integrate(context) -> Path:
    """Write ROOT/NAME/vNNN atomically from the context's instances; returns the version folder."""
    from monalisa.files import atomic_dir

    req = request_from(context)
    parent = Path(req.root) / req.name
    for name in incomplete_versions(parent):
        log.warning("%s/%s has no publish.json (half-written?); it is left alone and not reused", parent, name)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        number = max(version_numbers(parent), default=0) + 1
        final, link = parent / f"v{number:03d}", None
        try:
            # created by rename, never replacing: the reservation keeps other publishes off this number
            with atomic_dir(final, replace=False) as tmp:
                link = _reserve(parent, number, tmp)
                if link is None:
                    raise _Taken
                pause("reserved")
                _fill(tmp, context, number)
                pause("filled")
        except _Taken:
            continue
        else:
            pause("renamed")
            return final
        finally:
            if link is not None:
                link.unlink(missing_ok=True)


# ---------------------------------------------------------------- driver

@dataclass
class Failure:
    plugin: str
    instance: str
    message: str
    order: float

    @property
    def stage(self) -> str:
        return "validation" if 1.0 <= self.order < 2.0 else "collection" if self.order < 1.0 else "extraction" \
            if self.order < 3.0 else "integration"

    def line(self) -> str:
        where = f" [{self.instance}]" if self.instance else ""
        return f"{self.plugin}{where}: {self.message}"


@dataclass
class PublishResult:
    failures: list
    version_dir: Path | None
    plugins: list
    instances: list
    cleaned: list = field(default_factory=list)  # what interrupted publishes left, removed first

    @property
    def ok(self) -> bool:
        return not self.failures and self.version_dir is not None


@contextlib.contextmanager
def _quiet_pyblish():
    """pyblish prints each failure's traceback (its own stream handler, a print and log.exception),
    and its plug-ins log at INFO; the driver reports failures itself, one line each. Unless the
    root logger is at DEBUG (``monalisa --verbose``), only warnings reach the log's handlers."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    root = logging.getLogger("pyblish")
    handlers, levels = root.handlers[:], {}
    root.handlers[:] = []
    for name in ("pyblish.plugin", "pyblish.logic", "pyblish.util"):
        levels[name] = logging.getLogger(name).level
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    # pyblish sets the root logger to DEBUG while a plug-in runs: raise the handlers instead
    shown = {h: h.level for h in logging.getLogger().handlers}
    for h in shown:
        h.setLevel(max(h.level, logging.DEBUG if verbose else logging.WARNING))
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            yield
    finally:
        root.handlers[:] = handlers
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for h, level in shown.items():
            h.setLevel(level)
        if printed.getvalue().strip():
            log.debug("pyblish printed: %s", printed.getvalue().strip())


def plugin_paths(extra=()) -> list:
    """monalisa's plug-in folder, then ``extra``, then $PYBLISHPLUGINPATH's folders."""
    env = [p for p in os.environ.get("PYBLISHPLUGINPATH", "").split(os.pathsep) if p]
    out = []
    for p in [str(PLUGIN_DIR), *map(str, extra), *env]:
        if os.path.normpath(p) not in [os.path.normpath(q) for q in out]:
            out.append(p)
    return out


def discover(extra=()) -> list:
    import pyblish.api

    return pyblish.api.discover(paths=plugin_paths(extra))


def _failures(context) -> list:
    out = []
    for r in context.data.get("results", []):
        if r["success"] or r["error"] is None:
            continue
        plugin = r["plugin"]
        out.append(Failure(getattr(plugin, "label", None) or plugin.__name__,
                           r["instance"].name if r["instance"] is not None else "",
                           one_line(r["error"]) or type(r["error"]).__name__, float(plugin.order)))
    return out


def run_publish(req: PublishRequest, extra_paths=()) -> PublishResult:
    """Run every discovered plug-in on ``req``, stage by stage: a stage with a failure stops the
    publish there (nothing is integrated); its failures are returned, never raised."""
    try:
        import pyblish.api
        import pyblish.util
    except ImportError:
        raise MonalisaError("pyblish-base is not installed; `pip install pyblish-base`") from None
    from monalisa.files import temp_dir

    req = checked_request(req)
    cleaned = clean_interrupted(Path(req.root) / req.name)
    plugins = discover(extra_paths)
    context = pyblish.api.Context()
    context.data[REQUEST_KEY] = req.to_dict()
    staging = temp_dir(tempfile.gettempdir(), STAGING)
    context.data["stagingDir"] = str(staging)
    failures = []
    try:
        with _quiet_pyblish():
            for stage in (pyblish.util.collect, pyblish.util.validate, pyblish.util.extract, pyblish.util.integrate):
                if stage is pyblish.util.integrate:
                    pause("staged")
                stage(context=context, plugins=plugins)
                failures = _failures(context)
                if failures:
                    break
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    version = context.data.get("monalisa.versionDir")
    return PublishResult(failures, Path(version) if version else None, plugins, [i.name for i in context], cleaned)
