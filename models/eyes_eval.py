"""Eyes that close, measured: a still driven by a track with blinks, the warp's eyes squashed or covered.

  python -m monalisa.models.eyes_eval STILL TRACK.json [--png DIR]

Renders every frame of the track twice through the node (the default render), with the mesh's eyes
(the lids drawn over the still's eye shape, ``nodes.warp``) and without them (the eye squashed between
the lids), and prints per variant: the correlation of the eye aspect ratio of dlib's landmarks on the
render with the performer's, and a colour score of the blink frames (performer's EAR < ``--closed``):
the mean CIELAB distance of the render's pixels inside the still's eye polygon, carried by the driven
eye corners, from the still's lid skin (the median of the band 30-60 % of the way from the upper lid
to the brow); lower is more skin. ``--png``: close-ups of the two most closed frames.
"""
from __future__ import annotations

import argparse
import dataclasses

import cv2
import numpy as np

from monalisa.nodes import colour, trackfile
from monalisa.nodes.detect import create_detector
from monalisa.nodes.landmarks import eye_opening
from monalisa.nodes.node import AnimatePortrait
from monalisa.nodes.warp import EYE_CORNERS, EYES, _similarity

BROWS = ((17, 18, 19, 20, 21), (22, 23, 24, 25, 26))


def _lab(srgb_u8):
    lab = cv2.cvtColor(srgb_u8, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    return lab


def _mask(poly, shape):
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1)
    return m.astype(bool)


def lid_skin(points, eye, brow):
    """The band 30-60 % of the way from an eye's upper lid (corner, lid, lid, corner) to its brow."""
    upper = points[[eye[0], eye[1], eye[2], eye[3]]]
    b = points[list(brow)]
    above = np.array([b[0], (b[1] + b[2]) / 2, (b[2] + b[3]) / 2, b[4]])
    return np.concatenate([upper + 0.3 * (above - upper), (upper + 0.6 * (above - upper))[::-1]])


def measure(still, track_path, closed=0.15, png=None) -> dict:
    track = trackfile.load(track_path)
    row = {int(f): i for i, f in enumerate(track.frames)}
    detector = create_detector("dlib")
    node = AnimatePortrait(str(still), track=str(track_path), threads=1)
    sp = node.still_points.astype(np.float64)
    lab_still = _lab(np.clip(np.round(node.srgb * 255), 0, 255).astype(np.uint8))
    shape = lab_still.shape[:2]
    skin = [np.median(lab_still[_mask(lid_skin(sp, e, b), shape)], axis=0) for e, b in zip(EYES, BROWS)]
    ears = np.array([eye_opening(p) for p in track.points])
    show = {int(track.frames[i]) for i in np.argsort(ears)[:2]}
    result = {"still": float(np.mean([np.linalg.norm(lab_still[_mask(sp[list(e)], shape)] - s, axis=1).mean()
                                      for e, s in zip(EYES, skin)]))}
    covered = node.mesh
    for name, mesh in (("squashed", dataclasses.replace(covered, eyes=None)), ("covered", covered)):
        node.mesh = mesh
        perf, render, scores = [], [], []
        for r in node.render():
            srgb = np.clip(np.round(colour.convert(r.rgb, node.output_colorspace, colour.SRGB) * 255), 0, 255)
            srgb = srgb.astype(np.uint8)
            driven = node.driving.points[node.driving.index(r.frame)].astype(np.float64)
            faces = detector.detect(srgb)
            if faces:
                perf.append(eye_opening(track.points[row[r.frame]]))
                render.append(eye_opening(max(faces, key=lambda f: f.score).points))
            if eye_opening(track.points[row[r.frame]]) < closed:
                lab, per_eye = _lab(srgb), []
                for e, c, s in zip(EYES, EYE_CORNERS, skin):
                    sim = _similarity(sp[list(c)], driven[list(c)])
                    region = sp[list(e)] @ sim[:, :2].T + sim[:, 2]
                    per_eye.append(np.linalg.norm(lab[_mask(region, shape)] - s, axis=1).mean())
                scores.append(np.mean(per_eye))
            if png and r.frame in show:
                (x0, y0), (x1, y1) = driven[17:48].min(0) - 10, driven[17:48].max(0) + 10
                crop = srgb[max(0, int(y0)):int(y1), max(0, int(x0)):int(x1)]
                cv2.imwrite(f"{png}/{name}_{r.frame:04d}.png", cv2.resize(
                    cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST))
        result[name] = {"frames": len(perf), "blinks": len(scores),
                        "ear_correlation": float(np.corrcoef(perf, render)[0, 1]),
                        "colour_score": float(np.mean(scores)) if scores else float("nan")}
    node.mesh = covered
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m monalisa.models.eyes_eval", description=__doc__.splitlines()[0])
    p.add_argument("still")
    p.add_argument("track")
    p.add_argument("--closed", type=float, default=0.15, help="performer's EAR below this: a blink frame")
    p.add_argument("--png", help="folder for close-ups of the most closed frames")
    args = p.parse_args(argv)
    r = measure(args.still, args.track, args.closed, args.png)
    print(f"still's own open eyes: colour score {r['still']:.1f}")
    print("| eyes | frames | blink frames | EAR correlation | colour score in blinks |\n|---|---|---|---|---|")
    for name in ("squashed", "covered"):
        v = r[name]
        print(f"| {name} | {v['frames']} | {v['blinks']} | {v['ear_correlation']:.3f} | {v['colour_score']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
