"""Follow one face through a plate: pick it, track it frame to frame, fill frames where it is lost."""

import logging
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from monalisa.errors import ConfigError, NoFaceError
from monalisa.nodes.detect import check_upsample, create_detector, largest_face
from monalisa.nodes.media import iter_frames, probe
from monalisa.nodes.moviecheck import decode_error
from monalisa.nodes.trackfile import Track
from monalisa.nodes.trackschema import MAX_FPS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackSummary:
    frames: int
    detected: int
    filled: int


def parse_face(spec):
    """'largest' | 'INDEX' | 'X,Y' -> ('largest', None) | ('index', i) | ('point', (x, y))."""
    spec = str(spec).strip()
    if spec == "largest":
        return "largest", None
    try:
        if "," in spec:
            x, y = (float(v) for v in spec.split(","))
            if not (np.isfinite(x) and np.isfinite(y)):
                raise ValueError
            return "point", (x, y)
        index = int(spec)
    except ValueError:
        raise ConfigError(f"--face {spec!r}: use largest, an INDEX (0, 1, ... left to right) or X,Y "
                          "(a point on the face in the first frame)") from None
    if index < 0:
        raise ConfigError(f"--face {index}: an index counts faces from 0, left to right")
    return "index", index


def _centre(face):
    x0, y0, x1, y1 = face.box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2])


def choose_face(faces, choice):
    """Pick the face asked for on the first frame (faces ordered left to right for INDEX)."""
    kind, value = choice
    if kind == "largest":
        return largest_face(faces)
    if kind == "index":
        ordered = sorted(faces, key=lambda f: _centre(f)[0])
        if not 0 <= value < len(ordered):
            raise NoFaceError(f"--face {value}: only {len(ordered)} faces found (indices 0-{len(ordered) - 1}, left to right)")
        return ordered[value]
    point = np.asarray(value)
    near = [f for f in faces if _near(f, point)]
    if not near:
        boxes = ", ".join("{:.0f},{:.0f}-{:.0f},{:.0f}".format(*f.box) for f in sorted(faces, key=lambda f: _centre(f)[0]))
        raise NoFaceError(f"--face {value[0]:g},{value[1]:g}: no face there in the first frame (faces found at "
                          f"x0,y0-x1,y1: {boxes}); give a pixel on one of them")
    return min(near, key=lambda f: np.linalg.norm(_centre(f) - point))


def _near(face, point) -> bool:
    """Whether ``point`` is on ``face``: inside its box grown by half its size each way (the detector's
    box is tight: chin, hair and ears are outside it)."""
    x0, y0, x1, y1 = face.box
    mx, my = (x1 - x0) / 2, (y1 - y0) / 2
    return x0 - mx <= point[0] <= x1 + mx and y0 - my <= point[1] <= y1 + my


def follow(faces, previous):
    """The face nearest the previous one, if within one face width; else None (lost)."""
    if not faces:
        return None
    prev_c = previous.points.mean(axis=0)
    width = previous.box[2] - previous.box[0]
    best = min(faces, key=lambda f: np.linalg.norm(f.points.mean(axis=0) - prev_c))
    return best if np.linalg.norm(best.points.mean(axis=0) - prev_c) < width else None


def fill(frames, points, found, method="interpolate"):
    """Fill (N, 68, 2) points where ``found`` is False: hold the last known or interpolate linearly."""
    pts = np.array(points, np.float32)
    idx = np.nonzero(found)[0]
    if len(idx) == 0:
        raise NoFaceError("no face was found on any frame; check the plate or try --upsample 2")
    for i in np.nonzero(~found)[0]:
        before, after = idx[idx < i], idx[idx > i]
        if method == "interpolate" and len(before) and len(after):
            a, b = before[-1], after[0]
            w = (frames[i] - frames[a]) / (frames[b] - frames[a])
            pts[i] = (1 - w) * pts[a] + w * pts[b]
        else:
            pts[i] = pts[before[-1]] if len(before) else pts[after[0]]
    return pts


def _frames(plate, start, end, start_frame):
    """iter_frames, with a frame that fails to decode part-way as one MediaError line."""
    import av

    last = None
    try:
        for n, rgb in iter_frames(plate, start, end, start_frame=start_frame):
            last = n
            yield n, rgb
    except av.error.FFmpegError as exc:
        raise decode_error(plate, last + 1 if last is not None else (start or 0), exc) from None


def track_plate(plate, backend="dlib", face="largest", start=None, end=None, fill_method="interpolate",
                detector=None, progress=True, start_frame=None, fps=None, **options):
    """Detect and follow one face in ``plate``; return the Track (frames where the face was lost
    are filled and flagged). Frame numbers are the plate's as a compositor's Read numbers them: a
    sequence's own, a movie's from ``start_frame`` (default 0); ``start``/``end`` are such numbers.
    The track records ``fps``, else the plate's rate (a movie's; a sequence's from its header, when it
    records one; else None). Every argument is
    checked before the first frame is decoded."""
    choice = parse_face(face)
    check_upsample(options.get("upsample", 1))
    if start is not None and end is not None and end < start:
        raise ConfigError(f"--start {start} is after --end {end}; give start <= end")
    if fps is not None and not 0 < fps <= MAX_FPS:
        raise ConfigError(f"--fps {fps}: the plate's frame rate must be above 0 and at most {MAX_FPS:g}")
    info = probe(plate, start_frame)  # also refuses a movie cut short
    detector = detector or create_detector(backend, **options)
    lo, hi = max(info.first, start if start is not None else info.first), min(info.last, end if end is not None else info.last)
    frames, pts, conf, found = [], [], [], []
    current = None
    bar = None  # shown from the second frame on: a --face that finds nothing fails in one line, without a bar
    for n, rgb in _frames(plate, start, end, start_frame):
        if bar is None and frames:
            bar = tqdm(desc="track", unit="frame", total=max(0, hi - lo + 1), initial=1, disable=not progress)
        elif bar is not None:
            bar.update(1)
        faces = detector.detect(rgb)
        picked = choose_face(faces, choice) if current is None and faces else (follow(faces, current) if faces else None)
        frames.append(n)
        if picked is None:
            pts.append(np.zeros((68, 2), np.float32))
            conf.append(np.nan)
            found.append(False)
        else:
            current = picked
            pts.append(picked.points)
            conf.append(picked.score)
            found.append(True)
    if bar is not None:
        bar.update(1)
        bar.close()
    if not frames:
        raise NoFaceError(f"{plate}: no frames in the requested range")
    frames = np.array(frames, np.int64)
    found = np.array(found, bool)
    points = fill(frames, np.stack(pts), found, fill_method)
    lost = int((~found).sum())
    if lost:
        log.warning("%s: face lost on %d of %d frames (filled by %s)", plate, lost, len(frames), fill_method)
    return Track(frames, points, (info.width, info.height), np.array(conf, np.float32), ~found,
                 {"source": str(plate), "backend": backend, "face": str(face), "fill": fill_method},
                 fps=_rate(fps if fps is not None else info.fps))


def _rate(fps):
    """A frame rate the track file can hold, or None (unknown: a sequence, a movie with no sane rate)."""
    return float(fps) if fps and 0 < fps <= MAX_FPS else None


def summarise(track):
    return TrackSummary(len(track.frames), int((~track.filled).sum()), int(track.filled.sum()))
