"""Losses of the few-shot talking-head model, shared by meta-training and fine-tuning."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from monalisa.models.config import STAND_INS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossWeights:
    """The paper's weights."""

    vgg19: float = 1.5e-1
    vggface: float = 2.5e-2
    fm: float = 10.0
    match: float = 10.0
    adv: float = 1.0
    l1: float = 1.0  # stand-in content loss (no VGG weights given): L1 over an image pyramid,
    msssim: float = 1.0  # MS-SSIM,
    grad: float = 1.0  # and L1 of the image gradients over the pyramid (edges: eyes, lips, teeth)




def pyramid(x: torch.Tensor, levels: int = 3) -> list:
    """x and its 2x, 4x, ... average-pooled copies (stopping before 8 px)."""
    out = [x]
    while len(out) < levels and out[-1].shape[-1] >= 16:
        out.append(F.avg_pool2d(out[-1], 2))
    return out


def gradient_l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences of fake and real (B, C, H, W)."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(fake), dx(real)) + F.l1_loss(dy(fake), dy(real))


def warp_terms(warped, target, correction, mask, jittered=None, direct_weight: float = 1.0,
               steady_weight: float = 0.0) -> dict:
    """The warp generator's own loss terms (models/warpgen.py), shared by meta-learning and fine-tuning:
    "direct", L1 of warped + correction alone against the target (the correction learns wherever
    the mask is), and with ``jittered`` = (correction, mask) for the target's landmarks moved by a
    pixel, "steady", L1 of the change of mask * correction (a tracker's jitter must not flicker)."""
    out = {"direct": direct_weight * (warped + correction - target).abs().mean()}
    if jittered is not None and steady_weight > 0:
        corr_j, mask_j = jittered
        out["steady"] = steady_weight * (mask_j * corr_j - mask * correction).abs().mean()
    return out


def hinge_d(r_real: torch.Tensor, r_fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - r_real).mean() + F.relu(1 + r_fake).mean()


def feature_matching(fake_feats, real_feats) -> torch.Tensor:
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_feats, real_feats)) / len(fake_feats)


def embedding_match(w_i: torch.Tensor, e_hat: torch.Tensor) -> torch.Tensor:
    """||W_i - e_hat||_1 averaged over the batch."""
    return (w_i - e_hat).abs().sum(dim=1).mean()


class ContentLoss(torch.nn.Module):
    """Perceptual loss from local VGG19 / VGGFace weights, or a stand-in without them (``stand_in``,
    one of STAND_INS)."""

    _warned = False

    def __init__(self, vgg19_path=None, vggface_path=None, weights: LossWeights = LossWeights(),
                 stand_in: str = "pyramid"):
        super().__init__()
        from monalisa.errors import ConfigError
        from monalisa.models.perceptual import VGG16, VGG16_TAPS, load_vgg

        if stand_in not in STAND_INS:
            raise ConfigError(f"content loss stand-in must be one of {', '.join(STAND_INS)}, got {stand_in!r}")
        self.weights, self.stand_in = weights, stand_in
        self.vgg19 = load_vgg(vgg19_path) if vgg19_path else None
        self.vggface = load_vgg(vggface_path, VGG16, VGG16_TAPS) if vggface_path else None

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        w = self.weights
        if self.vgg19 is None and self.vggface is None and not ContentLoss._warned:
            ContentLoss._warned = True  # said once, at the first step: after every input was checked
            log.warning("no VGG19/VGGFace weights given: content loss is the %s stand-in (L1%s + MS-SSIM)",
                        self.stand_in, " + gradient L1 over 3 scales" if self.stand_in == "pyramid" else "")
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
            loss = loss + w.msssim * (1 - ms)
            if self.stand_in == "l1-msssim":
                loss = loss + w.l1 * F.l1_loss(fake, real)
            else:
                levels = list(zip(pyramid(fake), pyramid(real)))
                loss = loss + sum(w.l1 * F.l1_loss(f, r) + w.grad * gradient_l1(f, r) for f, r in levels) / len(levels)
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
