"""Meta-learning (paper §3.2): episodes of K frames + 1 target update E and G, then D.

One run is a folder::

    RUN/run.json                         model config, train config, data folder and videos
    RUN/losses.csv                       one row per step, rewritten at each checkpoint
    RUN/checkpoints/step_0000500/        checkpoint folder (models/checkpoint.py) + preview.png

A re-run of the same command resumes from the newest checkpoint and continues exactly: episode
sampling is a pure function of (seed, step, rank) and the optimiser state is restored, so the
next losses are the ones an uninterrupted run would have logged. Under ``torchrun`` the networks
are wrapped in DistributedDataParallel (gloo on CPU, NCCL on CUDA); only rank 0 writes.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from monalisa.errors import CheckpointError, ConfigError
from monalisa.files import write_bytes, write_json, write_text
from monalisa.models.checkpoint import build_models, load_checkpoint, restore_optimizers, save_checkpoint
from monalisa.models.config import ModelConfig, OptimConfig
from monalisa.models.data import PreparedData, episode_batch
from monalisa.models.losses import ContentLoss, LossWeights, discriminator_losses, generator_losses

log = logging.getLogger(__name__)

COLUMNS = ("step", "g_total", "content", "adv", "fm", "match", "d_total", "d_real", "d_fake", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000  # total optimisation steps of the run
    batch_size: int = 2  # episodes per step (per process)
    k: int = 8  # reference frames per episode
    seed: int = 0
    checkpoint_every: int = 500
    keep: int = 3  # newest checkpoints kept on disk
    amp: bool = True  # mixed precision, CUDA only
    optim: OptimConfig = OptimConfig()

    def __post_init__(self):
        if self.k < 1:
            raise ConfigError(f"K (reference frames per episode) must be at least 1, got {self.k}")
        if min(self.steps, self.batch_size, self.checkpoint_every, self.keep) < 1:
            raise ConfigError("steps, batch size, checkpoint interval and keep must be at least 1")


class MetaLearner:
    """E, G, D and their optimisers; ``step(batch)`` is one meta-learning update."""

    def __init__(self, config: ModelConfig, train: TrainConfig, device="cpu", content: ContentLoss | None = None,
                 weights: LossWeights = LossWeights(), nets=None, distributed=False):
        from monalisa.models.discriminator import Discriminator
        from monalisa.models.embedder import Embedder
        from monalisa.models.generator import Generator

        self.config, self.train_cfg, self.device, self.weights = config, train, torch.device(device), weights
        nets = nets or (Embedder(config), Generator(config), Discriminator(config))
        self.E, self.G, self.D = (n.to(self.device).train() for n in nets)
        self.content = (content or ContentLoss(weights=weights)).to(self.device)
        o = train.optim
        self.opt_eg = torch.optim.Adam([*self.E.parameters(), *self.G.parameters()], lr=o.lr_eg, betas=o.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=o.betas)
        self.amp = bool(train.amp and self.device.type == "cuda")
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.e_run, self.g_run, self.d_run = self.E, self.G, self.D
        if distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.e_run, self.g_run, self.d_run = (DDP(n, device_ids=ids) for n in (self.E, self.G, self.D))

    @property
    def optimizers(self) -> dict:
        return {"eg": self.opt_eg, "d": self.opt_d}

    def step(self, batch: dict) -> dict:
        """One update of E+G (content, adversarial, feature matching, embedding match of e_hat to
        the video's W_i), then of D (hinge; W_i learns through D's score only)."""
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        x, y, idx = b["images"], b["rasters"], b["video"]
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            e_hat = self.e_run(b["ref_images"], b["ref_rasters"])  # (B, E)
            fake = self.g_run(y, e_hat)  # (B, 3, R, R)
            # G's step scores through the plain D: its gradients on D are dropped before D's own step
            r_fake, fake_feats = self.D(fake, y, idx)
            with torch.no_grad():
                _, real_feats = self.D(x, y, idx)
            g = generator_losses(fake.float(), x, r_fake.float(), fake_feats, real_feats, self.D.W[idx].detach(),
                                 e_hat.float(), self.content, self.weights)
        self.opt_eg.zero_grad(set_to_none=True)
        self.scaler_g.scale(g["total"]).backward()
        self.scaler_g.step(self.opt_eg)
        self.scaler_g.update()

        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            scores, _ = self.d_run(torch.cat([x, fake.detach()]), torch.cat([y, y]), torch.cat([idx, idx]))
            d = discriminator_losses(*scores.float().chunk(2))
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(d["total"]).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        self.last_fake = fake.detach()
        out = {f"g_{k}" if k == "total" else k: v.item() for k, v in g.items()}
        out.update({f"d_{k}": v.item() for k, v in d.items()})
        return out


def _rank() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _device(name: str, distributed: bool) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device visible to torch; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if distributed else 0)
    return torch.device(name)


def latest_checkpoint(run_dir) -> Path | None:
    found = sorted((Path(run_dir) / "checkpoints").glob("step_*[0-9]"))
    return found[-1] if found else None


def read_losses(run_dir, upto: int) -> list[dict]:
    path = Path(run_dir) / "losses.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if int(row["step"]) <= upto]


def _write_losses(run_dir, rows) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(Path(run_dir) / "losses.csv", buf.getvalue())


def preview_png(batch: dict, fake: torch.Tensor, count: int = 4) -> bytes:
    """Contact sheet, one row per episode: target | its raster | the generated frame."""
    import cv2

    to_u8 = lambda t: ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    rows = [np.concatenate([to_u8(batch["images"][i]), to_u8(batch["rasters"][i]), to_u8(fake[i])], axis=1)
            for i in range(min(count, len(fake)))]
    _, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
    return png.tobytes()


def train(data_dir, run_dir, config: ModelConfig, cfg: TrainConfig = TrainConfig(), *, device: str = "auto",
          content: ContentLoss | None = None, progress: bool = True) -> dict:
    """Meta-train (or resume) a run; returns {"step", "losses" (last row), "checkpoint"}."""
    rank, world = _rank()
    distributed = world > 1
    dev = _device(device, distributed)
    own_group = distributed and not torch.distributed.is_initialized()
    if own_group:
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    run_dir = Path(run_dir)
    data = PreparedData(data_dir)
    videos = [v.id for v in data.videos]
    config = dataclasses.replace(config, num_videos=len(videos))
    if config.resolution > data.size:
        log.warning("model resolution %d is above the prepared size %d: frames are upscaled", config.resolution, data.size)
    torch.manual_seed(cfg.seed)
    nets, start, resume = None, 0, latest_checkpoint(run_dir)
    if resume is not None:
        ckpt = load_checkpoint(resume, expect_config=config)
        if ckpt.meta.get("videos") != videos:
            raise CheckpointError(f"{resume}: trained on videos {ckpt.meta.get('videos')}, but {data_dir} has "
                                  f"{videos}; use a new --out folder for different data")
        nets, start = build_models(ckpt), ckpt.step
    learner = MetaLearner(config, cfg, dev, content, nets=nets, distributed=distributed)
    rows = []
    if resume is not None:
        restore_optimizers(ckpt, learner.optimizers)
        rows = read_losses(run_dir, start)
        if rank == 0:
            log.info("resuming %s from step %d", run_dir, start)
    if rank == 0:
        write_json(run_dir / "run.json", {"model": config.to_dict(), "train": dataclasses.asdict(cfg),
                                          "data": str(data_dir), "videos": videos, "world_size": world})
    last = rows[-1] if rows else {}
    saved = resume
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train", unit="step",
               disable=not progress or rank != 0)
    for s in bar:
        t0 = time.perf_counter()
        batch = episode_batch(data, s, cfg.batch_size, cfg.k, config.resolution, cfg.seed, rank)
        losses = learner.step(batch)
        last = {"step": s + 1, **{k: f"{v:.6g}" for k, v in losses.items()},
                "seconds": f"{time.perf_counter() - t0:.4f}"}
        rows.append(last)
        bar.set_postfix(g=last["g_total"], d=last["d_total"])
        done = s + 1
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            saved = _save(run_dir, learner, config, done, videos, last, preview_png(batch, learner.last_fake), cfg.keep)
            _write_losses(run_dir, rows)
    if distributed:
        torch.distributed.barrier()
    if own_group:
        torch.distributed.destroy_process_group()
    return {"step": max(start, cfg.steps), "losses": last, "checkpoint": saved}


def _save(run_dir, learner: MetaLearner, config, step, videos, last, preview: bytes, keep: int) -> Path:
    folder = Path(run_dir) / "checkpoints" / f"step_{step:07d}"
    metrics = {k: float(v) for k, v in last.items() if k != "step"}
    save_checkpoint(folder, learner.E, learner.G, learner.D, config, step, optimizers=learner.optimizers,
                    extra={"videos": videos, "metrics": metrics})
    write_bytes(folder / "preview.png", preview)  # beside a finished checkpoint; not part of its hash
    for old in sorted((Path(run_dir) / "checkpoints").glob("step_*[0-9]"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def export_reference(checkpoint, out) -> str:
    """Copy a checkpoint's weights in float16, without optimiser state: compact reference weights."""
    ckpt = load_checkpoint(checkpoint)
    E, G, D = build_models(ckpt)
    extra = {k: ckpt.meta[k] for k in ("videos", "metrics") if k in ckpt.meta}
    extra["source_checkpoint_sha256"] = ckpt.sha256
    return save_checkpoint(out, E, G, D, ckpt.config, ckpt.step, extra=extra, dtype=torch.float16)

