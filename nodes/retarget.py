"""Relative retargeting: drive a still's own landmarks with a plate's motion."""

import numpy as np

from monalisa.errors import ConfigError
from monalisa.nodes.crop import align_face
from monalisa.nodes.landmarks import check_points

CANON = 256


def retarget(plate_points, plate_neutral, still_points, mode="relative"):
    """Landmarks for the still following the plate.

    relative: normalise plate frame and neutral frame to a canonical square (similarity on stable
    points), take the displacement, scale it to the still's canonical frame and add it to the
    still's points; the head pose (similarity) of the plate relative to neutral is applied too.
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
    delta = t_cur.apply(cur).astype(np.float64) - t_neu.apply(neu).astype(np.float64)
    still_canon = t_still.apply(still).astype(np.float64) + delta
    # pose: the plate's motion from neutral, as a similarity in the neutral frame's canonical space
    m_neu = np.vstack([t_neu.matrix, [0, 0, 1]])
    m_cur = np.vstack([t_cur.matrix, [0, 0, 1]])
    pose = m_neu @ np.linalg.inv(m_cur)  # canonical(cur) -> canonical(neutral-aligned) of current head
    posed = still_canon @ pose[:2, :2].T + pose[:2, 2]
    return t_still.invert(posed)
