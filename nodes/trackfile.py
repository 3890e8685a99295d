"""Track files: versioned JSON of per-frame 68-point landmarks in plate pixels, plus CSV import.

JSON (format "monalisa.track", version 1)::

    {"format": "monalisa.track", "version": 1,
     "image_size": [width, height],
     "provenance": {"source": "...", "backend": "dlib", ...},
     "frames": [{"frame": 1001, "points": [[x, y] * 68], "confidence": 0.9 | null,
                 "filled": false}, ...]}

CSV import: one row per frame, a ``frame`` column then ``x0,y0,...,x67,y67`` (header names
free-form; the first column is the frame number, the next 136 columns x/y pairs in point order).
"""

import csv
import json
from dataclasses import dataclass, field

import numpy as np

from monalisa.errors import TrackFileError
from monalisa.files import write_json
from monalisa.nodes.landmarks import NUM_POINTS

FORMAT = "monalisa.track"
VERSION = 1
#: coordinates further than this fraction of the image size outside it are rejected
OUTSIDE_TOLERANCE = 0.5


@dataclass
class Track:
    frames: np.ndarray  # int64 (N,)
    points: np.ndarray  # float32 (N, 68, 2)
    image_size: tuple  # (width, height)
    confidence: np.ndarray = None  # float32 (N,) or None; NaN where unknown
    filled: np.ndarray = None  # bool (N,): frame filled by hold/interpolation
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.frames)
        if self.confidence is None:
            self.confidence = np.full(n, np.nan, np.float32)
        if self.filled is None:
            self.filled = np.zeros(n, bool)


def validate(track, where="track", frame_range=None):
    """Raise TrackFileError for a malformed track; return it unchanged otherwise."""
    frames = np.asarray(track.frames)
    pts = np.asarray(track.points)
    if pts.ndim != 3 or pts.shape[1:] != (NUM_POINTS, 2) or len(pts) != len(frames):
        raise TrackFileError(f"{where}: expected {NUM_POINTS} (x, y) points for each of {len(frames)} frames, got array of shape {list(pts.shape)}")
    if len(frames) == 0:
        raise TrackFileError(f"{where}: the track has no frames")
    if (frames < 0).any():
        raise TrackFileError(f"{where}: frame {int(frames[frames < 0][0])} is negative; frame numbers start at 0")
    bad = ~np.isfinite(pts).all(axis=(1, 2))
    if bad.any():
        raise TrackFileError(f"{where}: frame {int(frames[bad][0])} has NaN/inf coordinates; fix or remove it")
    d = np.diff(frames)
    if (d == 0).any():
        raise TrackFileError(f"{where}: frame {int(frames[1:][d == 0][0])} appears twice; keep one entry per frame")
    if (d < 0).any():
        raise TrackFileError(f"{where}: frames are not in increasing order (at frame {int(frames[1:][d < 0][0])}); sort them")
    if frame_range is not None:
        lo, hi = frame_range
        out = (frames < lo) | (frames > hi)
        if out.any():
            raise TrackFileError(f"{where}: frame {int(frames[out][0])} is outside the plate's range {lo}-{hi}; check the plate or frame offset")
    w, h = track.image_size
    if w <= 0 or h <= 0:
        raise TrackFileError(f"{where}: image_size must be positive [width, height], got {list(track.image_size)}")
    tol_x, tol_y = OUTSIDE_TOLERANCE * w, OUTSIDE_TOLERANCE * h
    far = ((pts[..., 0] < -tol_x) | (pts[..., 0] > w + tol_x) | (pts[..., 1] < -tol_y) | (pts[..., 1] > h + tol_y)).any(axis=1)
    if far.any():
        raise TrackFileError(f"{where}: frame {int(frames[far][0])} has points far outside the {w}x{h} image; check image_size and units (pixels)")
    return track


def to_dict(track):
    frames = []
    for i, n in enumerate(track.frames):
        c = float(track.confidence[i])
        frames.append({
            "frame": int(n),
            "points": np.round(track.points[i].astype(np.float64), 4).tolist(),
            "confidence": None if not np.isfinite(c) else c,
            "filled": bool(track.filled[i]),
        })
    return {"format": FORMAT, "version": VERSION, "image_size": [int(v) for v in track.image_size],
            "provenance": dict(track.provenance), "frames": frames}


