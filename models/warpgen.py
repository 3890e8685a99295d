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
"""
from __future__ import annotations

import torch
from torch import nn

from monalisa.errors import ConfigError, ShapeError
from monalisa.models.config import ModelConfig
from monalisa.models.layers import ResBlockAdaIN, ResBlockDown, SelfAttention, adain, sn_conv

#: corrections live in [-2, 2]: enough to take any [-1, 1] value to any other
CORRECTION_RANGE = 2.0


class WarpGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.generator != "warp":
            raise ConfigError(f"WarpGenerator needs a config with generator='warp', got {cfg.generator!r}")
        self.cfg = cfg
        self.stem = sn_conv(6, cfg.base_width)
        self.down = nn.ModuleList()
        cin, side = cfg.base_width, cfg.resolution
        for i in range(cfg.num_down):
            self.down.append(ResBlockDown(cin, cfg.width(i), norm=True))
            cin, side = cfg.width(i), side // 2
            if side == cfg.attention_resolution:
                self.down.append(SelfAttention(cin))
        self.res = nn.ModuleList(ResBlockAdaIN(cin, cin) for _ in range(cfg.num_res_blocks))
        self.up = nn.ModuleList()
        for i in reversed(range(cfg.num_down)):
            cout = cfg.width(i - 1) if i > 0 else cfg.base_width
            self.up.append(ResBlockAdaIN(cin, cout, up=True))
            cin, side = cout, side * 2
            if side == cfg.attention_resolution:
                self.up.append(SelfAttention(cin))
        # plain convs: spectral norm of an all-zero weight divides by zero
        self.to_correction = nn.Conv2d(cin, 3, 3, padding=1)
        self.to_mask = nn.Conv2d(cin, 1, 3, padding=1)
        nn.init.zeros_(self.to_correction.weight)
        nn.init.zeros_(self.to_correction.bias)
        nn.init.zeros_(self.to_mask.bias)
        adain_blocks = [b for b in [*self.res, *self.up] if isinstance(b, ResBlockAdaIN)]
        self.psi_sizes = [b.num_params for b in adain_blocks] + [2 * cin]
        self.num_adain_params = sum(self.psi_sizes)
        self.projection = nn.Parameter(torch.randn(self.num_adain_params, cfg.embed_dim) * 0.01)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """psi = P e: (B, embed_dim) -> (B, num_adain_params)."""
        if embedding.ndim != 2 or embedding.shape[1] != self.cfg.embed_dim:
            raise ShapeError("generator embedding", ("B", self.cfg.embed_dim), embedding.shape)
        return embedding @ self.projection.t()

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
        h = self.stem(torch.cat([rasters, warped], dim=1))  # (B, C0, R, R)
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
        correction = CORRECTION_RANGE * torch.tanh(self.to_correction(h))
        mask = torch.sigmoid(self.to_mask(h))
        return correction, mask

    def forward(self, rasters, warped, embedding):
        """-> (correction, mask) with psi = P e."""
        return self.synthesize(rasters, warped, self.project(embedding))


def compose(warped: torch.Tensor, correction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The face at network resolution: warped + mask * correction (in [-1, 1] units, not clamped)."""
    return warped + mask * correction


def build_networks(config: ModelConfig):
    """(Embedder, WarpGenerator, Discriminator) for a warp config."""
    from monalisa.models.discriminator import Discriminator
    from monalisa.models.embedder import Embedder

    return Embedder(config), WarpGenerator(config), Discriminator(config)


def build_models(ckpt):
    """``models.checkpoint.build_models`` (which builds the warp networks for a warp config)."""
    from monalisa.models.checkpoint import build_models as build

    return build(ckpt)
