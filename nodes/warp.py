"""The dense landmark warp of a whole still: piecewise-affine over its 68 landmarks plus static anchors.

The still is triangulated once (Delaunay) over its 68 landmarks, 8 frame-edge anchors (corners and
edge midpoints) and a ring of static points at ``reach`` face radii around the face (the ring's points
that fall inside the frame). Moving the 68 points to a frame's driven landmarks moves every triangle;
each output pixel samples the still through its triangle's affine map. So the face, hair, neck and the
near background move together, the motion fades to nothing at the ring and the frame edges, and
pixels beyond the ring are the still's own pixels, exactly.

Measured on 6 real clips of unseen people (the self-reenactment protocol of docs/evaluate.md): the piecewise-affine warp over the
landmarks and frame anchors scores SSIM .740 on the face crop; rings tied rigidly to the head .703-.706,
a thin-plate spline .732-.734. The static ring only bounds how far the warp reaches.

The lips part instead of stretching (``split_lips``, the default): Delaunay runs without the inner-lip
points 60-67, the triangles it puts inside the outer lip line 48-59 are dropped, and fixed strips take
their place: the upper lip between 48-54 and the upper inner-lip points 60-64, the lower lip between
54-59, 48 and the lower ones 64-67, 60, so each lip keeps its own texture and thickness and no
triangle spans from one lip to the other. The fan left inside the inner-lip polygon
(``WarpMesh.mouth``) is the mouth interior: on a closed-mouth still it has no area, so where the
driven mouth opens it holds nothing of the still's but a smear, and ``nodes.mouth`` paints that hole.
``split_lips=False`` is the plain Delaunay mesh over all 68 points, which stretches the lips across
an opening mouth (``--mouth off``).

The lids close over the eye (split mesh only): the triangles inside each eye polygon (36-41, 42-47,
``WarpMesh.eyes``) are the eyeball. Where a frame's eye is less open (lid gap over eye width) than the
still's, its eyeball is drawn first with the still's own eye shape carried by a similarity from the
still's eye corners to the driven ones (fully so once the eye is ``EYE_RAMP`` less open, blended with
the driven eye shape before that), and the skin triangles around it, which follow the driven lid
points, are drawn over it: the lid skin comes down over an iris that keeps its shape, instead of the
iris being squashed into a dark line. An eye at least as open as the still's warps as before.

Two outputs per frame:

- the backward map (``Warp.flow``): output pixel p samples the still at p + flow[p]; the warped still
  and, for the warp-conditioned generator, its face crop are made from it;
- forward motion vectors (:func:`motion_vectors`): where each output pixel of frame n is in frame n + 1,
  in pixels per frame, for a comp's vector blur.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from monalisa.errors import InputError, ShapeError
from monalisa.nodes.landmarks import NUM_POINTS, check_points

#: default reach of the warp, in face radii (max landmark distance from the landmarks' centre)
REACH = 3.0
_RING_POINTS = 24
_SHIFT = 8  # sub-pixel bits for rasterising triangles
INNER_LIPS = tuple(range(60, 68))
OUTER_LIPS = tuple(range(48, 60))
#: the lips' own triangles: each lip is a strip between its outer edge and its inner-lip points
UPPER_LIP = ((48, 49, 60), (49, 61, 60), (49, 50, 61), (50, 62, 61), (50, 51, 62), (51, 52, 62), (52, 63, 62),
             (52, 53, 63), (53, 64, 63), (53, 54, 64))
LOWER_LIP = ((54, 55, 64), (55, 65, 64), (55, 56, 65), (56, 66, 65), (56, 57, 66), (57, 58, 66), (58, 67, 66),
             (58, 59, 67), (59, 60, 67), (59, 48, 60))
#: the mouth interior: inside the inner-lip polygon
MOUTH = ((60, 61, 67), (61, 62, 67), (62, 66, 67), (62, 63, 66), (63, 65, 66), (63, 64, 65))
#: each eye's polygon (corner, upper lid, corner, lower lid) and its corners
EYES = (tuple(range(36, 42)), tuple(range(42, 48)))
EYE_CORNERS = ((36, 39), (42, 45))
#: an eye this much less open than the still's (fraction of its opening) shows the still's eye shape in full
EYE_RAMP = 0.25


@dataclass(frozen=True)
class WarpMesh:
    """The still's triangulation: ``points`` (P, 2) with the 68 landmarks first, then static anchors."""

    points: np.ndarray  # float64 (P, 2), still pixels
    triangles: np.ndarray  # int32 (T, 3)
    size: tuple  # (width, height) of the still
    mouth: np.ndarray | None = None  # bool (T,): triangles inside the inner-lip polygon (split lips only)
    eyes: np.ndarray | None = None  # bool (T,): triangles inside an eye polygon (split lips only)

    @property
    def moving(self) -> np.ndarray:
        """bool (T,): triangles with at least one landmark vertex (the others never move)."""
        return (self.triangles < NUM_POINTS).any(axis=1)


