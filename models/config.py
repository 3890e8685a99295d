"""Model and optimiser configuration: one frozen dataclass per concern, with named presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from monalisa.errors import ConfigError


GENERATORS = ("plain", "warp")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the embedder E, generator G and discriminator D (Zakharov et al. 2019)."""

    resolution: int = 64  # square image side, a power of two >= 16
    base_width: int = 16  # channels after the first downsampling block
    max_width: int = 512  # widths double per block up to this
    embed_dim: int = 128  # size of the identity embedding e
    num_down: int = 3  # downsampling blocks of G (bottleneck side = resolution / 2**num_down)
    num_res_blocks: int = 4  # AdaIN residual blocks in G's bottleneck
    attention_resolution: int = 16  # self-attention after the block at this side (0: none)
    num_videos: int = 1  # rows of D's W matrix (one per training video)
    generator: str = "plain"  # "plain": G(y, e) -> image; "warp": G(y, warped still, e) -> correction, mask
    # warp generator only: its inputs are space-to-depth'ed by this factor and its outputs depth-to-space'd
    # back (pixel (un)shuffle), so a 256² face costs a 64² network; the embedder averages to that side too
    shuffle: int = 1

    def __post_init__(self):
        r = self.resolution
        if r < 16 or r & (r - 1):
            raise ConfigError(f"resolution must be a power of two >= 16, got {r}")
        if self.shuffle < 1 or self.shuffle & (self.shuffle - 1) or r // self.shuffle < 16:
            raise ConfigError(f"shuffle must be a power of two leaving a network side >= 16, got {self.shuffle} at {r}")
        if self.shuffle > 1 and self.generator != "warp":
            raise ConfigError("shuffle > 1 is a warp-generator option; the plain generator needs shuffle=1")
        if self.net_resolution >> self.num_down < 4:
            raise ConfigError(f"num_down={self.num_down} leaves a bottleneck under 4 px at {self.net_resolution}")
        if min(self.base_width, self.max_width, self.embed_dim, self.num_videos) < 1:
            raise ConfigError("widths, embed_dim and num_videos must be positive")
        if self.generator not in GENERATORS:
            raise ConfigError(f"generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}")

    @property
    def net_resolution(self) -> int:
        """Side at which the warp generator's and the embedder's convolutions run (resolution / shuffle)."""
        return self.resolution // self.shuffle

    def width(self, level: int) -> int:
        """Channels after `level` + 1 downsampling blocks."""
        return min(self.base_width * 2**level, self.max_width)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; known: {sorted(known)}")
        return cls(**d)


PRESETS = {
    "small": ModelConfig(resolution=64, base_width=16, max_width=256, embed_dim=128,
                         num_down=3, num_res_blocks=4, attention_resolution=16),
    "medium": ModelConfig(resolution=128, base_width=32, max_width=512, embed_dim=256,
                          num_down=4, num_res_blocks=4, attention_resolution=32),
    "paper": ModelConfig(resolution=256, base_width=64, max_width=512, embed_dim=512,
                         num_down=4, num_res_blocks=5, attention_resolution=32),
}

# warp-conditioned (bi-layer) generator, models/warpgen.py: a light per-frame network beside the
# still's texture warped at full resolution; it predicts a correction and a blend mask
PRESETS.update({
    "warp_small": ModelConfig(resolution=64, base_width=16, max_width=128, embed_dim=128,
                              num_down=3, num_res_blocks=2, attention_resolution=0, generator="warp"),
    "warp_medium": ModelConfig(resolution=128, base_width=16, max_width=128, embed_dim=128,
                               num_down=4, num_res_blocks=2, attention_resolution=0, generator="warp"),
    # 256² in and out, the warp_small trunk at 64² between a space-to-depth stem and depth-to-space heads
    "warp": ModelConfig(resolution=256, base_width=16, max_width=128, embed_dim=128, shuffle=4,
                        num_down=3, num_res_blocks=2, attention_resolution=0, generator="warp"),
})


#: content losses without VGG weights (``models.losses.ContentLoss``): "pyramid" (default) L1 + gradient
#: L1 over 3 scales + MS-SSIM; "l1-msssim" the earlier L1 + MS-SSIM, kept for the ablation in docs/evaluate.md
STAND_INS = ("pyramid", "l1-msssim")

#: defaults of warp-generator fine-tuning (``monalisa finetune``, ``monalisa evaluate``): the steadiness
#: term's weight and the landmark-jittered copies per pair; measured in docs/warpgen.md ("Flicker")
FINETUNE_STEADY, FINETUNE_JITTER = 35.0, 3


def get_config(name: str, **overrides) -> ModelConfig:
    """A named preset, optionally with some fields replaced (e.g. num_videos)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model config {name!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


@dataclass(frozen=True)
class OptimConfig:
    """The paper's Adam settings: lr 5e-5 for E and G, 2e-4 for D."""

    lr_eg: float = 5e-5
    lr_d: float = 2e-4
    betas: tuple = (0.0, 0.999)
