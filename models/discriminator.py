"""Projection discriminator D(x, y, i): realism score of an image given its landmark raster."""
from __future__ import annotations

import torch
from torch import nn

from monalisa.errors import ShapeError
from monalisa.models.config import ModelConfig
from monalisa.models.embedder import encoder_blocks
from monalisa.models.layers import ResBlockDown


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.blocks = encoder_blocks(cfg, cfg.embed_dim)
        self.blocks.append(ResBlockDown(cfg.embed_dim, cfg.embed_dim, down=False))
        # W_i start as distinct half-normal codes: the embedding-match loss pulls e_hat_i towards
        # them, so near-zero W would collapse e_hat (and psi = P e_hat) and G would ignore identity;
        # non-negative because e_hat (ReLU, sum pooling) is
        self.W = nn.Parameter(torch.randn(cfg.num_videos, cfg.embed_dim).abs())
        self.w0 = nn.Parameter(torch.zeros(cfg.embed_dim))
        self.b = nn.Parameter(torch.zeros(1))

    def features(self, images, rasters):
        """-> (v (B, embed_dim), intermediate activations for feature matching)."""
        r = self.cfg.resolution
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, r, r):
            raise ShapeError("discriminator images", ("B", 3, r, r), images.shape)
        if rasters.shape != images.shape:
            raise ShapeError("discriminator rasters", images.shape, rasters.shape)
        h, feats = torch.cat([images, rasters], dim=1), []
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        return torch.relu(h).sum(dim=(2, 3)), feats

    def score_with(self, images, rasters, w):
        """Score against a given W column w (B, embed_dim) (fine-tuning uses w = e_hat)."""
        v, feats = self.features(images, rasters)
        return (v * (w + self.w0)).sum(dim=1) + self.b, feats

    def forward(self, images, rasters, video_index):
        """images, rasters (B, 3, H, W), video_index (B,) long -> (score (B,), features)."""
        return self.score_with(images, rasters, self.W[video_index])