@dataclass(frozen=True)
class Warp:
    image: np.ndarray  # the warped still, same dtype and channels as the input
    flow: np.ndarray  # float32 (H, W, 2): output p samples the still at p + flow[p]
    triangle: np.ndarray  # int32 (H, W): triangle under each output pixel (-1: none)


def _static_anchors(points, width, height, reach):
    w, h = width - 1.0, height - 1.0
    edge = [(0, 0), (w / 2, 0), (w, 0), (w, h / 2), (w, h), (w / 2, h), (0, h), (0, h / 2)]
    anchors = [np.array(edge, np.float64)]
    if reach and reach > 0:
        centre = points.mean(axis=0)
        radius = reach * float(np.linalg.norm(points - centre, axis=1).max())
        angles = np.linspace(0, 2 * np.pi, _RING_POINTS, endpoint=False)
        ring = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        margin = 0.02 * min(w, h)  # ring points hugging the frame edge add only slivers
        inside = (ring[:, 0] > margin) & (ring[:, 0] < w - margin) & (ring[:, 1] > margin) & (ring[:, 1] < h - margin)
        anchors.append(ring[inside])
    return np.concatenate(anchors)


def build_mesh(still_points, image_size, reach: float = REACH, split_lips: bool = True) -> WarpMesh:
    """Triangulate a still of ``image_size`` (width, height) over its landmarks and static anchors.

    ``split_lips``: no triangle spans the inner-lip line (see the module docstring)."""
    from scipy.spatial import Delaunay

    pts = check_points(still_points, "still landmarks").astype(np.float64)
    width, height = (int(v) for v in image_size)
    if width < 2 or height < 2:
        raise ShapeError("still size", ("W>=2", "H>=2"), (width, height))
    allp = np.concatenate([pts, _static_anchors(pts, width, height, reach)])
    if not split_lips:
        tri = Delaunay(allp, qhull_options="QJ Pp").simplices.astype(np.int32)
        tri = tri[np.abs(_signed_areas(allp, tri)) > 1e-6]  # degenerate (collinear) triangles carry no pixels
        return WarpMesh(allp, tri, (width, height))
    # the face around the mouth: Delaunay without the inner-lip points, less what falls inside the outer lip line
    keep = np.setdiff1d(np.arange(len(allp)), INNER_LIPS)
    tri = keep[Delaunay(allp[keep], qhull_options="QJ Pp").simplices].astype(np.int32)
    tri = tri[np.abs(_signed_areas(allp, tri)) > 1e-6]
    centres = allp[tri].mean(axis=1)
    lips = np.array([cv2.pointPolygonTest(pts[list(OUTER_LIPS)].astype(np.float32), (float(x), float(y)), False) > 0
                     for x, y in centres]) & np.isin(tri, OUTER_LIPS).all(axis=1)
    tri = tri[~lips]
    _check_lip_line(tri)
    tri = np.concatenate([tri, np.array(UPPER_LIP + LOWER_LIP + MOUTH, np.int32)])
    mouth = np.zeros(len(tri), bool)
    mouth[-len(MOUTH):] = True
    return WarpMesh(allp, tri, (width, height), mouth, _eye_triangles(pts, tri))


