"""Generator G(y, e): landmark raster + identity embedding -> image, all AdaIN params from P e."""
from __future__ import annotations

import torch
from torch import nn

from monalisa.errors import ShapeError
from monalisa.models.config import ModelConfig
from monalisa.models.layers import ResBlockAdaIN, ResBlockDown, SelfAttention, adain, sn_conv


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.down = nn.ModuleList()
        cin, side = 3, cfg.resolution
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
        self.out_conv = sn_conv(cin, 3)
        self.out_channels = cin
        adain_blocks = [b for b in [*self.res, *self.up] if isinstance(b, ResBlockAdaIN)]
        self.psi_sizes = [b.num_params for b in adain_blocks] + [2 * cin]
        self.num_adain_params = sum(self.psi_sizes)
        self.projection = nn.Parameter(torch.randn(self.num_adain_params, cfg.embed_dim) * 0.01)

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """psi = P e: (B, embed_dim) -> (B, num_adain_params)."""
        if embedding.ndim != 2 or embedding.shape[1] != self.cfg.embed_dim:
            raise ShapeError("generator embedding", ("B", self.cfg.embed_dim), embedding.shape)
        return embedding @ self.projection.t()

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
