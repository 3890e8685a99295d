"""VGG19 feature extractor for the content loss, weights from a local .safetensors file.

Key names follow torchvision's `vgg19().features` (`features.0.weight`, ...). To convert, on a
machine that has torchvision and the weights:

    from safetensors.torch import save_file
    import torchvision
    sd = torchvision.models.vgg19(weights="IMAGENET1K_V1").features.state_dict()
    save_file({f"features.{k}": v.contiguous() for k, v in sd.items()}, "vgg19.safetensors")

A VGGFace (VGG16-layout) file converts the same way. Nothing is downloaded or unpickled here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monalisa.errors import CheckpointError

VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# outputs taken after these ReLUs (relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 for VGG19)
VGG19_TAPS = (1, 6, 11, 20, 29)
VGG16_TAPS = (1, 6, 11, 18, 25)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    def __init__(self, layout=VGG19, taps=VGG19_TAPS):
        super().__init__()
        layers, cin = [], 3
        for v in layout:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers[: max(taps) + 1])
        self.taps = set(taps)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x):  # x (B, 3, H, W) in [-1, 1] -> list of feature maps
        h, out = ((x + 1) / 2 - self.mean) / self.std, []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out


def load_vgg(path, layout=VGG19, taps=VGG19_TAPS) -> VGGFeatures:
    """A VGG feature extractor with weights from `path` (.safetensors, torchvision key names)."""
    from safetensors.torch import load_file

    net = VGGFeatures(layout, taps)
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for missing/corrupt files
        raise CheckpointError(f"{path}: cannot read VGG weights ({exc}); give a .safetensors file") from exc
    own = net.state_dict()
    state = {k: v for k, v in state.items() if k in own}
    missing = sorted(set(own) - set(state) - {"mean", "std"})
    if missing:
        raise CheckpointError(f"{path}: not a VGG feature file, missing {missing[:3]}...")
    net.load_state_dict(state, strict=False)
    return net.eval()