def _eye_triangles(pts, tri) -> np.ndarray:
    """bool (T,): the triangles inside each eye polygon, for an eye whose polygon's every edge borders
    exactly one of them and one triangle outside (else that eye has none and warps as the skin)."""
    eyes = np.zeros(len(tri), bool)
    for eye in EYES:
        poly = pts[list(eye)].astype(np.float32)
        inside = np.isin(tri, eye).all(axis=1)
        for j in np.nonzero(inside)[0]:
            x, y = pts[tri[j]].mean(axis=0)
            inside[j] = cv2.pointPolygonTest(poly, (float(x), float(y)), False) > 0
        edges = {}
        for t, ins in zip(tri, inside):
            for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
                edges.setdefault(frozenset((int(a), int(b))), []).append(bool(ins))
        ring = eye + eye[:1]
        if inside.sum() == len(eye) - 2 and all(sorted(edges.get(frozenset((a, b)), [])) == [False, True]
                                               for a, b in zip(ring[:-1], ring[1:])):
            eyes |= inside
    return eyes


def _check_lip_line(tri) -> None:
    """Each edge of the outer lip line borders exactly one triangle of the face around the mouth."""
    count = {}
    for t in tri:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            key = frozenset((int(a), int(b)))
            count[key] = count.get(key, 0) + 1
    ring = OUTER_LIPS + OUTER_LIPS[:1]
    for a, b in zip(ring[:-1], ring[1:]):
        if count.get(frozenset((a, b)), 0) != 1:
            raise InputError(f"still landmarks: the mesh cannot follow the outer lip line {a}-{b} (are points "
                             "48-67 the lips?); check the still's landmarks, or render with --mouth off")


