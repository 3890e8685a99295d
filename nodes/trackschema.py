"""The one reader of track files: a monalisa track (JSON) or a tracker's CSV, checked field by field
into plain Python values. Standard library only, so the hosts' core (plugin/core.py, loaded without
monalisa's dependencies) reads tracks with this very code; ``monalisa.nodes.trackfile`` turns what
it returns into arrays and checks their meaning (order, duplicates, points inside the image).

Every malformed shape is one :class:`TrackFileError` line naming the file, the frame (or the entry,
when its frame number is the bad part) and the field. The format is in ``docs/landmarks.md``.
"""
from __future__ import annotations

import csv
import json
import math
import operator
from dataclasses import dataclass, field

try:
    from monalisa.errors import TrackFileError
except ImportError:  # loaded by path in a host's own Python, which has no monalisa
    class TrackFileError(ValueError):
        """A landmark track file that is malformed."""

        exit_code = 2

__all__ = ["FORMAT", "VERSION", "READS", "NUM_POINTS", "TrackData", "TrackFileError", "check", "read", "read_csv",
           "is_track"]

FORMAT = "monalisa.track"
#: the version written; 2 added "fps" (the plate's frame rate); version 1 files still read (fps unknown)
VERSION = 2
READS = (1, 2)
NUM_POINTS = 68  # iBUG-68, as monalisa.nodes.landmarks
#: frame numbers have at most 9 digits (as monalisa.nodes.frames)
MAX_FRAME = 10 ** 9 - 1
#: the largest image side, in pixels
MAX_SIZE = 1 << 20
#: no pixel coordinate or confidence is this large (and float32 holds every one below it)
MAX_VALUE = 1e9
MAX_FPS = 1000.0
_DOC = "see docs/landmarks.md for the format"


@dataclass
class TrackData:
    """A track as plain values, every field checked."""

    frames: list  # int
    points: list  # per frame: NUM_POINTS [x, y] floats
    image_size: tuple  # (width, height)
    confidence: list  # float or None per frame
    filled: list  # bool per frame
    provenance: dict = field(default_factory=dict)
    fps: float | None = None  # the plate's frame rate; None when unknown (version 1, a CSV)
    version: int = VERSION


def _short(value, n=40) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if value is None:
        return "null"
    text = repr(value)
    text = text if len(text) <= n else text[: n - 3] + "..."
    return f"{type(value).__name__} {text}"


def _whole(value):
    """An int (not a bool) from an int-like value, or None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _number(value):
    """A finite float of sane size, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) and abs(value) < MAX_VALUE else None


def _frame_number(value):
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    value = _whole(value)
    return None if value is None or abs(value) > MAX_FRAME else value


def _image_size(value, where):
    sides = [_whole(v) for v in value] if isinstance(value, (list, tuple)) else []
    if len(sides) != 2 or not all(v is not None and 0 < v <= MAX_SIZE for v in sides):
        raise TrackFileError(f"{where}: \"image_size\" is {_short(value)}; expected [width, height], two whole "
                             f"numbers of pixels from 1 to {MAX_SIZE}")
    return sides[0], sides[1]


def _points(value, frame, where, at="\"points\"") -> list:
    expected = f"expected {NUM_POINTS} [x, y] pairs of numbers"
    if not isinstance(value, list) or not all(isinstance(p, list) for p in value):
        raise TrackFileError(f"{where}: frame {frame}: {at} is {_short(value)}, {expected}")
    sizes = sorted({len(p) for p in value})
    if len(value) != NUM_POINTS or sizes != [2]:
        raise TrackFileError(f"{where}: frame {frame} has {len(value)} points of {'/'.join(map(str, sizes)) or 0} "
                             f"values, {expected}")
    out = []
    for i, (x, y) in enumerate(value):
        fx, fy = _number(x), _number(y)
        if fx is None or fy is None:
            bad = x if fx is None else y
            kind = "NaN/inf" if isinstance(bad, float) and not math.isfinite(bad) else \
                "a coordinate that is not a number" if isinstance(bad, bool) or not isinstance(bad, (int, float)) \
                else "a coordinate out of range"
            raise TrackFileError(f"{where}: frame {frame} has {kind} ({_short(bad, 24)}) at {at}[{i}]; {expected} "
                                 "in pixels")
        out.append([fx, fy])
    return out


