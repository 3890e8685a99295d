"""The one adversarial update, shared by meta-learning (models/meta.py) and fine-tuning
(models/finetune.py), so the two cannot drift apart:

1. E/G (and psi when fine-tuning): content + adversarial + feature matching (+ the embedding match
   of e_hat to the video's W_i when meta-learning) (+ the generator's own ``extra`` terms, e.g. the
   warp generator's). D scores the fake with gradients flowing to G; the real image is scored once,
   without gradients, for its feature-matching targets.
2. D: the hinge loss on the real image and the (detached) fake, scored together in one batch.

:func:`content_update` is step 1 without D (content + extra only): the fast CPU setting.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch

from monalisa.models.losses import ContentLoss, LossWeights, discriminator_losses, generator_losses

#: (images (N, 3, H, W), rasters (N, 3, H, W)) -> (scores (N,), features)
Scorer = Callable[[torch.Tensor, torch.Tensor], tuple]


def _step(loss, opt, scaler) -> None:
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def _add(g: dict, extra: dict | None) -> None:
    for name, loss in (extra or {}).items():
        g[name] = loss
        g["total"] = g["total"] + loss


def content_update(fake, real, *, opt_g, content: ContentLoss, extra: dict | None = None, scaler=None) -> dict:
    """One E/G update on the content loss (+ ``extra``), no discriminator -> G's loss dict."""
    g = {"content": content(fake.float(), real)}
    g["total"] = g["content"]
    _add(g, extra)
    _step(g["total"], opt_g, scaler)
    return g


def gan_update(fake, real, rasters, *, score_g: Scorer, score_d: Scorer, opt_g, opt_d, content: ContentLoss,
               weights: LossWeights = LossWeights(), match: tuple | None = None, scalers=(None, None),
               autocast=contextlib.nullcontext, extra: dict | None = None) -> tuple[dict, dict]:
    """One G update then one D update for ``fake`` = G(rasters), ``real`` its ground truth.

    score_g scores for G's step (its gradients on D's weights are dropped before D's step);
    score_d for D's own step (a DistributedDataParallel wrapper when meta-learning on several
    processes). match: (W_i, e_hat) for the embedding-match term, or None. extra: name -> weighted
    loss tensor added to G's total. Returns the G and D loss dicts (tensors, each with a "total")."""
    with autocast():
        r_fake, fake_feats = score_g(fake, rasters)
        with torch.no_grad():
            _, real_feats = score_g(real, rasters)
        w_i, e_hat = match if match is not None else (None, None)
        g = generator_losses(fake.float(), real, r_fake.float(), fake_feats, real_feats, w_i,
                             None if e_hat is None else e_hat.float(), content, weights)
    _add(g, extra)
    _step(g["total"], opt_g, scalers[0])
    with autocast():
        scores, _ = score_d(torch.cat([real, fake.detach()]), torch.cat([rasters, rasters]))
        d = discriminator_losses(*scores.float().chunk(2))
    _step(d["total"], opt_d, scalers[1])
    return g, d
