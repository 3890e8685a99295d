"""Few-shot fine-tuning (paper §3.3): adapt G and psi' = P e_hat, and D with W' = e_hat, to K stills.

:func:`finetune` is the loop (one shared adversarial update per step, models/update.py);
:func:`make_identity_pack` is the whole command: checks, crops, fine-tuning, the pack folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from monalisa.models.config import OptimConfig
from monalisa.models.losses import ContentLoss, LossWeights
from monalisa.models.update import gan_update

MAX_STILLS = 32


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 300
    batch: int = 4  # stills per step (at most K)
    seed: int = 0
    optim: OptimConfig = OptimConfig()


def finetune(embedder, generator, discriminator, images, rasters, cfg: FinetuneConfig = FinetuneConfig(),
             content: ContentLoss | None = None, weights: LossWeights = LossWeights(), progress=True):
    """images, rasters (K, 3, H, W) in [-1, 1] -> (psi (1, n), e_hat (1, E)); G and D are tuned in place."""
    gen = torch.Generator().manual_seed(cfg.seed)
    content = content or ContentLoss(weights=weights)
    embedder.eval()
    with torch.no_grad():
        e_hat = embedder(images[None], rasters[None])  # (1, E)
    psi = torch.nn.Parameter(generator.project(e_hat).detach())  # psi' = P e_hat
    w = torch.nn.Parameter(e_hat.clone())  # W' = e_hat
    o = cfg.optim
    opt_g = torch.optim.Adam([*generator.parameters(), psi], lr=o.lr_eg, betas=o.betas)
    opt_d = torch.optim.Adam([*discriminator.parameters(), w], lr=o.lr_d, betas=o.betas)
    generator.train()
    discriminator.train()
    k, b = images.shape[0], min(cfg.batch, images.shape[0])

    def score(im, r):
        return discriminator.score_with(im, r, w.expand(len(im), -1))

    for _ in tqdm(range(cfg.steps), desc="finetune", unit="step", disable=not progress):
        idx = torch.randperm(k, generator=gen)[:b]
        x, y = images[idx], rasters[idx]  # (b, 3, H, W)
        fake = generator.synthesize(y, psi.expand(b, -1))
        gan_update(fake, x, y, score_g=score, score_d=score, opt_g=opt_g, opt_d=opt_d, content=content,
                   weights=weights)
    generator.eval()
    return psi.detach(), e_hat


def check_request(checkpoint, stills, out, steps: int, overwrite: bool = False) -> None:
    """Everything ``make_identity_pack`` needs, checked before any work (one line, exit 2)."""
    from monalisa.errors import ConfigError, DataError, MediaError
    from monalisa.files import check_out_dir
    from monalisa.models.identity import FILES

    if not 1 <= len(stills) <= MAX_STILLS:
        raise DataError(f"--stills: got {len(stills)} images, need 1..{MAX_STILLS} stills of one person")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    for p in stills:
        if not Path(p).is_file():
            raise MediaError(f"{p}: no such still image")
    check_out_dir(out, FILES, overwrite=overwrite)


def make_identity_pack(checkpoint, stills, out, *, steps: int = 300, name: str | None = None, vgg19=None,
                       cfg: FinetuneConfig | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Fine-tune ``checkpoint`` on ``stills`` and write the identity pack ``out`` (identity.safetensors,
    identity.json, contact_sheet.png: crops | rasters | output). Returns identity.json's content."""
    from monalisa.files import remove_stale_temps, sha256_file
    from monalisa.models.checkpoint import build_models, crop_geometry, load_checkpoint
    from monalisa.models.identity import save_identity
    from monalisa.models.tensors import to_tensor, to_uint8
    from monalisa.nodes.sheet import contact_sheet
    from monalisa.nodes.stills import prepare_stills

    stills, out = [Path(p) for p in stills], Path(out)
    check_request(checkpoint, stills, out, steps, overwrite)
    ckpt = load_checkpoint(checkpoint)
    E, G, D = build_models(ckpt)
    geometry = crop_geometry(ckpt)
    crops = prepare_stills(stills, geometry)
    content = ContentLoss(vgg19_path=vgg19)
    remove_stale_temps(out.parent, out.name)
    images, rasters = to_tensor(crops.images), to_tensor(crops.rasters)
    cfg = cfg or FinetuneConfig(steps=steps)
    psi, e_hat = finetune(E, G, D, images, rasters, cfg, content, progress=progress)
    with torch.no_grad():
        recon = to_uint8(G.synthesize(rasters, psi.expand(len(stills), -1)))
    meta = {"name": name or out.name, "k": len(stills), "steps": cfg.steps, "seed": cfg.seed, "batch": cfg.batch,
            "lr": {"generator": cfg.optim.lr_eg, "discriminator": cfg.optim.lr_d},
            "content_loss": "vgg19" if vgg19 else "l1+ms-ssim",
            "images": [{"path": str(p), "sha256": sha256_file(p)} for p in stills],
            "base_checkpoint_sha256": ckpt.sha256, "config": ckpt.config.to_dict(), "crop": geometry.to_dict()}
    sheet = contact_sheet([[c, r, o] for c, r, o in zip(crops.images, crops.rasters, recon)])
    save_identity(out, G, psi, e_hat, meta, {"contact_sheet.png": sheet})
    return meta
