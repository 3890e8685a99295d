"""Losses of the few-shot talking-head model, shared by meta-training and fine-tuning."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossWeights:
    """The paper's weights."""

    vgg19: float = 1.5e-1
    vggface: float = 2.5e-2
    fm: float = 10.0
    match: float = 10.0
    adv: float = 1.0
    l1: float = 1.0  # fallback content loss (no VGG weights given)
    msssim: float = 1.0


def hinge_d(r_real: torch.Tensor, r_fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - r_real).mean() + F.relu(1 + r_fake).mean()


def feature_matching(fake_feats, real_feats) -> torch.Tensor:
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_feats, real_feats)) / len(fake_feats)


def embedding_match(w_i: torch.Tensor, e_hat: torch.Tensor) -> torch.Tensor:
    """||W_i - e_hat||_1 averaged over the batch."""
    return (w_i - e_hat).abs().sum(dim=1).mean()


class ContentLoss(torch.nn.Module):
    """Perceptual loss from local VGG19 / VGGFace weights, or L1 + MS-SSIM without them."""

    _warned = False

    def __init__(self, vgg19_path=None, vggface_path=None, weights: LossWeights = LossWeights()):
        super().__init__()
        from monalisa.models.perceptual import VGG16, VGG16_TAPS, load_vgg

        self.weights = weights
        self.vgg19 = load_vgg(vgg19_path) if vgg19_path else None
        self.vggface = load_vgg(vggface_path, VGG16, VGG16_TAPS) if vggface_path else None

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        w = self.weights
        if self.vgg19 is None and self.vggface is None and not ContentLoss._warned:
            ContentLoss._warned = True  # said once, at the first step: after every input was checked
            log.warning("no VGG19/VGGFace weights given: content loss is L1 + MS-SSIM instead")
        loss = fake.new_zeros(())
        for net, weight in ((self.vgg19, w.vgg19), (self.vggface, w.vggface)):
            if net is not None:
                loss = loss + weight * sum(F.l1_loss(a, b) for a, b in zip(net(fake), net(real)))
        if self.vgg19 is None and self.vggface is None:
            from pytorch_msssim import ms_ssim

            side = fake.shape[-1]
            scales = 3 if side < 128 else 5
            # pytorch-msssim asserts side > (win - 1) * 16: the largest odd window that fits, <= 11
            win = min(11, (side - 1) // 16 // 2 * 2 + 1)
            ms = ms_ssim((fake + 1) / 2, (real + 1) / 2, data_range=1.0, win_size=win,
                         weights=[1.0 / scales] * scales)
            loss = loss + w.l1 * F.l1_loss(fake, real) + w.msssim * (1 - ms)
        return loss


def generator_losses(fake, real, d_fake_score, d_fake_feats, d_real_feats, w_i, e_hat,
                     content: ContentLoss, weights: LossWeights = LossWeights()) -> dict:
    """All G/E loss terms and their weighted `"total"`. w_i=None skips the match term."""
    out = {
        "content": content(fake, real),
        "adv": -d_fake_score.mean() * weights.adv,
        "fm": feature_matching(d_fake_feats, d_real_feats) * weights.fm,
    }
    if w_i is not None:
        out["match"] = embedding_match(w_i, e_hat) * weights.match
    out["total"] = sum(out.values())
    return out


def discriminator_losses(r_real, r_fake) -> dict:
    loss = hinge_d(r_real, r_fake)
    return {"real": F.relu(1 - r_real).mean(), "fake": F.relu(1 + r_fake).mean(), "total": loss}
