"""Measure the mouth interior on held-out prepared clips (self-reenactment), and print the table.

  python -m monalisa.models.mouth_eval --data runs/prep_val [--model MOUTH.onnx]
  python -m monalisa.models.mouth_eval --stills A.jpg B.png --clips CLIP.mp4=TRACK.json [--identity BAKED.onnx]
  python -m monalisa.models.mouth_eval --stills A.jpg --eyes TRACK.json

Per clip, the frame with the most closed mouth is the still; every frame whose mouth is open (inner-lip
height over mouth width >= ``--open``) is rendered from it through the node's own parts, driven by
the frame's true landmarks: the plain warp (``--mouth off``: one Delaunay mesh, the lips stretch), the
split-lip warp with the hole filled by ``nodes.mouth.DarkFill`` (the lips' colour darkened), and the
split-lip warp painted by the mouth model (``--mouth on``). Scores inside the frame's true inner-lip
polygon (eroded 1 px), against the true frame: L1 (sRGB, 0..1) and SSIM (mean of the SSIM map, 7 px
window, over the polygon); and the CIELAB mouth-interior score (``models.quality.mouth_interior``) of
each render, with the true frames' own as the reference.

Cross-reenactment (``--stills``, ``--clips``): stills of other people driven by a clip's track
through the node itself; the CIELAB mouth-interior score on frames where the performer's mouth is
open, with the mouth model on, off, and on over an identity's correction, beside the performer's own.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from monalisa.models.mouth_data import clips
from monalisa.nodes import colour
from monalisa.models.quality import mouth_interior
from monalisa.nodes.landmarks import mouth_opening as opening
from monalisa.nodes.mouth import INNER_LIPS, DarkFill, MouthPainter
from monalisa.nodes.warp import apply_flow, build_mesh, warp_field

METHODS = ("warp", "dark fill", "mouth model")


def interior_score(srgb, points) -> float:
    """``quality.mouth_interior`` of a float sRGB image in 0..1."""
    return mouth_interior(np.round(np.clip(srgb, 0.0, 1.0) * 255.0).astype(np.uint8), points)


def _region(points, shape):
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points)[INNER_LIPS] * 16).astype(np.int32)], 1, shift=4)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)


def _ssim_map(a, b):
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(a, b, channel_axis=2, data_range=1.0, win_size=7, full=True)
    return full.mean(axis=2)


def evaluate(prepared, model, open_threshold: float = 0.15) -> dict:
    """{clip: {method: {"l1", "ssim", "score"}, "truth": score, "frames": n}}."""
    out = {}
    for cid, folder in clips(prepared):
        frames = np.load(folder / "frames.npy")
        points = np.load(folder / "landmarks.npy").astype(np.float64)
        openness = np.array([opening(p) for p in points])
        still_i = int(np.argmin(openness))
        still = frames[still_i].astype(np.float32) / 255.0
        size = (still.shape[1], still.shape[0])
        split, plain = build_mesh(points[still_i], size), build_mesh(points[still_i], size, split_lips=False)
        painters = {"dark fill": MouthPainter(DarkFill(model.resolution), points[still_i]),
                    "mouth model": MouthPainter(model, points[still_i])}
        rows = {m: {"l1": [], "ssim": [], "score": []} for m in METHODS}
        truth = []
        for i in np.nonzero(openness >= open_threshold)[0]:
            true = frames[i].astype(np.float32) / 255.0
            region = _region(points[i], true.shape)
            if region.sum() < 10:
                continue
            truth.append(interior_score(true, points[i]))
            renders = {"warp": apply_flow(still, warp_field(plain, points[i])[0])}
            base = apply_flow(still, warp_field(split, points[i])[0])
            for name, painter in painters.items():
                renders[name] = np.clip(painter.paint(base, points[i], colour.SRGB)[0], 0, 1)
            for name, img in renders.items():
                rows[name]["l1"].append(float(np.abs(img - true)[region].mean()))
                rows[name]["ssim"].append(float(_ssim_map(img, true)[region].mean()))
                rows[name]["score"].append(interior_score(img, points[i]))
        out[cid] = {m: {k: float(np.mean(v)) for k, v in rows[m].items()} for m in METHODS}
        out[cid]["truth"], out[cid]["frames"] = float(np.mean(truth)), len(truth)
    return out


def cross(stills, clips_and_tracks, frames: int = 24, open_threshold: float = 0.15, identity=None,
          mouth_model=None) -> list:
    """Cross-reenactment rows: per still x clip, the mouth-interior score with ``--mouth on`` and ``off``
    (and on with ``identity``, a baked generator made for the first still), on up to ``frames`` frames
    where the performer's mouth is open, beside the performer's own score on those frames."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.media import iter_frames
    from monalisa.nodes.node import AnimatePortrait

    rows = []
    for clip, track_path in clips_and_tracks:
        track = trackfile.load(track_path)
        openness = np.array([opening(p) for p in track.points])
        chosen = [int(f) for f, o in zip(track.frames, openness) if o >= open_threshold]
        chosen = chosen[::max(1, len(chosen) // frames)][:frames]
        index = {int(f): i for i, f in enumerate(track.frames)}
        own = []
        for f, rgb in iter_frames(clip, end=max(chosen)):
            if int(f) in chosen:
                own.append(mouth_interior(rgb, track.points[index[int(f)]]))
        for k, still in enumerate(stills):
            row = {"still": str(still), "clip": str(clip), "frames": len(chosen), "performer": float(np.mean(own))}
            runs = [("on", {}), ("off", {})] + ([("on + identity", {"identity": identity})] if identity and k == 0
                                                else [])
            for name, kw in runs:
                node = AnimatePortrait(str(still), track=str(track_path), mouth=name.split()[0], threads=1,
                                       mouth_model=mouth_model, **kw)
                scores = [interior_score(colour.convert(r.rgb, node.output_colorspace, colour.SRGB),
                                         node.driving.points[node.driving.index(r.frame)]) for r in node.render(chosen)]
                row[name] = float(np.nanmean(scores))
            rows.append(row)
    return rows


def eyes(still, track_path, closed: float = 0.15) -> dict:
    """Eyes that close: the eye aspect ratio (``landmarks.eye_opening``) of dlib's landmarks found on
    each rendered frame of ``still`` driven by ``track_path``, against the performer's: correlation,
    and the means over the performer's blinks (EAR < ``closed``) of the performer, the driven
    landmarks and the render."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.detect import create_detector
    from monalisa.nodes.landmarks import eye_opening
    from monalisa.nodes.node import AnimatePortrait

    track = trackfile.load(track_path)
    row = {int(f): i for i, f in enumerate(track.frames)}
    detector = create_detector("dlib")
    node = AnimatePortrait(str(still), track=str(track_path), threads=1)
    perf, driven, render = [], [], []
    for r in node.render():
        srgb = np.clip(np.round(colour.convert(r.rgb, node.output_colorspace, colour.SRGB) * 255), 0, 255)
        faces = detector.detect(srgb.astype(np.uint8))
        if faces:
            perf.append(eye_opening(track.points[row[r.frame]]))
            driven.append(eye_opening(node.driving.points[node.driving.index(r.frame)]))
            render.append(eye_opening(max(faces, key=lambda f: f.score).points))
    perf, driven, render = map(np.array, (perf, driven, render))
    blink = perf < closed
    return {"frames": len(perf), "blinks": int(blink.sum()), "correlation": float(np.corrcoef(perf, render)[0, 1]),
            "performer": float(perf[blink].mean()), "driven": float(driven[blink].mean()),
            "render": float(render[blink].mean())}


def cross_table(rows) -> str:
    lines = ["| still | clip | frames | performer's own | --mouth on | on, with --identity | --mouth off |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ident = f"{r['on + identity']:.1f}" if "on + identity" in r else "–"
        lines.append(f"| {Path(r['still']).name} | {Path(r['clip']).name} | {r['frames']} | {r['performer']:.1f} | "
                     f"{r['on']:.1f} | {ident} | {r['off']:.1f} |")
    return "\n".join(lines)


def table(results) -> str:
    lines = ["| clip | open frames | method | L1 inside ↓ | SSIM inside ↑ | CIELAB interior score (truth) |",
             "|---|---|---|---|---|---|"]
    for cid, r in results.items():
        for m in METHODS:
            lines.append(f"| {cid} | {r['frames']} | {m} | {r[m]['l1']:.4f} | {r[m]['ssim']:.3f} | "
                         f"{r[m]['score']:.1f} ({r['truth']:.1f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    from monalisa.nodes.mouthmodel import load_mouth_model

    p = argparse.ArgumentParser(prog="python -m monalisa.models.mouth_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="a prepared folder of held-out clips (self-reenactment)")
    p.add_argument("--stills", nargs="+", help="cross-reenactment: stills (closed mouths)")
    p.add_argument("--clips", nargs="+", help="cross-reenactment: CLIP=TRACK.json pairs")
    p.add_argument("--identity", help="cross-reenactment: a baked generator for the first still")
    p.add_argument("--eyes", metavar="TRACK.json", help="eyes: EAR of the first still's render vs the performer's")
    p.add_argument("--model", default=None, help="mouth model .onnx (default: the bundled one)")
    p.add_argument("--open", type=float, default=0.15, help="frames at least this open are scored")
    args = p.parse_args(argv)
    if args.data:
        print(table(evaluate(args.data, load_mouth_model(args.model), args.open)))
    if args.stills:
        pairs = [tuple(c.split("=", 1)) for c in args.clips or []]
        if args.clips:
            print(cross_table(cross(args.stills, pairs, open_threshold=args.open, identity=args.identity,
                                    mouth_model=args.model)))
        if args.eyes:
            print(eyes(args.stills[0], args.eyes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
