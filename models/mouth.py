"""The mouth-interior network: paints teeth, tongue and the dark of the mouth inside the parted lips.

A local task, separate from the face generator (so fine-tuning an identity never touches it): the
input is the mouth patch of a frame (``nodes.mouth``: the driven mouth levelled and scaled into an
R x R square, sRGB in [-1, 1]) with the hole inside the inner-lip line blanked, plus the hole itself
as a fourth channel; the output is an sRGB image in [-1, 1] of which the node keeps the hole.

Architecture: a small U-Net: a stem convolution, ``levels`` strided downsampling stages (two convolutions, leaky ReLU),
each mirrored by a bilinear upsampling stage that concatenates the encoder's features of its scale,
a 1x1 head and tanh. No normalisation: the patch's own colours are what the hole must match.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from monalisa.errors import CheckpointError, ConfigError

RECORD = "mouth.json"  # what makes a folder a mouth checkpoint (models.mouth_train writes it)


@dataclass(frozen=True)
class MouthConfig:
    resolution: int = 64  # patch side
    width: int = 24  # channels of the stem; doubled per level up to max_width
    max_width: int = 128
    levels: int = 3  # downsampling stages (bottleneck side = resolution / 2**levels)

    def __post_init__(self):
        r = self.resolution
        if r < 16 or r & (r - 1) or r >> self.levels < 4:
            raise ConfigError(f"mouth patch side must be a power of two >= 16 leaving >= 4 px at the bottleneck, got "
                              f"{r} with {self.levels} levels")

    def channels(self, level: int) -> int:
        return min(self.width * 2**level, self.max_width)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MouthConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ConfigError(f"unknown mouth config keys: {', '.join(sorted(set(d) - known))}")
        return cls(**d)


def _block(cin, cout, stride=1, convs=2):
    layers = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2)]
    for _ in range(convs - 1):
        layers += [nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class MouthNet(nn.Module):
    """(B, 4, R, R) patch with the hole blanked + hole -> (B, 3, R, R) sRGB in [-1, 1]."""

    def __init__(self, cfg: MouthConfig = MouthConfig()):
        super().__init__()
        self.cfg = cfg
        self.stem = _block(4, cfg.channels(0), convs=1)
        self.down = nn.ModuleList(_block(cfg.channels(i), cfg.channels(i + 1), stride=2) for i in range(cfg.levels))
        self.up = nn.ModuleList(_block(cfg.channels(i + 1) + cfg.channels(i), cfg.channels(i), convs=1 if i == 0 else 2)
                                for i in reversed(range(cfg.levels)))
        self.head = nn.Conv2d(cfg.channels(0), 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.stem(x)]
        for down in self.down:
            feats.append(down(feats[-1]))
        h = feats.pop()
        for up in self.up:
            skip = feats.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = up(torch.cat([h, skip], dim=1))
        return torch.tanh(self.head(h))


def is_mouth_checkpoint(path) -> bool:
    """Whether ``path`` is a mouth-model folder (mouth.json), not a face checkpoint (checkpoint.json)."""
    return (Path(path) / RECORD).is_file() and not (Path(path) / "checkpoint.json").exists()


def load_mouth_checkpoint(path):
    """A mouth-model folder (mouth.json + model.safetensors, ``models.mouth_train``) as a
    ``models.checkpoint.Checkpoint`` (config: MouthConfig; state: the MouthNet's weights);
    CheckpointError (one line) when anything is missing or does not fit."""
    from safetensors.torch import load_file

    from monalisa.files import sha256_file
    from monalisa.models.checkpoint import Checkpoint

    path = Path(path)
    record_path, model_path = path / RECORD, path / "model.safetensors"
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: missing; a mouth model is a folder with {RECORD} and model.safetensors "
                              "(python -m monalisa.models.mouth_train)")
    try:
        record = json.loads(record_path.read_text())
        config = MouthConfig.from_dict(record["config"])
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{record_path}: not a mouth model record with a \"config\" ({exc})") from None
    try:
        state = load_file(str(model_path))
        MouthNet(config).load_state_dict(state)
    except Exception as exc:  # corrupt safetensors, or weights of another shape
        raise CheckpointError(f"{model_path}: weights do not load into the mouth network of {RECORD} "
                              f"({str(exc).splitlines()[0]}); re-copy or re-train") from None
    return Checkpoint(config, state, int(record.get("step", 0)), record, sha256_file(model_path), path)
