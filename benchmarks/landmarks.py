"""Landmark smoothing (jitter / lag per clip) and dlib NME on landmarks_gt.

python benchmarks/landmarks.py [--frames 150] [--min-cutoff 1.0] [--beta 1.0]
Raw tracks are cached under runs/landmarks/ (git-ignored).
"""

import argparse
import pathlib

import numpy as np

from monalisa.nodes import trackfile
from monalisa.nodes.detect import create_detector
from monalisa.nodes.landmarks import inter_ocular
from monalisa.nodes.media import probe, read_image
from monalisa.nodes.smooth import OneEuro, jitter, lag, one_euro
from monalisa.nodes.track import track_plate

DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIPS = ("liveportrait_d0.mp4", "liveportrait_d6.mp4", "liveportrait_d10.mp4", "tpsmm_driving.mp4")


def cached_track(clip, frames):
    out = pathlib.Path("runs/landmarks") / f"{clip.stem}_{frames}.json"
    if out.exists():
        return trackfile.load(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tr = track_plate(clip, end=frames - 1)
    trackfile.save(tr, out)
    return tr


def fast_lag(raw, smooth):
    """Lag on the fastest-moving 30-frame window (head motion = mean point)."""
    c = raw.mean(axis=1)
    speed = np.linalg.norm(np.diff(c, axis=0), axis=1)
    w = 30
    i = int(np.argmax(np.convolve(speed, np.ones(w), "valid")))
    return lag(raw[i:i + w + 1], smooth[i:i + w + 1], max_lag=5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--min-cutoff", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=1.0)
    a = ap.parse_args()
    params = OneEuro(a.min_cutoff, a.beta)
    print(f"One-Euro min_cutoff={a.min_cutoff} beta={a.beta}, first {a.frames} frames")
    print(f"{'clip':28s} {'fps':>5s} {'jitter raw':>10s} {'smoothed':>9s} {'drop':>6s} {'lag all':>7s} {'lag fast':>8s} {'filled':>6s}")
    for name in CLIPS:
        clip = DATA / "clips" / name
        if not clip.exists():
            continue
        tr = cached_track(clip, a.frames)
        fps = probe(clip).fps or 25.0
        sm = one_euro(tr.points, fps, params)
        jr, js = jitter(tr.points), jitter(sm)
        print(f"{name:28s} {fps:5.1f} {jr:10.3f} {js:9.3f} {1 - js / jr:6.1%} {lag(tr.points, sm):7d} {fast_lag(tr.points, sm):8d} {int(tr.filled.sum()):6d}")
    det = create_detector("dlib", upsample=1, threshold=-0.5)
    print("\ndlib NME (mean point error / inter-ocular, outer eye corners)")
    errs = []
    for pts_file in sorted((DATA / "landmarks_gt").glob("*.pts")):
        img = next(p for p in pts_file.parent.glob(pts_file.stem + ".*") if p.suffix in (".jpg", ".png"))
        gt = np.array(pts_file.read_text().split("{")[1].split("}")[0].split(), float).reshape(68, 2) - 1
        faces = det.detect(read_image(img))
        f = min(faces, key=lambda f: np.linalg.norm(f.points.mean(0) - gt.mean(0)))
        errs.append(np.linalg.norm(f.points - gt, axis=1).mean() / inter_ocular(gt))
        print(f"{pts_file.stem:28s} {errs[-1]:.4f}")
    print(f"{'mean':28s} {np.mean(errs):.4f}")


if __name__ == "__main__":
    main()
