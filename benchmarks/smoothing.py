"""Landmark smoothing: jitter removed on a held head vs performance kept on real clips.

    python benchmarks/smoothing.py                 # choosing clips (not the validation clips)
    python benchmarks/smoothing.py --validation    # the final figures, on the validation clips
    python benchmarks/smoothing.py --sweep         # + the cutoff grid (track level)

Per clip (its first --frames frames, tracked with dlib as `monalisa track` does; tracks cached under
runs/smoothing/; the data folder is ../shared/data or $MONALISA_SHARED_DATA), the clip drives the bundled painting (assets/portraits/liveportrait_s3.jpg)
through ``nodes.drive.drive`` (relative retargeting, as the render does) with each smoother:

- **held-head jitter**: one frame of the clip repeated --held times, each copy shifted by a random
  sub-pixel offset (known, subtracted again), with Gaussian noise (sigma 2 levels) and a JPEG
  round trip (quality 90), re-detected every time: a head that does not move, tracked. Jitter =
  mean |second difference| of the 68 points per frame, in inter-ocular distances x 1000; "drop" is
  1 - smoothed / raw (the goal: at least 60 %).
- **track level** (cheap, used for choosing): the driven points' mean distance from the
  unsmoothed driven points (inter-ocular distances of the still) and the correlation of their mouth
  opening (inner-lip height / mouth width) with the performer's.
- **render level** (the goals): the still warped to the driven points (``nodes.warp``: the render
  without identity), dlib run on every --every-th output frame near where the face should be;
  landmark error = distance of the points found from the intended (unsmoothed) points / inter-ocular
  distance; mouth r = correlation of the found mouth opening with the performer's. Goals: mouth r
  within 0.03 of no smoothing, error at most 1.2x no smoothing's.
"""
from __future__ import annotations

import argparse
import itertools
import os
import pathlib

import cv2
import numpy as np

