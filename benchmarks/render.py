"""Render throughput and memory: the whole node (`monalisa render`) vs the generator alone, same run.

    python benchmarks/render.py                      # 100 and 1000 frames, bundled painting and clip
    python benchmarks/render.py --frames 50 200      # quicker

The driving track is the bundled clip's (64 frames) played back and forth to the length asked for.
The model is the bundled 64 px reference model, feed-forward (the render's default warp model runs no
network without an identity). Rows: generator-only fps (that generator on the same rasters, same batch size), node fps
(track -> warp -> generator -> paste-back -> EXR on disk), their ratio, and each render's peak
resident memory, measured in a child process per frame count (ratio of the longest to the shortest).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STILL = REPO / "assets" / "portraits" / "liveportrait_s3.jpg"
CLIP = REPO / "assets" / "clips" / "liveportrait_d10.mp4"
MODEL = "reference"


def long_track(n: int, folder: Path) -> Path:
    """The bundled clip's track played back and forth to ``n`` frames (1001...)."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.track import track_plate

    cache = folder / "clip_track.json"
    if not cache.is_file():
        trackfile.save(track_plate(str(CLIP)), cache)
    base = trackfile.load(cache)
    order = np.concatenate([np.arange(len(base.frames)), np.arange(len(base.frames) - 2, 0, -1)])
    rows = order[np.arange(n) % len(order)]
    track = trackfile.Track(np.arange(1001, 1001 + n), base.points[rows], base.image_size,
                            provenance={"source": str(CLIP), "looped": n})
    path = folder / f"track_{n}.json"
    trackfile.save(track, path)
    return path


def child(n: int, folder: Path, batch: int, threads: int) -> dict:
    """Render ``n`` frames in this process; report fps and peak RSS."""
    from monalisa.nodes.render import RenderJob, render_sequence

    track = long_track(n, folder)
    job = RenderJob(still=str(STILL), track=str(track), out=str(folder / f"out_{n}" / "f.####.exr"), batch=batch,
                    threads=threads, model=MODEL)
    start = time.perf_counter()
    summary = render_sequence(job, report=lambda line: None)
    seconds = time.perf_counter() - start
    return {"frames": n, "written": summary.written, "render_s": summary.seconds, "total_s": seconds,
            "fps": summary.written / summary.seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def generator_only(n: int, folder: Path, batch: int, threads: int) -> float:
    """fps of the bundled feed-forward generator alone on the same rasters."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.drive import drive
    from monalisa.nodes.facecrop import model_crop, to_model
    from monalisa.nodes.media import read_still
    from monalisa.nodes.models import load_render_model
    from monalisa.nodes.node import still_landmarks

    still = read_still(STILL)
    points = still_landmarks(still)
    model = load_render_model(MODEL, threads=threads)
    driving = drive(trackfile.load(long_track(n, folder)), points)
    rasters = to_model(np.stack([model_crop(None, p, model.crop).raster for p in driving.points]))
    crop = model_crop(still.srgb, points, model.crop)
    emb = model.embed(to_model(crop.image[None]), to_model(crop.raster[None]))
    model.generate(rasters[:batch], emb)  # warm-up
    start = time.perf_counter()
    for i in range(0, n, batch):
        model.generate(rasters[i:i + batch], emb)
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=[100, 1000], help="frame counts (default 100 1000)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.batch, args.threads)))
        return 0
    import onnxruntime
    import platform

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = []
        for n in args.frames:
            gen_fps = generator_only(n, folder, args.batch, args.threads)
            cmd = [sys.executable, __file__, "--child", str(n), "--folder", str(folder), "--batch", str(args.batch),
                   "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["generator_fps"] = gen_fps
            rows.append(row)
    print(f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} cores, "
          f"batch {args.batch}, still {STILL.name} (564x729), bundled 64 px feed-forward model")
    print("| frames | generator-only fps | node fps (EXR on disk) | node / generator | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['frames']} | {r['generator_fps']:.1f} | {r['fps']:.2f} | {r['fps'] / r['generator_fps']:.3f} | "
              f"{r['peak_rss_mb']:.0f} |")
    if len(rows) > 1:
        print(f"peak RSS {rows[-1]['frames']} vs {rows[0]['frames']} frames: "
              f"{rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
