"""Warp-conditioned generator (the bi-layer idea of Zakharov et al. 2020 on the 2019 model).

The still, warped at full resolution to the target landmarks by the render path's dense warp
(``nodes.warp``) and cut by the one model crop (``nodes.facecrop``), enters beside the landmark
raster. The network predicts a *correction* (3 ch) and a blend *mask* (1 ch, in [0, 1]); the face is

    image = warped + mask * correction

so the still's texture reaches the output unchanged wherever the mask is 0, and the network paints
only what a warp cannot show (eyes that close, mouth interior, teeth, shading). At render time only
correction and mask are upsampled to the still's resolution (``nodes.warpgen.composite``).

Initialisation: the correction head has zero weights and bias, so the untrained network returns
the warp exactly. The mask head starts at sigmoid(0) = 0.5, not 0: with both heads at zero the
product has zero gradient in both and training could never leave the warp.

Identity: AdaIN parameters psi = P e from the embedder's e_hat (averaged over K stills), as in
the plain generator; the per-identity part (psi, fine-tuned weights) is baked once, the per-frame
network is light (no self-attention, narrow).

Architecture: U-Net: a stem conv and residual downsampling blocks (instance norm) on
concat(raster, warped), AdaIN residual bottleneck, AdaIN upsampling blocks with the encoder's
features added at each scale, AdaIN, ReLU, the two heads.

Resolution: with ``shuffle`` s > 1 the inputs are space-to-depth'ed (pixel unshuffle) before the
stem and the heads' s² sub-pixel channels depth-to-space'd back, so an R² face costs an (R/s)²
network and every input and output pixel is still its own; ``grow_shuffle`` starts such a
network exactly from the shuffle-1 one at R/s (``monalisa train --init``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monalisa.errors import ConfigError, ShapeError
from monalisa.models.config import ModelConfig
from monalisa.models.generator import AdaINGenerator, trunk
from monalisa.models.layers import ResBlockAdaIN, SelfAttention, adain, sn_conv

#: corrections live in [-2, 2]: enough to take any [-1, 1] value to any other
CORRECTION_RANGE = 2.0


class WarpGenerator(AdaINGenerator):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.generator != "warp":
            raise ConfigError(f"WarpGenerator needs a config with generator='warp', got {cfg.generator!r}")
        self.cfg = cfg
        s2 = cfg.shuffle**2
        # space-to-depth input: a plain conv (spectral norm would fix its scale, and with it the
        # exact 64² -> 256² warm start of grow_shuffle)
        self.stem = sn_conv(6, cfg.base_width) if s2 == 1 else nn.Conv2d(6 * s2, cfg.base_width, 3, padding=1)
        self.down, self.res, self.up, cin = trunk(cfg, cfg.base_width, cfg.net_resolution)
        # plain convs: spectral norm of an all-zero weight divides by zero
        self.to_correction = nn.Conv2d(cin, 3 * s2, 3, padding=1)
        self.to_mask = nn.Conv2d(cin, s2, 3, padding=1)
        nn.init.zeros_(self.to_correction.weight)
        nn.init.zeros_(self.to_correction.bias)
        nn.init.zeros_(self.to_mask.bias)
        self.init_projection(cin)

    def synthesize(self, rasters: torch.Tensor, warped: torch.Tensor, psi: torch.Tensor):
        """rasters, warped (B, 3, R, R) in [-1, 1], psi (B or 1, n) -> (correction (B, 3, R, R), mask (B, 1, R, R))."""
        r = self.cfg.resolution
        for what, t in (("rasters", rasters), ("warped", warped)):
            if t.ndim != 4 or tuple(t.shape[1:]) != (3, r, r):
                raise ShapeError(f"warp generator {what}", ("B", 3, r, r), t.shape)
        if warped.shape[0] != rasters.shape[0]:
            raise ShapeError("warp generator warped", tuple(rasters.shape), tuple(warped.shape))
        if psi.ndim != 2 or psi.shape[1] != self.num_adain_params:
            raise ShapeError("warp generator psi", ("B", self.num_adain_params), psi.shape)
        chunks = iter(torch.split(psi, self.psi_sizes, dim=1))
        s = self.cfg.shuffle
        h = torch.cat([rasters, warped], dim=1)  # (B, 6, R, R)
        h = self.stem(F.pixel_unshuffle(h, s) if s > 1 else h)  # (B, C0, R/s, R/s)
        skips = [h]
        for block in self.down:
            h = block(h)
            if not isinstance(block, SelfAttention):
                skips.append(h)
        skips.pop()  # the bottleneck itself
        for block in self.res:
            h = block(h, next(chunks))
        for block in self.up:
            if isinstance(block, ResBlockAdaIN):
                h = block(h, next(chunks)) + skips.pop()  # U-Net: the encoder's features at this scale
            else:
                h = block(h)
        h = torch.relu(adain(h, next(chunks)))
        correction, mask = self.to_correction(h), self.to_mask(h)
        if s > 1:
            correction, mask = F.pixel_shuffle(correction, s), F.pixel_shuffle(mask, s)  # (B, 3|1, R, R)
        return CORRECTION_RANGE * torch.tanh(correction), torch.sigmoid(mask)

    def forward(self, rasters, warped, embedding):
        """-> (correction, mask) with psi = P e."""
        return self.synthesize(rasters, warped, self.project(embedding))


def grow_shuffle(small: WarpGenerator, big: WarpGenerator) -> None:
    """Warm start ``big`` (shuffle s, resolution s * small's) from ``small`` (shuffle 1), so that
    big(x) equals small(average-pool_s(x)) upsampled by repeating pixels: the stem's weight is the
    small stem's effective (spectrally normalised) weight spread over the s² sub-pixels, the heads
    repeat each output channel s² times, the trunk is copied."""
    s, cb, cs = big.cfg.shuffle, big.cfg, small.cfg
    if small.cfg.shuffle != 1 or cb.net_resolution != cs.resolution or \
            {k: v for k, v in cb.to_dict().items() if k not in ("resolution", "shuffle", "num_videos")} != \
            {k: v for k, v in cs.to_dict().items() if k not in ("resolution", "shuffle", "num_videos")}:
        raise ConfigError(f"grow_shuffle: {cs} is not the trunk of {cb}")
    own = {k: v for k, v in small.state_dict().items()
           if not k.startswith(("stem.", "to_correction.", "to_mask."))}
    missing = big.load_state_dict(own, strict=False).missing_keys
    if any(not k.startswith(("stem.", "to_correction.", "to_mask.")) for k in missing):
        raise ConfigError(f"grow_shuffle: trunk weights missing: {missing}")
    with torch.no_grad():
        small.stem.eval()
        w = small.stem.weight.detach()  # (C0, 6, 3, 3), the normalised weight
        big.stem.weight.copy_(w.repeat_interleave(s * s, dim=1) / (s * s))
        big.stem.bias.copy_(small.stem.bias.detach())
        for name in ("to_correction", "to_mask"):
            src, dst = getattr(small, name), getattr(big, name)
            dst.weight.copy_(src.weight.repeat_interleave(s * s, dim=0))
            dst.bias.copy_(src.bias.repeat_interleave(s * s, dim=0))


def compose(warped: torch.Tensor, correction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The face at network resolution: warped + mask * correction (in [-1, 1] units, not clamped)."""
    return warped + mask * correction
