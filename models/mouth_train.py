"""Train the mouth-interior network (``models.mouth``) on prepared clips; resumable, checkpointed.

  python -m monalisa.models.mouth_train --data runs/prep --out runs/mouth --steps 3000

Writes OUT/model.safetensors + OUT/mouth.json (config, step, data, wall time) every ``--every``
steps and at the end, and OUT/optimizer.safetensors to resume: re-running the same command goes on
from the last checkpoint. Losses live here, outside the network: L1 on the hole's pixels plus L1 on
their horizontal and vertical differences (edges of teeth and lips), both normalised by hole area.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from monalisa.files import write_json
from monalisa.models.mouth import MouthConfig, MouthNet
from monalisa.models.mouth_data import batch, load_patches

log = logging.getLogger(__name__)


def hole_loss(pred, target, hole, grad_weight: float = 0.5) -> torch.Tensor:
    """L1 inside the hole, plus L1 of the image gradients across it."""
    area = hole.sum().clamp(min=1.0)
    l1 = ((pred - target).abs() * hole).sum() / (3 * area)
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    hx = torch.maximum(hole[..., :, 1:], hole[..., :, :-1])
    hy = torch.maximum(hole[..., 1:, :], hole[..., :-1, :])
    grad = (((dx(pred) - dx(target)).abs() * hx).sum() + ((dy(pred) - dy(target)).abs() * hy).sum()) / (6 * area)
    return l1 + grad_weight * grad


def save(out: Path, net, opt, step: int, info: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "model.safetensors.tmp"))
    (out / "model.safetensors.tmp").replace(out / "model.safetensors")
    state = {}
    for name, p in net.named_parameters():
        s = opt.state.get(p, {})
        if s:
            state[f"{name}.exp_avg"], state[f"{name}.exp_avg_sq"] = s["exp_avg"], s["exp_avg_sq"]
            state[f"{name}.step"] = torch.as_tensor(s["step"], dtype=torch.float32).reshape(1)
    save_file(state, str(out / "optimizer.safetensors.tmp"))
    (out / "optimizer.safetensors.tmp").replace(out / "optimizer.safetensors")
    write_json(out / "mouth.json", {**info, "step": step, "config": net.cfg.to_dict()})


def resume(out: Path, net, opt) -> int:
    from safetensors.torch import load_file

    if not (out / "mouth.json").is_file():
        return 0
    info = json.loads((out / "mouth.json").read_text())
    net.load_state_dict(load_file(str(out / "model.safetensors")))
    state = load_file(str(out / "optimizer.safetensors"))
    for name, p in net.named_parameters():
        if f"{name}.exp_avg" in state:
            opt.state[p] = {"exp_avg": state[f"{name}.exp_avg"], "exp_avg_sq": state[f"{name}.exp_avg_sq"],
                            "step": state[f"{name}.step"].reshape(())}
    return int(info["step"])


def train(data, out, steps: int, batch_size: int = 16, lr: float = 5e-4, every: int = 100, seed: int = 0,
          cfg: MouthConfig = MouthConfig(width=16)) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    out = Path(out)
    patches, holes, ids = load_patches(data, cfg.resolution, seed=seed)
    log.info("%d patches from %d clips", len(patches), len(set(ids)))
    net = MouthNet(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.99))
    step = resume(out, net, opt)
    prior = json.loads((out / "mouth.json").read_text()).get("wall_seconds", 0.0) if step else 0.0
    rng = np.random.default_rng(seed + step)
    info = {"data": [str(d) for d in data], "clips": sorted(set(ids)), "patches": len(patches),
            "batch": batch_size, "lr": lr}
    start, running = time.perf_counter(), []
    while step < steps:
        for g in opt.param_groups:  # a tenth of the rate for the last fifth
            g["lr"] = lr if step < 0.8 * steps else lr / 10
        x, y, h = (torch.from_numpy(a) for a in batch(patches, holes, rng.integers(0, len(patches), batch_size), rng))
        loss = hole_loss(net(x), y, h)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        running.append(float(loss.detach()))
        if step % 50 == 0:
            log.info("step %d loss %.4f (%.2f s/step)", step, np.mean(running), (time.perf_counter() - start) / 50)
            running, start, prior = [], time.perf_counter(), prior + time.perf_counter() - start
        if step % every == 0 or step == steps:
            save(out, net, opt, step, {**info, "wall_seconds": prior + time.perf_counter() - start})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m monalisa.models.mouth_train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", type=Path, required=True, help="prepared folders (monalisa prepare)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(args.data, args.out, args.steps, args.batch, args.lr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
