"""Building blocks of E, G and D: residual down/up blocks, AdaIN from psi slices, self-attention.

Everything is spectrally normalised as in the paper. Scales are Python floats so the graph exports
to ONNX and converts to fp16 without shape-derived casts.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv(cin: int, cout: int, k: int = 3) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, padding=k // 2))


def adain(x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Instance-normalise x (B, C, H, W) and modulate by psi (B, 2C): (1 + scale) * x + bias."""
    c = x.shape[1]
    scale, bias = psi[:, :c, None, None], psi[:, c:, None, None]  # (B, C, 1, 1) each
    return F.instance_norm(x) * (1.0 + scale) + bias


class SelfAttention(nn.Module):
    """SAGAN self-attention with a zero-initialised residual gate."""

    def __init__(self, ch: int):
        super().__init__()
        self.key_dim = max(ch // 8, 1)
        self.q = sn_conv(ch, self.key_dim, 1)
        self.k = sn_conv(ch, self.key_dim, 1)
        self.v = sn_conv(ch, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scale = float(self.key_dim) ** -0.5

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)  # (B, HW, Ck)
        k = self.k(x).flatten(2)  # (B, Ck, HW)
        v = self.v(x).flatten(2)  # (B, C, HW)
        attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)  # (B, HW, HW)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)  # (B, C, H, W)
        return x + self.gamma * out


class ResBlockDown(nn.Module):
    """Residual block halving H and W; optional instance norm (the generator's encoder)."""

    def __init__(self, cin: int, cout: int, norm: bool = False, down: bool = True):
        super().__init__()
        self.conv1, self.conv2 = sn_conv(cin, cout), sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1)
        self.norm1 = nn.InstanceNorm2d(cin, affine=True) if norm else nn.Identity()
        self.norm2 = nn.InstanceNorm2d(cout, affine=True) if norm else nn.Identity()
        self.down = down

    def forward(self, x):  # (B, Cin, H, W) -> (B, Cout, H/2, W/2)
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        s = self.skip(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class ResBlockAdaIN(nn.Module):
    """Residual block whose two normalisations are AdaIN driven by psi; optional 2x upsampling.

    Takes `num_params` = 2 * cin + 2 * cout values of psi.
    """

    def __init__(self, cin: int, cout: int, up: bool = False):
        super().__init__()
        self.cin, self.cout, self.up = cin, cout, up
        self.conv1, self.conv2 = sn_conv(cin, cout), sn_conv(cout, cout)
        self.skip = sn_conv(cin, cout, 1) if (cin != cout or up) else nn.Identity()
        self.num_params = 2 * cin + 2 * cout

    def forward(self, x, psi):  # x (B, Cin, H, W), psi (B, num_params)
        p1, p2 = psi[:, : 2 * self.cin], psi[:, 2 * self.cin :]
        h = F.relu(adain(x, p1))
        if self.up:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.conv1(h)
        h = self.conv2(F.relu(adain(h, p2)))
        return h + self.skip(x)  # (B, Cout, H*s, W*s)


def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-norm parametrisation by its current normalised weight, in place.

    For inference/export: the folded net computes the same as the eval-mode net, without the
    power-iteration ops (aten::vdot has no ONNX export). Returns `module`.
    """
    from torch.nn.utils import parametrize

    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module
