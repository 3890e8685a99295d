"""Few-shot fine-tuning (paper §3.3): adapt G and psi' = P e_hat, and D with W' = e_hat, to K stills."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from monalisa.models.config import OptimConfig
from monalisa.models.losses import ContentLoss, LossWeights, discriminator_losses, generator_losses

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
    for _ in tqdm(range(cfg.steps), desc="finetune", disable=not progress):
        idx = torch.randperm(k, generator=gen)[:b]
        x, y = images[idx], rasters[idx]  # (b, 3, H, W)
        fake = generator.synthesize(y, psi.expand(b, -1))
        r_fake, fake_feats = discriminator.score_with(fake, y, w.expand(b, -1))
        r_real, real_feats = discriminator.score_with(x, y, w.expand(b, -1))
        g = generator_losses(fake, x, r_fake, fake_feats, real_feats, None, e_hat, content, weights)
        opt_g.zero_grad(set_to_none=True)
        g["total"].backward()
        opt_g.step()
        r_real, _ = discriminator.score_with(x, y, w.expand(b, -1))
        r_fake, _ = discriminator.score_with(fake.detach(), y, w.expand(b, -1))
        opt_d.zero_grad(set_to_none=True)
        discriminator_losses(r_real, r_fake)["total"].backward()
        opt_d.step()
    generator.eval()
    return psi.detach(), e_hat
