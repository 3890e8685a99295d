"""Eyes that close: the lid skin comes down over the still's eye instead of squashing it (issue 16 item 4)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from monalisa.nodes.landmarks import LID_PAIRS, eye_opening
from monalisa.nodes.retarget import KNEE, SHUT, lid_ratio, retarget
from monalisa.nodes.warp import EYES, apply_flow, build_mesh, warp_field

SKIN, SCLERA, IRIS = (0.9, 0.75, 0.6), (0.95, 0.95, 0.95), (0.05, 0.03, 0.02)
SIZE = (320, 260)


def _with_lids(points, scale):
    """``points`` with every lid pair's gap scaled by ``scale`` about its midpoint."""
    out = points.copy()
    for eye in LID_PAIRS:
        for u, lo in eye:
            mid, half = (points[u] + points[lo]) / 2, (points[lo] - points[u]) / 2 * scale
            out[u], out[lo] = mid - half, mid + half
    return out


def _eye_still():
    """A 320x260 still of skin with wide-open eyes: white, with a dark iris 0.7 of the eye's height."""
    pts = np.array(json.loads((Path(__file__).parent / "face68.json").read_text()), np.float64)
    pts = _with_lids((pts - pts.mean(axis=0)) / np.ptp(pts[:, 0]) * 240 + (160, 130), 2.0)
    img = np.zeros((SIZE[1], SIZE[0], 3), np.float32) + SKIN
    for eye in EYES:
        poly = pts[list(eye)]
        cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], SCLERA, lineType=cv2.LINE_8, shift=4)
        height = (poly[4:6, 1].mean() - poly[1:3, 1].mean())
        iris = np.zeros(img.shape[:2], np.uint8)
        cv2.circle(iris, tuple(np.round(poly.mean(axis=0)).astype(int)), int(round(0.35 * height)), 1, -1)
        inside = np.zeros_like(iris)
        cv2.fillPoly(inside, [np.round(poly).astype(np.int32)], 1)
        img[(iris & inside).astype(bool)] = IRIS
    return img, pts


def _dark_run(column):
    return int((np.abs(column - np.array(IRIS, np.float32)).max(axis=1) < 0.2).sum())


def test_an_eye_at_least_as_open_as_the_still_warps_as_before():
    img, pts = _eye_still()
    mesh = build_mesh(pts, SIZE)
    assert mesh.eyes.sum() == 8  # four triangles inside each eye polygon
    before = dataclasses.replace(mesh, eyes=None)  # the mesh without eyes: today's warp
    for driven in (pts, _with_lids(pts, 1.15) + (3.5, -2.0)):  # the still's own; wider open, the head moved
        for a, b in zip(warp_field(mesh, driven), warp_field(before, driven)):
            np.testing.assert_array_equal(a, b)
    assert np.array_equal(apply_flow(img, warp_field(mesh, pts)[0]), img)  # the still's own landmarks: the still
    assert build_mesh(pts, SIZE, split_lips=False).eyes is None  # the plain mesh (--mouth off) is plain Delaunay


def test_a_closing_lid_covers_the_iris_instead_of_squashing_it():
    """Lids at half the still's gap: through the eye's centre the dark iris fills the whole gap left
    between the lids (the lid covers its top and bottom), where the squashing warp of the mesh without
    eyes shrinks it to half its height inside a white band; what the lids cover is skin."""
    img, pts = _eye_still()
    mesh = build_mesh(pts, SIZE)
    driven = _with_lids(pts, 0.5)
    runs = {}
    for name, m in (("eyes", mesh), ("squash", dataclasses.replace(mesh, eyes=None))):
        out = apply_flow(img, warp_field(m, driven)[0])
        for eye in EYES:
            x = int(round(pts[list(eye)][:, 0].mean()))
            top, bottom = driven[list(eye)][1:3, 1].mean(), driven[list(eye)][4:6, 1].mean()
            gap = bottom - top
            runs.setdefault(name, []).append(_dark_run(out[:, x]) / gap)
            still_top, still_bottom = pts[list(eye)][1:3, 1].mean(), pts[list(eye)][4:6, 1].mean()
            covered = np.concatenate([out[int(still_top) + 2:int(top) - 1, x], out[int(bottom) + 2:int(still_bottom) - 1, x]])
            assert len(covered) >= 6 and np.abs(covered - np.array(SKIN, np.float32)).max() < 0.1, name
    assert min(runs["eyes"]) > 0.85, runs
    assert max(runs["squash"]) < 0.8, runs


_FACE = np.array(json.loads((Path(__file__).parent / "face68.json").read_text()), np.float64)


def test_a_blink_closes_a_wide_eyed_still_by_the_performer_ratio():
    plate = _FACE * 1.3 + (40, 20)
    still = _with_lids(_FACE, 1.8)  # the still's eyes much wider open than the performer's
    for ratio in (0.1, 0.5, 0.8):
        driven = retarget(_with_lids(plate, ratio), plate, still)
        assert abs(eye_opening(driven) / eye_opening(still) - lid_ratio(ratio)) < 0.02, ratio
    # a tracked blink (dlib leaves a shut eye's lids a third of the open gap apart) shuts the still's eye
    assert eye_opening(retarget(_with_lids(plate, 0.35), plate, still)) < 1e-3
    assert lid_ratio(SHUT) == 0.0 and lid_ratio(KNEE) == KNEE and lid_ratio(0.8) == 0.8
    assert 0 < lid_ratio(0.5) < 0.5  # between them the still's lids close faster than the plate's
    # the lids only ever close by ratio; an eye opening wider than neutral is the added displacement
    wide = retarget(_with_lids(plate, 1.3), plate, still)
    added = eye_opening(still) + (eye_opening(_with_lids(_FACE, 1.3)) - eye_opening(_FACE))
    assert abs(eye_opening(wide) - added) < 0.03
    assert np.abs(retarget(plate, plate, still) - still).max() < 1e-4  # neutral: the still itself
