"""Embedder E(x, y): maps K (image, landmark raster) pairs of one person to one embedding e."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monalisa.errors import ShapeError
from monalisa.models.config import ModelConfig
from monalisa.models.layers import ResBlockDown, SelfAttention


def encoder_blocks(cfg: ModelConfig, out_dim: int, side: int | None = None) -> nn.ModuleList:
    """Residual downsampling stack on concat(image, raster) (6 ch) from side (default the config's
    resolution) down to 4x4, ending at out_dim."""
    side = side or cfg.resolution
    n = (side // 4).bit_length() - 1  # blocks to reach 4x4
    blocks, cin = nn.ModuleList(), 6
    for i in range(n):
        cout = out_dim if i == n - 1 else cfg.width(i)
        blocks.append(ResBlockDown(cin, cout))
        cin, side = cout, side // 2
        if side == cfg.attention_resolution:
            blocks.append(SelfAttention(cout))
    return blocks


def check_pairs(images: torch.Tensor, rasters: torch.Tensor, res: int, what: str) -> None:
    expected = (images.shape[0] if images.ndim else "B", "K", 3, res, res)
    if images.ndim != 5 or tuple(images.shape[2:]) != (3, res, res):
        raise ShapeError(f"{what} images", expected, images.shape)
    if rasters.shape != images.shape:
        raise ShapeError(f"{what} rasters", images.shape, rasters.shape)


class Embedder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = encoder_blocks(cfg, cfg.embed_dim, cfg.net_resolution)

    def embed_frames(self, images: torch.Tensor, rasters: torch.Tensor) -> torch.Tensor:
        """Per-frame embeddings: images, rasters (N, 3, H, W) -> (N, embed_dim)."""
        h = torch.cat([images, rasters], dim=1)  # (N, 6, H, W)
        if self.cfg.shuffle > 1:  # identity needs no sub-pixel detail: embed at the network's side
            h = F.avg_pool2d(h, self.cfg.shuffle)
        for block in self.blocks:
            h = block(h)
        return torch.relu(h).sum(dim=(2, 3))  # global sum pooling -> (N, E)

    def forward(self, images: torch.Tensor, rasters: torch.Tensor) -> torch.Tensor:
        """images, rasters (B, K, 3, H, W) -> e_hat (B, embed_dim), the mean over the K frames."""
        check_pairs(images, rasters, self.cfg.resolution, "embedder")
        b, k = images.shape[:2]
        e = self.embed_frames(images.flatten(0, 1), rasters.flatten(0, 1))  # (B*K, E)
        return e.view(b, k, -1).mean(dim=1)
