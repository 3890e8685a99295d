"""Meta-learning step speed: steps/s of the small and paper configs (CPU; CUDA when present).

    python benchmarks/train_step.py [--configs small medium paper] [--steps 5] [--batch 2] [--k 8]

Each row times full MetaLearner.step calls (E on K frames, G, D, both optimiser updates, L1 +
MS-SSIM content loss) on synthetic episodes after one warm-up step; median of --steps.
"""
import argparse
import statistics
import time

import torch

from monalisa.models.config import get_config
from monalisa.models.meta import MetaLearner, TrainConfig


def episode(cfg, batch, k, device):
    r = cfg.resolution
    g = torch.Generator().manual_seed(0)
    rand = lambda *s: (torch.rand(*s, generator=g) * 2 - 1).to(device)  # noqa: E731
    return {"ref_images": rand(batch, k, 3, r, r), "ref_rasters": rand(batch, k, 3, r, r),
            "images": rand(batch, 3, r, r), "rasters": rand(batch, 3, r, r),
            "video": torch.zeros(batch, dtype=torch.long, device=device)}


def time_steps(name, device, steps, batch, k):
    cfg = get_config(name)
    learner = MetaLearner(cfg, TrainConfig(batch_size=batch, k=k), device)
    data = episode(cfg, batch, k, device)
    learner.step(data)  # warm-up
    times = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        learner.step(data)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["small", "paper"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--k", type=int, default=8)
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} episodes, K={args.k}")
    print("| config | resolution | device | median s/step | steps/s | ratio vs small (same device) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for device in devices:
        base = None
        for name in args.configs:
            s = time_steps(name, device, args.steps, args.batch, args.k)
            base = base or s
            print(f"| {name} | {get_config(name).resolution} | {device} | {s:.3f} | {1 / s:.2f} | {s / base:.1f}x |",
                  flush=True)


if __name__ == "__main__":
    main()