def _signed_areas(points, tri):
    a, b, c = points[tri[:, 0]], points[tri[:, 1]], points[tri[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def mesh_points(mesh: WarpMesh, driven_points) -> np.ndarray:
    """The mesh's vertices for one frame: the driven landmarks, the static anchors unchanged."""
    pts = check_points(driven_points, "driven landmarks").astype(np.float64)
    return np.concatenate([pts, mesh.points[NUM_POINTS:]])


def _affines(src_vertices, dst_vertices, tri):
    """(T, 2, 3) affine maps taking each triangle of ``src_vertices`` onto the same one of ``dst_vertices``.

    A triangle collapsed to a line in ``src_vertices`` (closed lips put the inner-lip points on top of
    each other) covers no pixel there; it gets the translation between the two triangles' centroids.
    """
    s = src_vertices[tri]  # (T, 3, 2)
    d = dst_vertices[tri]
    s_h = np.concatenate([s, np.ones((len(tri), 3, 1))], axis=2)  # (T, 3, 3) rows [x y 1]
    flat = np.abs(np.linalg.det(s_h)) < 1e-9
    s_h[flat] = np.eye(3)
    x = np.linalg.solve(s_h, d)  # (T, 3, 2): s_h @ x = d; the affine is x.T
    out = np.transpose(x, (0, 2, 1))
    if flat.any():
        out[flat] = 0.0
        out[flat, 0, 0] = out[flat, 1, 1] = 1.0
        out[flat, :, 2] = d[flat].mean(axis=1) - s[flat].mean(axis=1)
    return out


def _triangle_index(vertices, tri, order, width, height, box):
    """int32 (h, w) over ``box`` = (x0, y0, x1, y1): index of the triangle covering each pixel."""
    x0, y0, x1, y1 = box
    index = np.full((y1 - y0, x1 - x0), -1, np.int32)
    scale = float(1 << _SHIFT)
    for j in order:
        poly = np.round((vertices[tri[j]] - (x0, y0)) * scale).astype(np.int32)
        cv2.fillConvexPoly(index, poly, int(j), lineType=cv2.LINE_8, shift=_SHIFT)
    return index


def _moving_box(vertices, tri, moving, width, height):
    used = vertices[np.unique(tri[moving])]
    x0, y0 = np.floor(used.min(axis=0)).astype(int)
    x1, y1 = np.ceil(used.max(axis=0)).astype(int) + 1
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def _opening(points, eye, corners) -> float:
    """Lid gap / eye width of one eye of ``points``."""
    width = max(float(np.linalg.norm(points[corners[1]] - points[corners[0]])), 1e-9)
    upper, lower = (eye[1], eye[2]), (eye[5], eye[4])
    return sum(float(np.linalg.norm(points[u] - points[lo])) for u, lo in zip(upper, lower)) / 2 / width


def _similarity(src, dst) -> np.ndarray:
    """(2, 3) similarity taking the segment ``src`` (2, 2) onto ``dst`` (2, 2)."""
    s, d = src[1] - src[0], dst[1] - dst[0]
    z = complex(*d) / complex(*s) if np.any(s) else 1.0
    rot = np.array([[z.real, -z.imag], [z.imag, z.real]])
    return np.hstack([rot, (dst[0] - rot @ src[0])[:, None]])


def _closing_eyes(mesh: WarpMesh, dst) -> np.ndarray | None:
    """(P, 2) vertices for the eyeball triangles of eyes less open than the still's: the driven eye
    shape blended towards the still's own, carried by the driven eye corners; None if no eye closes."""
    if mesh.eyes is None or not mesh.eyes.any():
        return None
    out, closing = dst.copy(), False
    for eye, corners in zip(EYES, EYE_CORNERS):
        still_open, driven_open = _opening(mesh.points, eye, corners), _opening(dst, eye, corners)
        if still_open < 1e-3 or driven_open >= still_open:
            continue
        weight = min(1.0, (1.0 - driven_open / still_open) / EYE_RAMP)
        sim = _similarity(mesh.points[list(corners)], dst[list(corners)])
        carried = mesh.points[list(eye)] @ sim[:, :2].T + sim[:, 2]
        out[list(eye)] = (1.0 - weight) * dst[list(eye)] + weight * carried
        closing = True
    return out if closing else None


def warp_field(mesh: WarpMesh, driven_points):
    """(flow float32 (H, W, 2), triangle int32 (H, W)) of the backward map for one frame."""
    width, height = mesh.size
    dst = mesh_points(mesh, driven_points)
    tri, moving = mesh.triangles, mesh.moving
    flow = np.zeros((height, width, 2), np.float32)
    triangle = np.full((height, width), -1, np.int32)
    box = _moving_box(dst, tri, moving, width, height)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return flow, triangle
    # moving triangles last, so where a fold-over makes them overlap static ones they win; the mouth
    # interior before the lips, so lips pressed tighter than the still's cover it
    mouth = np.zeros(len(tri), bool) if mesh.mouth is None else mesh.mouth
    eyes = _closing_eyes(mesh, dst)
    if eyes is None:
        order = np.concatenate([np.nonzero(~moving)[0], np.nonzero(mouth)[0], np.nonzero(moving & ~mouth)[0]])
        index = _triangle_index(dst, tri, order, width, height, box)
        back = _affines(dst, mesh.points, tri)  # frame -> still, per triangle
    else:
        # closing eyes: each eyeball twice, at the driven lids (filling the driven eye wherever the
        # still's shape does not reach) and then in the still's shape (triangles T + j), both under the
        # lid skin drawn after them
        ball, n = np.nonzero(mesh.eyes)[0], len(tri)
        order = np.concatenate([np.nonzero(~moving)[0], np.nonzero(mouth)[0], ball, n + np.arange(len(ball)),
                                np.nonzero(moving & ~mouth & ~mesh.eyes)[0]])
        verts = np.concatenate([dst, eyes])
        drawn = np.concatenate([tri, tri[ball] + len(dst)])
        index = _triangle_index(verts, drawn, order, width, height, box)
        back = np.concatenate([_affines(dst, mesh.points, tri), _affines(eyes, mesh.points, tri[ball])])
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    valid = index >= 0
    safe = np.where(valid, index, 0)
    a = back.astype(np.float32)[safe]  # (h, w, 2, 3)
    sx = a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]
    sy = a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]
    flow[y0:y1, x0:x1, 0] = np.where(valid, sx - xs, 0.0)
    flow[y0:y1, x0:x1, 1] = np.where(valid, sy - ys, 0.0)
    if eyes is not None:  # the triangle map names the mesh's own triangles
        index = np.where(index >= n, ball[np.clip(index - n, 0, len(ball) - 1)], index)
        safe = np.where(valid, index, 0)
    static = ~moving[safe] | ~valid
    flow[y0:y1, x0:x1][static] = 0.0  # static triangles are exactly the identity
    triangle[y0:y1, x0:x1] = index
    return flow, triangle