def check(data, where="track") -> TrackData:
    """The parsed JSON of a track file, checked; TrackFileError (one line) otherwise."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TrackFileError(f"{where}: not a monalisa track file (missing \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if isinstance(version, bool) or version not in READS:
        shown = version if _whole(version) is not None and abs(version) < 10 ** 6 else _short(version)
        raise TrackFileError(f"{where}: track version {shown} is not supported; this monalisa reads versions "
                             f"{', '.join(map(str, READS))}")
    size = _image_size(data.get("image_size"), where)
    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict):
        raise TrackFileError(f"{where}: \"provenance\" is {_short(provenance)}; expected an object "
                             "({\"source\": ..., ...}) or none; " + _DOC)
    fps = data.get("fps")
    if fps is not None:  # null: not known (a CSV import, a track made from a version 1 file)
        rate = _number(fps)
        if rate is None or not 0 < rate <= MAX_FPS:
            raise TrackFileError(f"{where}: \"fps\" is {_short(fps)}; expected the plate's frame rate, a number "
                                 f"above 0 and at most {MAX_FPS:g}")
        fps = rate
    entries = data.get("frames")
    if not isinstance(entries, list):
        raise TrackFileError(f"{where}: \"frames\" is {_short(entries)}; expected a list of frames; {_DOC}")
    out = TrackData([], [], size, [], [], provenance, fps, int(version))
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise TrackFileError(f"{where}: frames[{i}] is {_short(e)}; expected an object with \"frame\" and "
                                 "\"points\"")
        frame = _frame_number(e.get("frame"))
        if frame is None:
            raise TrackFileError(f"{where}: frames[{i}]: \"frame\" is {_short(e.get('frame'))}; expected a whole "
                                 f"frame number of at most 9 digits")
        if "points" not in e:
            raise TrackFileError(f"{where}: frame {frame}: no \"points\"; expected {NUM_POINTS} [x, y] pairs")
        out.points.append(_points(e["points"], frame, where))
        c = e.get("confidence")
        if c is not None:
            c = _number(c)
            if c is None:
                raise TrackFileError(f"{where}: frame {frame}: \"confidence\" is {_short(e.get('confidence'))}; "
                                     "expected a finite number or null")
        filled = e.get("filled", False)
        if not isinstance(filled, bool):
            raise TrackFileError(f"{where}: frame {frame}: \"filled\" is {_short(filled)}; expected true or false")
        out.frames.append(frame)
        out.confidence.append(c)
        out.filled.append(filled)
    return out


def _open(path, what, fix, **kw):
    try:
        return open(path, encoding="utf-8", **kw)
    except FileNotFoundError:
        raise TrackFileError(f"{path}: {what} not found; check the path") from None
    except IsADirectoryError:
        raise TrackFileError(f"{path}: is a folder; give {fix}") from None
    except PermissionError:
        raise TrackFileError(f"{path}: not readable (permission denied); check the file's permissions") from None
    except OSError as exc:
        raise TrackFileError(f"{path}: cannot be read ({exc.strerror or exc}); give {fix}") from None


def read(path) -> TrackData:
    """Read and check a monalisa track file (JSON)."""
    f = _open(path, "track file", "the track file (JSON) written by monalisa track")
    try:
        with f:
            data = json.load(f)
    except RecursionError:
        raise TrackFileError(f"{path}: not a monalisa track file (its JSON is nested too deeply); re-export "
                             "the track") from None
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise TrackFileError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:120]}); re-export the "
                             "track") from None
    except OSError as exc:
        raise TrackFileError(f"{path}: cannot be read ({exc.strerror or exc}); check the file") from None
    return check(data, str(path))


def is_track(path) -> bool:
    """Whether ``path`` is a monalisa track file (one this reader reads)."""
    try:
        read(path)
    except TrackFileError:
        return False
    return True


def read_csv(path, image_size, source=None) -> TrackData:
    """Read a tracker CSV: one row per frame, the frame number then x0, y0, ..., x67, y67 (an optional
    header row; names free-form)."""
    where = str(path)
    size = _image_size(image_size, f"{where} (given size)")
    columns = 1 + 2 * NUM_POINTS
    fix = f"export the track as CSV text (frame, x0, y0, ..., x{NUM_POINTS - 1}, y{NUM_POINTS - 1})"
    f = _open(path, "CSV", "the tracker's CSV file", newline="")
    try:
        with f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:  # csv.Error: NUL bytes, fields over the size limit
        raise TrackFileError(f"{where}: not a text CSV ({exc.__class__.__name__}); {fix}") from None
    except OSError as exc:
        raise TrackFileError(f"{where}: cannot be read ({exc.strerror or exc}); check the file") from None
    if rows and _csv_number(rows[0][0]) is None:
        rows = rows[1:]  # a header
    out = TrackData([], [], size, [], [], {"source": str(source or path), "imported_from": "csv"}, None, VERSION)
    for line, r in enumerate(rows, start=1):
        if len(r) != columns:
            raise TrackFileError(f"{where}: row {line} has {len(r) - 1} coordinate columns, expected "
                                 f"{2 * NUM_POINTS} (x, y for {NUM_POINTS} points)")
        frame = _csv_number(r[0])
        frame = _frame_number(frame) if frame is not None else None
        if frame is None:
            raise TrackFileError(f"{where}: row {line}: the frame cell {_short(r[0].strip(), 24)} is not a whole "
                                 "frame number of at most 9 digits")
        values = [_csv_number(v) for v in r[1:]]
        pairs = [[values[2 * i], values[2 * i + 1]] for i in range(NUM_POINTS)]
        bad = next((i for i, v in enumerate(values) if v is None), None)
        if bad is not None:
            raise TrackFileError(f"{where}: row {line} (frame {frame}): column {bad + 2} holds "
                                 f"{_short(r[bad + 1].strip(), 24)}, not a number; {fix}")
        out.points.append(_points(pairs, frame, where, at=f"row {line} point"))
        out.frames.append(frame)
        out.confidence.append(None)
        out.filled.append(False)
    return out


def _csv_number(cell):
    """A CSV cell as an int or float (inf/nan kept for the checks to name), or None when not a number."""
    text = cell.strip()
    if len(text) > 40:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None
