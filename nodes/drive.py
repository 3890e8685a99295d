"""From a plate's track to the still's landmarks for every frame: smooth, retarget, check.

Everything is computed over the whole track at once, so rendering any sub-range of frames gives
exactly the frames a full render gives (the farm chunks a range; the neutral frame, the filter's
state and the next frame's points for motion vectors never depend on the chunk).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from monalisa.errors import ConfigError
from monalisa.nodes.landmarks import eye_opening, inter_ocular, mouth_opening, uncross_lips
from monalisa.nodes.retarget import retarget
from monalisa.nodes.smooth import Cutoffs, zero_phase

log = logging.getLogger(__name__)

MODES = ("relative", "absolute")
#: a driven face whose eye distance leaves [1/RANGE, RANGE] x the still's is not usable
SCALE_RANGE = 3.0
#: frame rate of a track that does not give one
DEFAULT_FPS = 24.0


@dataclass(frozen=True)
class Driving:
    frames: np.ndarray  # int64 (N,)
    points: np.ndarray  # float32 (N, 68, 2) in still pixels
    usable: np.ndarray  # bool (N,): False -> the frame is the untouched still, flagged
    reasons: dict  # frame -> why it is not usable
    neutral: int = 0  # the plate frame taken as the still's own face

    def index(self, frame: int) -> int:
        return int(np.searchsorted(self.frames, frame))

    def next_points(self, i: int) -> np.ndarray:
        """Points of the frame after row ``i`` (its own when it is the last or the next is unusable)."""
        j = i + 1
        if j < len(self.frames) and self.usable[j] and self.frames[j] == self.frames[i] + 1:
            return self.points[j]
        return self.points[i]


def _plate_usable(points, image_size):
    """Per frame: (usable, reason) from the plate's own points (lost-face markers, collapsed points)."""
    w, h = image_size
    usable, reasons = [], []
    for p in points:
        spread = float(np.ptp(p, axis=0).max())
        if not np.isfinite(p).all():
            usable.append(False), reasons.append("non-finite landmarks")
        elif spread < 2.0:
            usable.append(False), reasons.append("landmarks collapsed to one point (a lost face)")
        elif (p[:, 0] < -w).all() or (p[:, 0] > 2 * w).all() or (p[:, 1] < -h).all() or (p[:, 1] > 2 * h).all():
            usable.append(False), reasons.append("landmarks outside the plate")
        else:
            usable.append(True), reasons.append("")
    return np.array(usable, bool), reasons


def neutral_index(points, good) -> int:
    """The plate frame whose face is taken to be the still's: among the usable frames (``good``) whose
    eyes are at least as open as the track's median, the one with the most closed mouth (the earliest
    of equals). A still's mouth is closed and its eyes open; a performer who starts mid-word must not
    make the still's lips cross for the rest of the shot."""
    good = np.asarray(good)
    eyes = np.array([eye_opening(points[i]) for i in good])
    mouths = np.array([mouth_opening(points[i]) for i in good])
    candidates = np.nonzero(eyes >= np.median(eyes))[0]
    return int(good[candidates[np.argmin(mouths[candidates])]])


def drive(track, still_points, mode: str = "relative", smooth: bool = True, strength: float = 1.0,
          fps: float | None = None, neutral_frame: int | None = None) -> Driving:
    """The still's landmarks for every frame of ``track`` (a trackfile.Track).

    relative: the plate's expression and head motion relative to its neutral frame
    (:func:`neutral_index`: eyes open, mouth most closed), applied to the still's own landmarks scaled
    to its face; absolute: the plate's points mapped so its neutral frame lands on the still's face.
    ``neutral_frame`` (a frame number of the track) names the neutral frame instead. Inner lips that
    would cross are closed instead (``uncross_lips``). ``smooth`` runs the zero-phase filter
    (``nodes.smooth.zero_phase``) over the whole track at the track's frame rate (``fps`` overrides it;
    24 when neither says), skipped when the track says it is already smoothed; ``strength`` > 1
    smooths more (every cutoff divided by it).
    """
    if mode not in MODES:
        raise ConfigError(f"retarget mode {mode!r} is unknown; use {' or '.join(MODES)}")
    if not 0 < strength < float("inf"):
        raise ConfigError(f"smoothing strength must be a number above 0, got {strength}")
    points = np.asarray(track.points, np.float32)
    usable, reasons = _plate_usable(points, track.image_size)
    if not usable.any():
        from monalisa.errors import TrackFileError

        raise TrackFileError(f"{track.provenance.get('source', 'track')}: no frame has usable landmarks "
                             f"({reasons[0]}); re-track the plate")
    good = np.nonzero(usable)[0]
    if neutral_frame is None:  # chosen on the plate's own points: smoothing must not pick another frame
        row = neutral_index(points, good)
    else:
        rows = np.nonzero(np.asarray(track.frames) == int(neutral_frame))[0]
        if not len(rows) or not usable[rows[0]]:
            raise ConfigError(f"neutral frame {neutral_frame} is not a usable frame of the track "
                              f"({int(track.frames[0])}-{int(track.frames[-1])}); pick another")
        row = int(rows[0])
    if smooth and "smoothing" not in track.provenance:
        rate = float(fps or getattr(track, "fps", None) or track.provenance.get("fps") or DEFAULT_FPS)
        filled = points.copy()
        for i in np.nonzero(~usable)[0]:  # hold the nearest usable frame so the filter never sees junk
            filled[i] = points[good[np.argmin(np.abs(good - i))]]
        points = zero_phase(filled, rate, Cutoffs().scaled(strength))
    neutral = points[row]
    still = np.asarray(still_points, np.float32)
    still_eyes = inter_ocular(still)
    out = np.repeat(still[None], len(points), axis=0).astype(np.float32)
    for i in good:
        p = uncross_lips(retarget(points[i], neutral, still, mode))
        eyes = inter_ocular(p) if np.isfinite(p).all() else 0.0
        if not still_eyes / SCALE_RANGE < eyes < still_eyes * SCALE_RANGE:
            usable[i], reasons[i] = False, "retargeted face is degenerate"
            continue
        out[i] = p
    why = {int(f): r for f, r, u in zip(track.frames, reasons, usable) if not u}
    if why:
        log.warning("%d of %d frames have no usable landmarks and will be the untouched still (flagged)",
                    len(why), len(points))
    return Driving(np.asarray(track.frames, np.int64), out, usable, why, int(track.frames[row]))