def apply_flow(image, flow, interpolation=cv2.INTER_LINEAR):
    """Sample ``image`` (H, W[, C]) at p + flow[p]; pixels with zero flow are copied exactly."""
    img = np.asarray(image)
    h, w = flow.shape[:2]
    if img.shape[:2] != (h, w):
        raise ShapeError("warp image", (h, w, "C"), img.shape)
    moved = (flow[..., 0] != 0) | (flow[..., 1] != 0)
    out = img.copy()
    rows, cols = np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0))
    if not len(rows):
        return out
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    map_x = gx + flow[y0:y1, x0:x1, 0]
    map_y = gy + flow[y0:y1, x0:x1, 1]
    src = img if img.dtype != np.float16 else img.astype(np.float32)
    sampled = cv2.remap(src, map_x, map_y, interpolation, borderMode=cv2.BORDER_REFLECT101)
    if sampled.ndim == 2 and img.ndim == 3:
        sampled = sampled[..., None]
    keep = moved[y0:y1, x0:x1]
    np.copyto(out[y0:y1, x0:x1], sampled.astype(img.dtype), where=keep if img.ndim == 2 else keep[..., None])
    return out


def dense_warp(image, mesh: WarpMesh, driven_points) -> Warp:
    """The still ``image`` warped so its landmarks land on ``driven_points``, with its motion field."""
    flow, triangle = warp_field(mesh, driven_points)
    return Warp(apply_flow(image, flow), flow, triangle)


def motion_vectors(mesh: WarpMesh, points_now, points_next, triangle) -> np.ndarray:
    """float32 (H, W, 2): where each output pixel of this frame goes in the next one (pixels per frame),
    as (x, y) in image rows (y down); the EXR writer turns y up, as Nuke reads vectors (nodes/writer.py).

    ``triangle`` is this frame's (from :func:`warp_field`); a pixel in triangle j moves by the affine
    map taking triangle j of this frame onto triangle j of the next.
    """
    now, nxt = mesh_points(mesh, points_now), mesh_points(mesh, points_next)
    fwd = _affines(now, nxt, mesh.triangles).astype(np.float32)
    h, w = triangle.shape
    motion = np.zeros((h, w, 2), np.float32)
    valid = triangle >= 0
    if not valid.any():
        return motion
    ys, xs = np.nonzero(valid)
    keep = mesh.moving[triangle[ys, xs]]
    ys, xs = ys[keep], xs[keep]
    a = fwd[triangle[ys, xs]]
    xf, yf = xs.astype(np.float32), ys.astype(np.float32)
    motion[ys, xs, 0] = a[:, 0, 0] * xf + a[:, 0, 1] * yf + a[:, 0, 2] - xf
    motion[ys, xs, 1] = a[:, 1, 0] * xf + a[:, 1, 1] * yf + a[:, 1, 2] - yf
    return motion
