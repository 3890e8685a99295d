"""Meta-learning and fine-tuning of the warp-conditioned generator (models/warpgen.py).

Episodes are those of ``models.data`` (one video, K reference frames, one target, drawn from
``numpy.random.default_rng([seed, step, rank, slot])``) plus the *warped still*: the first
reference frame warped to the target's landmarks the way the render path does it. The prepared
squares keep their crop matrices, so the warp happens in the still's own square with the target's
landmarks brought into it (the background stays put, as in a frame), and the result is then
resampled into the target's square: ``nodes.warp`` over the still's landmarks + static anchors.

A run folder is that of ``models.meta`` (run.json, losses.csv, checkpoints/step_*/) and resumes
the same way: re-run the same command.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from monalisa.errors import CheckpointError, ConfigError
from monalisa.files import write_bytes, write_json, write_text
from monalisa.models.config import ModelConfig, OptimConfig
from monalisa.models.data import PreparedData, _to_tensor
from monalisa.models.losses import ContentLoss, LossWeights, discriminator_losses, generator_losses
from monalisa.models.warpgen import build_networks, compose

log = logging.getLogger(__name__)

COLUMNS = ("step", "g_total", "content", "adv", "fm", "match", "mask", "direct", "steady", "warp_l1", "d_total",
           "seconds")


@dataclass(frozen=True)
class WarpTrainConfig:
    steps: int = 1000
    batch_size: int = 4
    k: int = 4
    seed: int = 0
    checkpoint_every: int = 250
    keep: int = 2
    mask_weight: float = 0.0  # L1 on the mean mask (0: off; it collapses the mask before the correction learns)
    direct_weight: float = 1.0  # L1 of warped + correction alone against the target: the correction learns
    # even where the mask is still small, and the mask then opens where the correction is right
    steady_weight: float = 0.0  # L1 between the network's part (mask * correction) for the target's landmarks
    # and for the same landmarks moved by N(0, jitter_px): a tracker's jitter must not make the face flicker
    jitter_px: float = 1.0  # landmark noise of the steady term, prepared-square px
    adversarial: bool = True  # False: content loss only (fast CPU runs, tests)
    optim: OptimConfig = OptimConfig(lr_eg=2e-4, lr_d=2e-4)

    def __post_init__(self):
        if self.k < 1 or min(self.steps, self.batch_size, self.checkpoint_every, self.keep) < 1:
            raise ConfigError("K, steps, batch size, checkpoint interval and keep must be at least 1")


class WarpData:
    """A prepared folder with its crop matrices: targets, references and warped stills."""

    def __init__(self, folder, videos: list | None = None):
        self.data = PreparedData(folder)
        keep = [i for i, v in enumerate(self.data.videos) if videos is None or v.id in videos]
        if videos is not None and len(keep) != len(set(videos)):
            found = {self.data.videos[i].id for i in keep}
            raise ConfigError(f"videos {sorted(set(videos) - found)} are not in {folder}")
        self.index = keep
        self.size = self.data.size
        self.matrices = []
        for i in keep:
            entry = self.data.manifest["videos"][i]
            meta = json.loads((Path(folder) / entry["dir"] / "frames.json").read_text())
            self.matrices.append(np.asarray(meta["matrices"], np.float64))  # (N, 2, 3) frame -> square

    @property
    def videos(self):
        return [self.data.videos[i] for i in self.index]

    def __len__(self):
        return len(self.index)

    def warped_still(self, v: int, still: int, target: int, points=None) -> np.ndarray:
        """uint8 (S, S, 3): frame ``still`` warped to frame ``target``'s landmarks (or ``points`` in the
        target's square), in the target's square."""
        from monalisa.nodes.warp import build_mesh
        from monalisa.nodes.warp import dense_warp

        video, s = self.videos[v], self.size
        a_s = np.vstack([self.matrices[v][still], [0, 0, 1]])
        a_t = np.vstack([self.matrices[v][target], [0, 0, 1]])
        t_to_s = (a_s @ np.linalg.inv(a_t))[:2]  # target square -> still square
        pts_t = np.asarray(video.landmarks[target] if points is None else points, np.float64)
        driven = pts_t @ t_to_s[:, :2].T + t_to_s[:, 2]
        image = np.asarray(video.frames[still])
        mesh = build_mesh(video.landmarks[still], (s, s))
        warped = dense_warp(image, mesh, driven).image
        return cv2.warpAffine(warped, cv2.invertAffineTransform(t_to_s), (s, s), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT101)

    def pair(self, v: int, frame: int, resolution: int):
        return self.data.pair(self.index[v], frame, resolution)

    def resize(self, image, resolution: int):
        return image if resolution == self.size else cv2.resize(image, (resolution, resolution),
                                                                 interpolation=cv2.INTER_AREA)

    def episode_batch(self, step: int, batch_size: int, k: int, resolution: int, seed: int = 0, rank: int = 0,
                      videos: list | None = None, jitter_px: float = 0.0) -> dict:
        """models.data.episode_batch + "warped" (B, 3, R, R): the first reference warped to the target;
        with jitter_px, also "jitter_rasters" and "jitter_warped": the same with the target's landmarks
        moved by N(0, jitter_px) (the crop stays that of the true landmarks)."""
        from monalisa.nodes.facecrop import rasterize

        refs, ref_r, tgt, tgt_r, warped, vid, jit_r, jit_w = [], [], [], [], [], [], [], []
        for slot in range(batch_size):
            rng = np.random.default_rng([seed, step, rank, slot])
            i = int(rng.integers(len(self))) if videos is None else int(videos[int(rng.integers(len(videos)))])
            n = len(self.videos[i].frames)
            picks = rng.choice(n, size=k + 1, replace=n < k + 1)
            pairs = [self.pair(i, int(f), resolution) for f in picks]
            refs.append([p[0] for p in pairs[:k]])
            ref_r.append([p[1] for p in pairs[:k]])
            tgt.append(pairs[k][0])
            tgt_r.append(pairs[k][1])
            warped.append(self.resize(self.warped_still(i, int(picks[0]), int(picks[k])), resolution))
            vid.append(i)
            if jitter_px > 0:
                pts = self.videos[i].landmarks[int(picks[k])]
                moved = pts + rng.normal(0.0, jitter_px, pts.shape)
                jit_w.append(self.resize(self.warped_still(i, int(picks[0]), int(picks[k]), moved), resolution))
                jit_r.append(rasterize(moved * (resolution / self.size), resolution))
        out = {"ref_images": _to_tensor(np.array(refs)), "ref_rasters": _to_tensor(np.array(ref_r)),
               "images": _to_tensor(np.array(tgt)), "rasters": _to_tensor(np.array(tgt_r)),
               "warped": _to_tensor(np.array(warped)), "video": torch.tensor(vid, dtype=torch.long)}
        if jitter_px > 0:
            out.update(jitter_rasters=_to_tensor(np.array(jit_r)), jitter_warped=_to_tensor(np.array(jit_w)))
        return out


class WarpLearner:
    """E, warp G, D and their optimisers; ``step(batch)`` is one meta-learning update."""

    def __init__(self, config: ModelConfig, train: WarpTrainConfig, content: ContentLoss | None = None,
                 weights: LossWeights = LossWeights(), nets=None):
        self.config, self.cfg, self.weights = config, train, weights
        self.E, self.G, self.D = (n.train() for n in (nets or build_networks(config)))
        self.content = content or ContentLoss(weights=weights)
        o = train.optim
        self.opt_eg = torch.optim.Adam([*self.E.parameters(), *self.G.parameters()], lr=o.lr_eg, betas=o.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=o.betas)

    @property
    def optimizers(self) -> dict:
        return {"eg": self.opt_eg, "d": self.opt_d}

    def generate(self, batch):
        e_hat = self.E(batch["ref_images"], batch["ref_rasters"])
        correction, mask = self.G(batch["rasters"], batch["warped"], e_hat)
        self.last_correction, self.last_e_hat = correction, e_hat
        return compose(batch["warped"], correction, mask), mask, e_hat

    def step(self, batch: dict) -> dict:
        x, y, idx, w = batch["images"], batch["rasters"], batch["video"], batch["warped"]
        fake, mask, e_hat = self.generate(batch)
        if self.cfg.adversarial:
            r_fake, fake_feats = self.D(fake, y, idx)
            with torch.no_grad():
                _, real_feats = self.D(x, y, idx)
            g = generator_losses(fake, x, r_fake, fake_feats, real_feats, self.D.W[idx].detach(), e_hat,
                                 self.content, self.weights)
        else:
            g = {"content": self.content(fake, x)}
            g["total"] = g["content"]
        g["mask"] = self.cfg.mask_weight * mask.mean()
        g["direct"] = self.cfg.direct_weight * (w + self.last_correction - x).abs().mean()
        g["total"] = g["total"] + g["mask"] + g["direct"]
        if self.cfg.steady_weight > 0:
            corr_j, mask_j = self.G(batch["jitter_rasters"], batch["jitter_warped"], e_hat)
            g["steady"] = self.cfg.steady_weight * (mask_j * corr_j - (fake - w)).abs().mean()
            g["total"] = g["total"] + g["steady"]
        self.opt_eg.zero_grad(set_to_none=True)
        g["total"].backward()
        self.opt_eg.step()
        out = {f"g_{k}" if k == "total" else k: float(v.detach()) for k, v in g.items()}
        out["warp_l1"] = float((w - x).abs().mean())  # the warp's own error on this batch, for comparison
        out["fake_l1"] = float((fake.detach() - x).abs().mean())
        if self.cfg.adversarial:
            scores, _ = self.D(torch.cat([x, fake.detach()]), torch.cat([y, y]), torch.cat([idx, idx]))
            d = discriminator_losses(*scores.chunk(2))
            self.opt_d.zero_grad(set_to_none=True)
            d["total"].backward()
            self.opt_d.step()
            out["d_total"] = float(d["total"])
        self.last_fake = fake.detach()
        return out


def _preview(batch, fake, count=4) -> bytes:
    to_u8 = lambda t: ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    rows = [np.concatenate([to_u8(batch["images"][i]), to_u8(batch["warped"][i]), to_u8(fake[i])], axis=1)
            for i in range(min(count, len(fake)))]
    _, png = cv2.imencode(".png", cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
    return png.tobytes()


def train(data_dir, run_dir, config: ModelConfig, cfg: WarpTrainConfig = WarpTrainConfig(), *,
          videos: list | None = None, content: ContentLoss | None = None, progress: bool = True,
          init=None) -> dict:
    """Meta-train (or resume) a warp-generator run on the prepared ``videos`` (default: all); a new
    run starts from the checkpoint ``init`` when given (``models.warpgen.warm_start``)."""
    from monalisa.models.checkpoint import load_checkpoint, restore_optimizers, save_checkpoint
    from monalisa.models.meta import latest_checkpoint, read_losses
    from monalisa.models.warpgen import build_models
    from monalisa.nodes.facecrop import CropGeometry

    run_dir = Path(run_dir)
    data = WarpData(data_dir, videos)
    ids = [v.id for v in data.videos]
    config = dataclasses.replace(config, num_videos=len(ids))
    crop = CropGeometry(resolution=config.resolution, prepare_size=max(data.size, config.resolution)).to_dict()
    torch.manual_seed(cfg.seed)
    nets, start, resume = None, 0, latest_checkpoint(run_dir)
    if resume is not None:
        ckpt = load_checkpoint(resume, expect_config=config)
        if ckpt.meta.get("videos") != ids:
            raise CheckpointError(f"{resume}: trained on {ckpt.meta.get('videos')}, not {ids}; use a new run folder")
        nets, start = build_models(ckpt), ckpt.step
    elif init is not None:
        from monalisa.models.warpgen import warm_start

        nets = warm_start(config, load_checkpoint(init))
    learner = WarpLearner(config, cfg, content, nets=nets)
    rows = []
    if resume is not None:
        restore_optimizers(ckpt, learner.optimizers)
        rows = read_losses(run_dir, start)
        log.info("resuming %s from step %d", run_dir, start)
    write_json(run_dir / "run.json", {"model": config.to_dict(), "train": dataclasses.asdict(cfg),
                                      "data": str(data_dir), "videos": ids, "crop": crop,
                                      "init": None if init is None else str(init)})
    last, saved = (rows[-1] if rows else {}), resume
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train-warp", disable=not progress)
    for s in bar:
        t0 = time.perf_counter()
        batch = data.episode_batch(s, cfg.batch_size, cfg.k, config.resolution, cfg.seed,
                                   jitter_px=cfg.jitter_px if cfg.steady_weight > 0 else 0.0)
        losses = learner.step(batch)
        last = {"step": s + 1, **{k: f"{v:.6g}" for k, v in losses.items()},
                "seconds": f"{time.perf_counter() - t0:.4f}"}
        rows.append(last)
        bar.set_postfix(fake=last["fake_l1"], warp=last["warp_l1"])
        done = s + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            folder = run_dir / "checkpoints" / f"step_{done:07d}"
            save_checkpoint(folder, learner.E, learner.G, learner.D, config, done, optimizers=learner.optimizers,
                            extra={"videos": ids, "crop": crop,
                                   "metrics": {k: float(v) for k, v in last.items() if k != "step"}})
            write_bytes(folder / "preview.png", _preview(batch, learner.last_fake))
            for old in sorted((run_dir / "checkpoints").glob("step_*[0-9]"))[:-cfg.keep]:
                shutil.rmtree(old, ignore_errors=True)
            buf = io.StringIO()
            writer = csv.DictWriter(buf, [*COLUMNS, "fake_l1"], extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            write_text(run_dir / "losses.csv", buf.getvalue())
            saved = folder
    return {"step": max(start, cfg.steps), "losses": last, "checkpoint": saved}


def finetune(embedder, generator, discriminator, images, rasters, warped, targets, steps: int = 100,
             lr: float = 1e-4, batch: int = 4, seed: int = 0, content: ContentLoss | None = None,
             adversarial: bool = False, progress: bool = False, pair_rasters=None, jittered=None,
             steady_weight: float = 0.0):
    """Few-shot fine-tuning of the warp generator on one identity.

    images, rasters (K, 3, R, R): the K stills (for e_hat); warped, targets, and their rasters come
    as pairs: ``warped`` (N, 3, R, R) is a still warped to frame n's landmarks, ``targets`` (N, 3, R, R)
    that frame, ``pair_rasters`` (N, 3, R, R) its raster (default ``rasters``, when N == K).
    ``jittered``: (warped, rasters) (N, 3, R, R) each, the same pairs with the frame's landmarks moved
    by a pixel or so (same crop); with ``steady_weight`` the network's part must not change with them.
    Tunes G and psi' = P e_hat (content loss; adversarial off by default on CPU) -> (psi (1, n), e_hat (1, E)).
    """
    gen = torch.Generator().manual_seed(seed)
    content = content or ContentLoss()
    embedder.eval()
    with torch.no_grad():
        e_hat = embedder(images[None], rasters[None])
    psi = torch.nn.Parameter(generator.project(e_hat).detach())
    opt = torch.optim.Adam([*generator.parameters(), psi], lr=lr, betas=(0.0, 0.999))
    generator.train()
    pair_rasters = rasters if pair_rasters is None else pair_rasters
    n, b = targets.shape[0], min(batch, targets.shape[0])
    for _ in tqdm(range(steps), desc="finetune-warp", disable=not progress):
        idx = torch.randperm(n, generator=gen)[:b]
        corr, mask = generator.synthesize(pair_rasters[idx], warped[idx], psi.expand(b, -1))
        loss = content(compose(warped[idx], corr, mask), targets[idx]) + (warped[idx] + corr - targets[idx]).abs().mean()
        if jittered is not None and steady_weight > 0:
            corr_j, mask_j = generator.synthesize(jittered[1][idx], jittered[0][idx], psi.expand(b, -1))
            loss = loss + steady_weight * (mask_j * corr_j - mask * corr).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    generator.eval()
    return psi.detach(), e_hat


def export_reference(checkpoint, out) -> str:
    """A warp checkpoint's weights in float16 without optimiser state (compact reference weights)."""
    from monalisa.models.checkpoint import load_checkpoint, save_checkpoint
    from monalisa.models.warpgen import build_models

    ckpt = load_checkpoint(checkpoint)
    E, G, D = build_models(ckpt)
    extra = {k: ckpt.meta[k] for k in ("videos", "metrics", "crop") if k in ckpt.meta}
    extra["source_checkpoint_sha256"] = ckpt.sha256
    return save_checkpoint(out, E, G, D, ckpt.config, ckpt.step, extra=extra, dtype=torch.float16)


def main(argv=None) -> int:
    """python -m monalisa.models.warptrain --data PREPARED --out RUN [--config warp_medium] [--steps N]
    [--videos ID ...] [--adversarial]: meta-train (or resume) the warp generator."""
    import argparse

    from monalisa.models.config import get_config

    ap = argparse.ArgumentParser(prog="python -m monalisa.models.warptrain", description=main.__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="warp_medium")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--videos", nargs="*", default=None, help="prepared video ids to train on (default all)")
    ap.add_argument("--adversarial", action="store_true", help="also the projection discriminator (slow on CPU)")
    ap.add_argument("--mask-weight", type=float, default=0.0, help="L1 on the mean mask (default 0)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = WarpTrainConfig(steps=args.steps, batch_size=args.batch, k=args.k, checkpoint_every=args.checkpoint_every,
                          adversarial=args.adversarial, mask_weight=args.mask_weight)
    result = train(args.data, args.out, get_config(args.config), cfg, videos=args.videos)
    print(f"step {result['step']}: {result['losses']}; checkpoint {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
