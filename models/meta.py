"""Meta-learning (paper §3.2): episodes of K frames + 1 target update E and G, then D.

One trainer for both generators (``ModelConfig.generator``): the plain G(y, e) and the
warp-conditioned G(y, warped still, e) -> correction, mask (models/warpgen.py), whose episodes also
carry the warped still (models/data.py) and whose loss adds the direct term (warped + correction
alone against the target: the correction learns even where the mask is still closed) and, with
``steady_weight``, the steadiness term (its part, mask * correction, must not change when the
target's landmarks jitter by a pixel: a tracker's noise must not make the face flicker).

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

import contextlib
import csv
import dataclasses
import io
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from monalisa.errors import CheckpointError, ConfigError
from monalisa.files import check_out_dir, remove_stale_temps, write_bytes, write_json, write_text
from monalisa.models.checkpoint import build_models, load_checkpoint, restore_optimizers, save_checkpoint, warm_start
from monalisa.models.config import ModelConfig, OptimConfig
from monalisa.models.data import PreparedData, episode_batch
from monalisa.models.losses import ContentLoss, LossWeights, warp_terms
from monalisa.models.tensors import to_uint8
from monalisa.models.update import content_update, gan_update
from monalisa.models.warpgen import compose
from monalisa.nodes.facecrop import CropGeometry
from monalisa.nodes.sheet import contact_sheet

log = logging.getLogger(__name__)

COLUMNS = ("step", "g_total", "content", "adv", "fm", "match", "direct", "steady", "d_total", "d_real", "d_fake",
           "fake_l1", "warp_l1", "seconds")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000  # total optimisation steps of the run
    batch_size: int = 2  # episodes per step (per process)
    k: int = 8  # reference frames per episode
    seed: int = 0
    checkpoint_every: int = 500
    keep: int = 3  # newest checkpoints kept on disk
    amp: bool = True  # mixed precision, CUDA only
    adversarial: bool = True  # False: content loss only, no D step (the fast CPU setting)
    direct_weight: float = 1.0  # warp generator: L1 of warped + correction alone against the target
    steady_weight: float = 0.0  # warp generator: L1 of the change of mask * correction under landmark jitter
    jitter_px: float = 1.0  # landmark noise of the steadiness term, prepared-square px
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
        from monalisa.models.checkpoint import build_networks

        self.config, self.train_cfg, self.device, self.weights = config, train, torch.device(device), weights
        self.warp = config.generator == "warp"
        nets = nets or build_networks(config)
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

    def generate(self, b: dict):
        """-> (fake (B, 3, R, R), e_hat, extra loss terms of the generator)."""
        e_hat = self.e_run(b["ref_images"], b["ref_rasters"])  # (B, E)
        if not self.warp:
            return self.g_run(b["rasters"], e_hat), e_hat, {}
        w, cfg = b["warped"], self.train_cfg
        correction, mask = self.g_run(b["rasters"], w, e_hat)
        jittered = self.g_run(b["jitter_rasters"], b["jitter_warped"], e_hat) if cfg.steady_weight > 0 else None
        extra = warp_terms(w, b["images"], correction, mask, jittered, cfg.direct_weight, cfg.steady_weight)
        return compose(w, correction, mask), e_hat, extra

    def step(self, batch: dict) -> dict:
        """One update of E+G (content, adversarial, feature matching, embedding match of e_hat to
        the video's W_i, the warp generator's terms), then of D (hinge; W_i learns through D's score
        only): models/update.py. Without ``adversarial``: content (+ the warp terms) only."""
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        x, y, idx = b["images"], b["rasters"], b["video"]
        autocast = lambda: torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)  # noqa: E731
        with autocast():
            fake, e_hat, extra = self.generate(b)  # (B, 3, R, R)
        extra = {k: v.float() for k, v in extra.items()}
        if self.train_cfg.adversarial:
            # G's step scores through the plain D (its gradients on D are dropped before D's own step);
            # D's step through the DDP wrapper, on real and fake together (idx repeated to match)
            g, d = gan_update(fake, x, y, score_g=lambda im, r: self.D(im, r, idx.repeat(len(im) // len(idx))),
                              score_d=lambda im, r: self.d_run(im, r, idx.repeat(len(im) // len(idx))),
                              opt_g=self.opt_eg, opt_d=self.opt_d, content=self.content, weights=self.weights,
                              match=(self.D.W[idx].detach(), e_hat), scalers=(self.scaler_g, self.scaler_d),
                              autocast=autocast, extra=extra)
        else:
            g, d = content_update(fake, x, opt_g=self.opt_eg, content=self.content, extra=extra,
                                  scaler=self.scaler_g), {}
        self.last_fake = fake.detach()
        out = {f"g_{k}" if k == "total" else k: v.item() for k, v in g.items()}
        out.update({f"d_{k}": v.item() for k, v in d.items()})
        out["fake_l1"] = (self.last_fake.float() - x).abs().mean().item()
        if self.warp:  # the warp's own error on this batch, for comparison
            out["warp_l1"] = (b["warped"] - x).abs().mean().item()
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
    """Contact sheet, one row per episode: target | its raster | (the warped still |) the generated frame."""
    n = min(count, len(fake))
    columns = [batch["images"], batch["rasters"], *([batch["warped"]] if "warped" in batch else []), fake]
    columns = [to_uint8(t[:n]) for t in columns]
    return contact_sheet([list(row) for row in zip(*columns)])


RUN_FILES = ("run.json", "losses.csv", "checkpoints")  # what monalisa writes in a run folder


@contextlib.contextmanager
def process_group(dev: torch.device, distributed: bool):
    """Join (or, under torchrun, create) the process group; what this created is torn down in finally."""
    own = distributed and not torch.distributed.is_initialized()
    if own:
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    try:
        yield
        if distributed:
            torch.distributed.barrier()
    finally:
        if own:
            torch.distributed.destroy_process_group()


def check_data(data: PreparedData, cfg: TrainConfig, config: ModelConfig) -> CropGeometry:
    """Refuse (one line) data the run cannot use, before any network is built; -> the crop geometry."""
    name, frames = data.min_frames()
    if cfg.k >= frames:
        raise ConfigError(f"--k {cfg.k}: clip {name} has only {frames} frames, an episode needs K + 1 = "
                          f"{cfg.k + 1}; use --k {max(1, frames - 1)} or less, or prepare more frames")
    return data.geometry(config.resolution)


def resume(run_dir: Path, config: ModelConfig, videos: list, data_dir, init=None):
    """-> (nets or None, step, checkpoint or None): the newest checkpoint of the run, checked
    against this run's config and videos; a run with none starts from ``init`` (a checkpoint,
    ``models.checkpoint.warm_start``) when given."""
    found = latest_checkpoint(run_dir)
    if found is None:
        return (None if init is None else warm_start(config, load_checkpoint(init))), 0, None
    ckpt = load_checkpoint(found, expect_config=config)
    if ckpt.meta.get("videos") != videos:
        raise CheckpointError(f"{found}: trained on videos {ckpt.meta.get('videos')}, but {data_dir} has "
                              f"{videos}; use a new --out folder for different data")
    return build_models(ckpt), ckpt.step, ckpt


def train(data_dir, run_dir, config: ModelConfig, cfg: TrainConfig = TrainConfig(), *, device: str = "auto",
          content: ContentLoss | None = None, progress: bool = True, overwrite: bool = False, init=None) -> dict:
    """Meta-train (or resume) a run; returns {"step", "losses" (last row), "checkpoint"}. A new run
    starts from the checkpoint ``init`` when given (e.g. warp_small's weights grown into warp).

    Checked first, before any network is built: the run folder (refused when it holds files
    monalisa did not write, unless ``overwrite``), the data, K against the shortest clip."""
    rank, world = _rank()
    distributed = world > 1
    dev = _device(device, distributed)
    run_dir = check_out_dir(run_dir, RUN_FILES, overwrite=overwrite)
    init = None if init is None else load_checkpoint(init).path  # a bad --init: one line, before any work
    data = PreparedData(data_dir)
    videos = [v.id for v in data.videos]
    config = dataclasses.replace(config, num_videos=len(videos))
    geometry = check_data(data, cfg, config)
    if rank == 0:
        for folder in (run_dir, run_dir / "checkpoints"):
            remove_stale_temps(folder)
    with process_group(dev, distributed):
        torch.manual_seed(cfg.seed)
        nets, start, ckpt = resume(run_dir, config, videos, data_dir, init)
        learner = MetaLearner(config, cfg, dev, content, nets=nets, distributed=distributed)
        rows = []
        if ckpt is not None:
            restore_optimizers(ckpt, learner.optimizers)
            rows = read_losses(run_dir, start)
            if rank == 0:
                log.info("resuming %s from step %d", run_dir, start)
        if rank == 0:
            write_json(run_dir / "run.json", {"model": config.to_dict(), "train": dataclasses.asdict(cfg),
                                              "data": str(data_dir), "videos": videos, "world_size": world,
                                              "crop": geometry.to_dict(), "init": None if init is None else str(init)})
        saved = ckpt.path if ckpt is not None else None
        last, saved = _loop(learner, data, run_dir, config, cfg, start, rows, videos, geometry, rank, progress, saved)
    return {"step": max(start, cfg.steps), "losses": last, "checkpoint": saved}


def _loop(learner, data, run_dir, config, cfg, start, rows, videos, geometry, rank, progress, saved):
    """Steps start..cfg.steps; rank 0 saves a checkpoint every cfg.checkpoint_every and at the end."""
    last = rows[-1] if rows else {}
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train", unit="step",
               disable=not progress or rank != 0)
    for s in bar:
        t0 = time.perf_counter()
        batch = episode_batch(data, s, cfg.batch_size, cfg.k, config.resolution, cfg.seed, rank,
                              warped=config.generator == "warp", jitter_px=cfg.jitter_px * (cfg.steady_weight > 0))
        losses = learner.step(batch)
        last = {"step": s + 1, **{k: f"{v:.6g}" for k, v in losses.items()},
                "seconds": f"{time.perf_counter() - t0:.4f}"}
        rows.append(last)
        bar.set_postfix(g=last["g_total"], d=last.get("d_total", "-"))
        done = s + 1
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            saved = _save(run_dir, learner, config, done, videos, last, preview_png(batch, learner.last_fake),
                          cfg.keep, geometry)
            _write_losses(run_dir, rows)
    return last, saved


def _save(run_dir, learner: MetaLearner, config, step, videos, last, preview: bytes, keep: int,
          geometry: CropGeometry) -> Path:
    folder = Path(run_dir) / "checkpoints" / f"step_{step:07d}"
    metrics = {k: float(v) for k, v in last.items() if k != "step"}
    save_checkpoint(folder, learner.E, learner.G, learner.D, config, step, optimizers=learner.optimizers,
                    extra={"videos": videos, "metrics": metrics, "crop": geometry.to_dict()})
    write_bytes(folder / "preview.png", preview)  # beside a finished checkpoint; not part of its hash
    for old in sorted((Path(run_dir) / "checkpoints").glob("step_*[0-9]"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder
