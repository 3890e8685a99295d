"""Eyes that close: the lid skin comes down over the still's eye instead of squashing it (issue 16 item 4)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from monalisa.nodes.landmarks import LID_PAIRS
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
