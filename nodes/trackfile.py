"""Track files: versioned JSON of per-frame 68-point landmarks in plate pixels, plus CSV import.

JSON (format "monalisa.track", version 2; version 1, without "fps", still reads)::

    {"format": "monalisa.track", "version": 2,
     "image_size": [width, height], "fps": 25.0,
     "provenance": {"source": "...", "backend": "dlib", ...},
     "frames": [{"frame": 1001, "points": [[x, y] * 68], "confidence": 0.9 | null,
                 "filled": false}, ...]}

Frame numbers are the plate's as a compositor's Read numbers them: an image sequence's own, a
movie's from ``--start-frame`` (default 0). ``fps`` is the plate's frame rate (smoothing and the
preview movie use it). CSV import: one row per frame, a ``frame`` column then ``x0,y0,...,x67,y67``
(header names free-form). Files are read and checked field by field by ``monalisa.nodes.trackschema``
(the one reader, also the hosts'); :func:`validate` checks what the values mean.
"""

from dataclasses import dataclass, field

import numpy as np

from monalisa.errors import TrackFileError
from monalisa.files import write_json
from monalisa.nodes import trackschema
from monalisa.nodes.landmarks import NUM_POINTS
from monalisa.nodes.trackschema import FORMAT, MAX_FPS, VERSION, TrackData

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
    fps: float | None = None  # the plate's frame rate; None when unknown (a version 1 track, a CSV)

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
    if track.fps is not None and not 0 < track.fps <= MAX_FPS:
        raise TrackFileError(f"{where}: fps {track.fps} is not a frame rate above 0 and at most {MAX_FPS:g}")
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
            "fps": None if track.fps is None else float(track.fps), "provenance": dict(track.provenance),
            "frames": frames}


def _arrays(data: TrackData) -> Track:
    n = len(data.frames)
    points = np.asarray(data.points, np.float32).reshape(n, NUM_POINTS, 2)
    confidence = np.array([np.nan if c is None else c for c in data.confidence], np.float32)
    return Track(np.array(data.frames, np.int64), points, data.image_size, confidence, np.array(data.filled, bool),
                 dict(data.provenance), data.fps)


def from_dict(data, where="track"):
    """A Track from a track file's parsed JSON; TrackFileError (one line) when malformed."""
    return validate(_arrays(trackschema.check(data, where)), where)


def save(track, path):
    validate(track, str(path))
    write_json(path, to_dict(track))


def load(path, frame_range=None):
    """Read a track file (JSON, version 1 or 2); TrackFileError (one line) when malformed."""
    return validate(_arrays(trackschema.read(path)), str(path), frame_range)


def import_csv(path, image_size, source=None):
    """Read a tracker CSV (frame, x0, y0, ..., x67, y67 per row; optional header)."""
    return validate(_arrays(trackschema.read_csv(path, image_size, source)), str(path))
