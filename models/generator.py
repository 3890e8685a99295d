"""Generator G(y, e): landmark raster + identity embedding -> image, all AdaIN params from P e."""
from __future__ import annotations

import torch
from torch import nn

from monalisa.errors import ShapeError
from monalisa.models.config import ModelConfig
from monalisa.models.layers import ResBlockAdaIN, ResBlockDown, SelfAttention, adain, sn_conv


class AdaINGenerator(nn.Module):
    """What both generators share: AdaIN parameters psi = P e, chunked over the AdaIN blocks of
    ``res`` and ``up`` and the final AdaIN."""

    cfg: ModelConfig

    def init_projection(self, out_channels: int) -> None:
        """Size psi from the trunk (``out_channels``: the last block's) and register P."""
        self.psi_sizes = [b.num_params for b in [*self.res, *self.up] if isinstance(b, ResBlockAdaIN)]
        self.psi_sizes.append(2 * out_channels)
        self.num_adain_params = sum(self.psi_sizes)
        self.projection = nn.Parameter(torch.randn(self.num_adain_params, self.cfg.embed_dim) * 0.01)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """psi = P e: (B, embed_dim) -> (B, num_adain_params)."""
        if embedding.ndim != 2 or embedding.shape[1] != self.cfg.embed_dim:
            raise ShapeError("generator embedding", ("B", self.cfg.embed_dim), embedding.shape)
        return embedding @ self.projection.t()


class Generator(AdaINGenerator):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.down, self.res, self.up, cin = trunk(cfg, 3, cfg.resolution)
        self.out_conv = sn_conv(cin, 3)
        self.out_channels = cin
        self.init_projection(cin)

    def synthesize(self, rasters: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """rasters (B, 3, H, W) in [-1, 1], psi (B, num_adain_params) -> image (B, 3, H, W)."""
        r = self.cfg.resolution
        if rasters.ndim != 4 or tuple(rasters.shape[1:]) != (3, r, r):
            raise ShapeError("generator rasters", ("B", 3, r, r), rasters.shape)
        if psi.ndim != 2 or psi.shape[1] != self.num_adain_params:
            raise ShapeError("generator psi", ("B", self.num_adain_params), psi.shape)
        chunks = iter(torch.split(psi, self.psi_sizes, dim=1))
        h = rasters
        for block in self.down:
            h = block(h)  # (B, C, H/2**i, W/2**i)
        for block in [*self.res, *self.up]:
            h = block(h, next(chunks)) if isinstance(block, ResBlockAdaIN) else block(h)
        h = torch.relu(adain(h, next(chunks)))  # (B, C0, H, W)
        return torch.tanh(self.out_conv(h))

    def forward(self, rasters: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.synthesize(rasters, self.project(embedding))


def trunk(cfg: ModelConfig, cin: int, side: int) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList, int]:
    """The generators' shared trunk on ``cin`` channels at ``side`` px: residual downsampling blocks
    (instance norm), the AdaIN residual bottleneck, AdaIN upsampling blocks, self-attention after the
    block at ``cfg.attention_resolution`` -> (down, res, up, channels out)."""
    down = nn.ModuleList()
    for i in range(cfg.num_down):
        down.append(ResBlockDown(cin, cfg.width(i), norm=True))
        cin, side = cfg.width(i), side // 2
        if side == cfg.attention_resolution:
            down.append(SelfAttention(cin))
    res = nn.ModuleList(ResBlockAdaIN(cin, cin) for _ in range(cfg.num_res_blocks))
    up = nn.ModuleList()
    for i in reversed(range(cfg.num_down)):
        cout = cfg.width(i - 1) if i > 0 else cfg.base_width
        up.append(ResBlockAdaIN(cin, cout, up=True))
        cin, side = cout, side * 2
        if side == cfg.attention_resolution:
            up.append(SelfAttention(cin))
    return down, res, up, cin

