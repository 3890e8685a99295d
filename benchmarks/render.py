"""Render throughput and memory of the default model's path: the whole node (`monalisa render`) vs
its network alone, same run.

    python benchmarks/render.py                      # 100 and 1000 frames, bundled painting and clip
    python benchmarks/render.py --frames 50 200      # quicker

The driving track is the bundled clip's (64 frames) played back and forth to the length asked for.
The model is the render's default, the bundled 256 px warp model, with the default mouth (on), in
two settings: correction 0, the default without an identity (the landmark warp alone, no network
runs), and correction 1, what a render with an identity runs (the per-frame warp generator on every
frame; here its generic file with the still's feed-forward embedding, the same graph as an
identity's baked file plus the psi projection). Rows: the network alone (the warp generator on the
same crops, same batch size), node fps (track -> warp -> network -> composite -> mouth -> EXR on
disk), node / network, and each render's peak resident memory, measured in a child process per
frame count and setting (ratio of the longest to the shortest).
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
MODEL = "warp"  # nodes.models.DEFAULT_MODEL, named so the table says what it measured
SETTINGS = {"0": "warp alone (default, no identity)", "1": "warp + correction (as with an identity)"}


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


def child(n: int, folder: Path, batch: int, threads: int, correction: str) -> dict:
    """Render ``n`` frames in this process at this correction weight; report fps and peak RSS."""
    from monalisa.nodes.render import RenderJob, render_sequence

    track = long_track(n, folder)
    job = RenderJob(still=str(STILL), track=str(track), out=str(folder / f"out_{n}_{correction}" / "f.####.exr"),
                    batch=batch, threads=threads, model=MODEL, correction=float(correction))
    start = time.perf_counter()
    summary = render_sequence(job, report=lambda line: None)
    seconds = time.perf_counter() - start
    return {"frames": n, "written": summary.written, "render_s": summary.seconds, "total_s": seconds,
            "fps": summary.written / summary.seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def network_only(n: int, folder: Path, batch: int, threads: int) -> float:
    """fps of the default model's per-frame network alone (the warp generator) on the node's crops:
    each frame's raster and the still warped to that frame, cut by the model crop."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.drive import drive
    from monalisa.nodes.facecrop import model_crop, to_model
    from monalisa.nodes.media import read_still
    from monalisa.nodes.models import default_model_dir, load_render_model
    from monalisa.nodes.node import still_landmarks
    from monalisa.nodes.warp import apply_flow, build_mesh, warp_field

    still = read_still(STILL)
    points = still_landmarks(still)
    model = load_render_model(default_model_dir(MODEL), threads=threads)
    assert model.warp, f"the {MODEL} model is not a warp model"
    driving = drive(trackfile.load(long_track(n, folder)), points)
    mesh = build_mesh(points, still.size)
    srgb = still.srgb.astype(np.float32) / 255.0
    crops = []
    for p in driving.points[:min(n, 64)]:  # the looped track repeats every 126 frames; 64 distinct crops
        warped = np.clip(np.round(apply_flow(srgb, warp_field(mesh, p)[0]) * 255.0), 0, 255).astype(np.uint8)
        crops.append(model_crop(warped, p, model.crop))
    rasters = to_model(np.stack([c.raster for c in crops]))
    images = to_model(np.stack([c.image for c in crops]))
    still_crop = model_crop(still.srgb, points, model.crop)
    emb = model.embed(to_model(still_crop.image[None]), to_model(still_crop.raster[None]))
    model.correct(rasters[:batch], images[:batch], emb)  # warm-up
    start = time.perf_counter()
    for i in range(0, n, batch):
        j = np.arange(i, min(i + batch, n)) % len(crops)
        model.correct(rasters[j], images[j], emb)
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=[100, 1000], help="frame counts (default 100 1000)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    p.add_argument("--correction", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.batch, args.threads, args.correction)))
        return 0
    import onnxruntime
    import platform

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = []
        for n in args.frames:
            net_fps = network_only(n, folder, args.batch, args.threads)
            for correction in sorted(SETTINGS):
                cmd = [sys.executable, __file__, "--child", str(n), "--folder", str(folder), "--batch",
                       str(args.batch), "--threads", str(args.threads), "--correction", correction]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ})
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row.update(network_fps=net_fps, setting=SETTINGS[correction])
                rows.append(row)
    print(f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} cores, "
          f"batch {args.batch}, still {STILL.name} (564x729), bundled {MODEL} model (256 px), mouth on")
    print("| frames | setting | network-only fps | node fps (EXR on disk) | node / network | peak RSS MB |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['frames']} | {r['setting']} | {r['network_fps']:.1f} | {r['fps']:.2f} | "
              f"{r['fps'] / r['network_fps']:.3f} | {r['peak_rss_mb']:.0f} |")
    for setting in SETTINGS.values():
        mine = [r for r in rows if r["setting"] == setting]
        if len(mine) > 1:
            print(f"peak RSS {mine[-1]['frames']} vs {mine[0]['frames']} frames, {setting}: "
                  f"{mine[-1]['peak_rss_mb'] / mine[0]['peak_rss_mb']:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