def from_dict(data, where="track"):
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TrackFileError(f"{where}: not a monalisa track file (missing \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise TrackFileError(f"{where}: track version {data.get('version')!r} is not supported; this monalisa reads version {VERSION}")
    try:
        entries = data["frames"]
        frames = np.array([e["frame"] for e in entries], np.int64)
        raw = [e["points"] for e in entries]
        conf = np.array([np.nan if e.get("confidence") is None else e["confidence"] for e in entries], np.float32)
        filled = np.array([bool(e.get("filled", False)) for e in entries], bool)
        size = tuple(int(v) for v in data["image_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TrackFileError(f"{where}: malformed track ({exc}); see docs/landmarks.md for the format") from exc
    pts = np.stack([_frame_points(p, int(n), where) for n, p in zip(frames, raw)]) if len(frames) else \
        np.zeros((0, NUM_POINTS, 2), np.float32)
    return validate(Track(frames, pts, size, conf, filled, dict(data.get("provenance", {}))), where)


def _frame_points(points, frame: int, where: str) -> np.ndarray:
    """One frame's "points" as float32 (68, 2); TrackFileError naming the frame otherwise."""
    expected = f"expected {NUM_POINTS} [x, y] pairs of numbers"
    if not isinstance(points, list) or not all(isinstance(p, list) for p in points):
        raise TrackFileError(f"{where}: frame {frame}: \"points\" is {type(points).__name__} {str(points)[:40]}, {expected}")
    sizes = sorted({len(p) for p in points})
    if len(points) != NUM_POINTS or sizes != [2]:
        raise TrackFileError(f"{where}: frame {frame} has {len(points)} points of {'/'.join(map(str, sizes)) or 0} "
                             f"values, {expected}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for p in points for v in p):
        raise TrackFileError(f"{where}: frame {frame} has a coordinate that is not a number; {expected}")
    return np.asarray(points, dtype=np.float32)


def save(track, path):
    validate(track, str(path))
    write_json(path, to_dict(track))


def load(path, frame_range=None):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as exc:
        raise TrackFileError(f"{path}: track file not found; check the path") from exc
    except IsADirectoryError:
        raise TrackFileError(f"{path}: is a folder; give the track file (JSON) written by monalisa track") from None
    except PermissionError:
        raise TrackFileError(f"{path}: not readable (permission denied); check the file's permissions") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrackFileError(f"{path}: not valid JSON ({exc}); re-export the track") from exc
    track = from_dict(data, str(path))
    return validate(track, str(path), frame_range)


def import_csv(path, image_size, source=None):
    """Read a tracker CSV (frame, x0, y0, ..., x67, y67 per row; optional header)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except FileNotFoundError as exc:
        raise TrackFileError(f"{path}: CSV not found; check the path") from exc
    except IsADirectoryError:
        raise TrackFileError(f"{path}: is a folder; give the tracker's CSV file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TrackFileError(f"{path}: not a text CSV ({exc.__class__.__name__}); export the track as CSV text "
                             f"(frame, x0, y0, ..., x{NUM_POINTS - 1}, y{NUM_POINTS - 1})") from None
    if rows and not _is_number(rows[0][0]):
        rows = rows[1:]
    frames, pts = [], []
    for line, r in enumerate(rows, start=1):
        if len(r) != 1 + 2 * NUM_POINTS:
            raise TrackFileError(f"{path}: row {line} has {len(r) - 1} coordinate columns, expected {2 * NUM_POINTS} (x, y for {NUM_POINTS} points)")
        try:
            frames.append(int(float(r[0])))
            pts.append([float(v) for v in r[1:]])
        except ValueError as exc:
            raise TrackFileError(f"{path}: row {line} has a non-numeric value ({exc})") from exc
    track = Track(np.array(frames, np.int64), np.array(pts, np.float32).reshape(-1, NUM_POINTS, 2),
                  tuple(image_size), provenance={"source": str(source or path), "imported_from": "csv"})
    return validate(track, str(path))


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False
