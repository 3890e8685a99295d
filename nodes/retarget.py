"""Relative retargeting: drive a still's own landmarks with a plate's motion."""

import numpy as np

from monalisa.errors import ConfigError
from monalisa.nodes.crop import align_face
from monalisa.nodes.landmarks import LID_PAIRS, check_points

CANON = 256


def retarget(plate_points, plate_neutral, still_points, mode="relative"):
    """Landmarks for the still following the plate.

    relative: normalise plate frame and neutral frame to a canonical square (similarity on stable
    points), take the displacement, scale it to the still's canonical frame and add it to the
    still's points, except that lids closing from neutral close the still's lids by the same ratio
    (``_close_lids``); the head pose (similarity) of the plate relative to neutral is applied too.
    absolute: the plate's points mapped so that its neutral frame lands on the still's frame.
    """
    cur = check_points(plate_points, "plate points").astype(np.float64)
    neu = check_points(plate_neutral, "plate neutral points").astype(np.float64)
    still = check_points(still_points, "still points").astype(np.float64)
    t_neu = align_face(neu, CANON)
    t_cur = align_face(cur, CANON)
    t_still = align_face(still, CANON)
    if mode == "absolute":
        return t_still.invert(t_neu.apply(cur))
    if mode != "relative":
        raise ConfigError(f"retarget mode must be 'relative' or 'absolute', got {mode!r}")
    # expression: displacement in canonical space (pose removed)
    cur_canon, neu_canon = t_cur.apply(cur).astype(np.float64), t_neu.apply(neu).astype(np.float64)
    still_canon = t_still.apply(still).astype(np.float64)
    still_canon = _close_lids(still_canon + (cur_canon - neu_canon), still_canon, cur_canon, neu_canon)
    # pose: the plate's motion from neutral, as a similarity in the neutral frame's canonical space
    m_neu = np.vstack([t_neu.matrix, [0, 0, 1]])
    m_cur = np.vstack([t_cur.matrix, [0, 0, 1]])
    pose = m_neu @ np.linalg.inv(m_cur)  # canonical(cur) -> canonical(neutral-aligned) of current head
    posed = still_canon @ pose[:2, :2].T + pose[:2, 2]
    return t_still.invert(posed)


#: lid gap / neutral gap at and below which a tracked eye is shut: dlib puts a closed eye's lids about
#: a third of the open gap apart (the lashes), so a plain ratio would leave the still's eye a third open
SHUT = 0.4
#: above this ratio the still's lids follow the plate's ratio as it is; between SHUT and KNEE they close faster
KNEE = 0.65


def lid_ratio(ratio: float) -> float:
    """The still's lid gap / its own for a plate ratio: 0 up to ``SHUT``, linear to ``KNEE``, then as is."""
    if ratio >= KNEE:
        return ratio
    return max(0.0, (ratio - SHUT) / (KNEE - SHUT)) * KNEE


def _close_lids(driven, still, cur, neu):
    """Eyelids that close: where the plate's lid gap (upper-lower pair, canonical) is below its
    neutral one, the still's gap is scaled by that ratio (through :func:`lid_ratio`, so a tracked
    blink shuts the eye) about the pair's driven midpoint, so a blink shuts the still's eye whatever
    its size (an added displacement would leave a still whose eyes are wider than the performer's half
    open)."""
    out = driven.copy()
    for eye in LID_PAIRS:
        for u, lo in eye:
            gap_neu = float(np.linalg.norm(neu[lo] - neu[u]))
            ratio = float(np.linalg.norm(cur[lo] - cur[u])) / gap_neu if gap_neu > 1e-6 else 1.0
            if ratio < 1.0:
                mid = (driven[u] + driven[lo]) / 2.0
                half = (still[lo] - still[u]) / 2.0 * lid_ratio(ratio)
                out[u], out[lo] = mid - half, mid + half
    return out