from monalisa.models import quality
from monalisa.nodes import trackfile
from monalisa.nodes.detect import create_detector
from monalisa.nodes.drive import drive
from monalisa.nodes.media import iter_frames, probe, read_still
from monalisa.nodes.smooth import Cutoffs, OneEuro, one_euro, zero_phase
from monalisa.nodes.track import track_plate
from monalisa.nodes.warp import build_mesh, dense_warp

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = pathlib.Path(os.environ.get("MONALISA_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHOOSING = ("liveportrait_d10", "liveportrait_d6", "videoretalking_face1", "videoretalking_face4")
VALIDATION = ("liveportrait_d18", "liveportrait_d20", "sadtalker_WDA_AlexandriaOcasioCortez_000")
STILL = ROOT / "assets" / "portraits" / "liveportrait_s3.jpg"


def cached_track(clip: pathlib.Path, frames: int):
    out = ROOT / "runs" / "smoothing" / f"{clip.stem}_{frames}.json"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        trackfile.save(track_plate(clip, end=frames - 1), out)
    return trackfile.load(out)


def held_head(clip: pathlib.Path, n: int, seed: int = 0) -> np.ndarray:
    """(n, 68, 2) dlib points of the clip's first frame re-detected under small perturbations."""
    frame = next(iter_frames(clip, 0, 0))[1]
    det, rng, out = create_detector("dlib"), np.random.default_rng(seed), []
    h, w = frame.shape[:2]
    for _ in range(n):
        shift = rng.uniform(-0.5, 0.5, 2)
        img = cv2.warpAffine(frame, np.array([[1, 0, shift[0]], [0, 1, shift[1]]]), (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
        img = np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        img = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED)
        faces = det.detect(img)
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        out.append(face.points - shift)
    return np.stack(out)


def held_jitter(points) -> float:
    """Mean |second difference| per point, in inter-ocular distances x 1000."""
    p = np.asarray(points, np.float64)
    iod = np.median(np.linalg.norm(p[:, 45] - p[:, 36], axis=1))
    return float(np.linalg.norm(np.diff(p, n=2, axis=0), axis=-1).mean() / iod * 1000)


def smoothers(sweep: bool) -> dict:
    """label -> f(points (N, 68, 2), fps) -> points; None: no smoothing."""
    out = {"none (--no-smooth)": None,
           "one-euro 1 Hz, beta 1 (old default)": lambda p, fps: one_euro(p, fps, OneEuro()),
           f"zero-phase {fmt(Cutoffs())} (default)": "render"}
    if sweep:
        for head, outline, face in itertools.product((2.0, 4.0, 6.0, 8.0), (1.0, 2.0, 3.0, 4.0, 6.0), (4.0, 6.0, 8.0, 10.0)):
            c = Cutoffs(head=head, outline=outline, eyes=face, lips=face)
            out[f"zero-phase {fmt(c)}"] = (lambda cc: lambda p, fps: zero_phase(p, fps, cc))(c)
    return out


def fmt(c: Cutoffs) -> str:
    return f"head {c.head:g}/outline {c.outline:g}/eyes {c.eyes:g}/lips {c.lips:g} Hz"


def driven(track, still_points, fps, smoother):
    """The still's driven points: the render's own smoothing (``nodes.drive``) for the default,
    others applied to the track first, with the neutral frame of the unsmoothed track (as the
    render chooses it)."""
    if smoother is None:
        return drive(track, still_points, smooth=False, fps=fps).points
    if smoother == "render":
        return drive(track, still_points, fps=fps).points
    neutral = drive(track, still_points, smooth=False, fps=fps).neutral
    moved = trackfile.Track(track.frames, smoother(track.points, fps), track.image_size, provenance={})
    return drive(moved, still_points, smooth=False, fps=fps, neutral_frame=neutral).points


def render_level(still, mesh, analyser, points, intended, performer, frames):
    found = {}
    for i in frames:
        p = analyser.near(dense_warp(still, mesh, points[i]).image, intended[i])
        if p is not None:
            found[i] = p
    idx = sorted(found)
    err = float(np.mean([quality.landmark_error(found[i], intended[i]) for i in idx]))
    r = quality.correlation([quality.mouth_opening(found[i]) for i in idx],
                            [quality.mouth_opening(performer[i]) for i in idx])
    return err, r, len(idx)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--validation", action="store_true", help="the validation clips (final figures)")
    ap.add_argument("--sweep", action="store_true", help="also the cutoff grid, track level")
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--held", type=int, default=48, help="frames of the held-head sequence")
    ap.add_argument("--every", type=int, default=2, help="render level: every N-th frame")
    ap.add_argument("--no-render", action="store_true", help="skip the render-level measure")
    a = ap.parse_args()
    clips = [DATA / "clips" / f"{c}.mp4" for c in (VALIDATION if a.validation else CHOOSING)]
    clips = [c for c in clips if c.exists()]
    if not clips or not STILL.exists():
        raise SystemExit(f"benchmarks/smoothing.py: clips not found under {DATA / 'clips'}")
    still = read_still(STILL).srgb
    analyser = quality.FaceAnalyser()
    still_points = create_detector("dlib").detect(still)[0].points
    mesh = build_mesh(still_points, (still.shape[1], still.shape[0]))
    methods = smoothers(a.sweep)
    rows = {m: [] for m in methods}
    for clip in clips:
        fps = probe(clip).fps or 24.0
        track = cached_track(clip, a.frames)
        held = held_head(clip, a.held)
        intended = driven(track, still_points, fps, None)
        performer = np.asarray(track.points, np.float64)
        open_perf = [quality.mouth_opening(p) for p in performer]
        for label, smoother in methods.items():
            pts = driven(track, still_points, fps, smoother)
            held_s = held if smoother is None else (zero_phase(held, fps) if smoother == "render" else smoother(held, fps))
            dev = float(np.mean([quality.landmark_error(p, q) for p, q in zip(pts, intended)]))
            r_track = quality.correlation([quality.mouth_opening(p) for p in pts], open_perf)
            full = not a.no_render and (label.startswith("none") or "default" in label)
            err, r, n = (render_level(still, mesh, analyser, pts, intended, performer, range(0, len(pts), a.every))
                         if full else (np.nan, np.nan, 0))
            rows[label].append((clip.stem, fps, held_jitter(held_s), dev, r_track, err, r, n))
    print(f"{len(clips)} clips x first {a.frames} frames driving {STILL.name}; held head {a.held} frames; "
          f"render level every {a.every} frames")
    head = ("smoother", "clip", "fps", "held jitter", "drop", "track dev", "track mouth r", "render err", "x none",
            "render mouth r", "- none", "faces")
    print("| " + " | ".join(head) + " |\n|---|---|" + "---:|" * (len(head) - 2))
    base = {row[0]: row for row in rows["none (--no-smooth)"]}
    for label, per_clip in rows.items():
        for clip, fps, jit, dev, rt, err, r, n in per_clip:
            b = base[clip]
            print(f"| {label} | {clip} | {fps:.2f} | {jit:.2f} | {1 - jit / b[2]:.0%} | {dev:.4f} | {rt:.3f} | "
                  f"{err:.4f} | {err / b[5]:.2f} | {r:.3f} | {r - b[6]:+.3f} | {n} |")
        m = np.array([row[2:] for row in per_clip], np.float64)
        b = np.array([row[2:] for row in rows["none (--no-smooth)"]], np.float64)
        print(f"| {label} | **mean** | | {m[:, 0].mean():.2f} | {1 - m[:, 0].mean() / b[:, 0].mean():.0%} | "
              f"{m[:, 1].mean():.4f} | {m[:, 2].mean():.3f} | {np.mean(m[:, 3]):.4f} | "
              f"{np.mean(m[:, 3]) / np.mean(b[:, 3]):.2f} | {np.mean(m[:, 4]):.3f} | "
              f"{np.mean(m[:, 4]) - np.mean(b[:, 4]):+.3f} | |")


if __name__ == "__main__":
    main()
