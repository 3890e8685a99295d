"""Eyes that close: a blink shuts the still's eye by the performer's ratio, whatever its size."""
import json
from pathlib import Path

import numpy as np

from monalisa.nodes.landmarks import LID_PAIRS, eye_opening
from monalisa.nodes.retarget import KNEE, SHUT, lid_ratio, retarget

FACE = np.array(json.loads((Path(__file__).parents[1] / "render" / "face68.json").read_text()), np.float64)


def _with_lids(points, scale):
    """``points`` with every lid pair's gap scaled by ``scale`` about its midpoint."""
    out = points.copy()
    for eye in LID_PAIRS:
        for u, lo in eye:
            mid, half = (points[u] + points[lo]) / 2, (points[lo] - points[u]) / 2 * scale
            out[u], out[lo] = mid - half, mid + half
    return out


def test_a_blink_closes_a_wide_eyed_still_by_the_performer_ratio():
    plate = FACE * 1.3 + (40, 20)
    still = _with_lids(FACE, 1.8)  # the still's eyes much wider open than the performer's
    for ratio in (0.1, 0.5, 0.8):
        driven = retarget(_with_lids(plate, ratio), plate, still)
        assert abs(eye_opening(driven) / eye_opening(still) - lid_ratio(ratio)) < 0.02, ratio
    # a tracked blink (dlib leaves a shut eye's lids a third of the open gap apart) shuts the still's eye
    assert eye_opening(retarget(_with_lids(plate, 0.35), plate, still)) < 1e-3
    assert lid_ratio(SHUT) == 0.0 and lid_ratio(KNEE) == KNEE and lid_ratio(0.8) == 0.8
    assert 0 < lid_ratio(0.5) < 0.5  # between them the still's lids close faster than the plate's
    # the lids only ever close by ratio; an eye opening wider than neutral is the added displacement
    wide = retarget(_with_lids(plate, 1.3), plate, still)
    added = eye_opening(still) + (eye_opening(_with_lids(FACE, 1.3)) - eye_opening(FACE))
    assert abs(eye_opening(wide) - added) < 0.03
    assert np.abs(retarget(plate, plate, still) - still).max() < 1e-4  # neutral: the still itself
