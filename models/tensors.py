"""uint8 images <-> model tensors, once for all of training, fine-tuning and previews.

The conversion itself is ``monalisa.nodes.facecrop.to_model`` / ``from_model`` (numpy, shared with
the torch-free runtime); these wrap it for torch.
"""
from __future__ import annotations

import numpy as np
import torch

from monalisa.nodes.facecrop import from_model, to_model


def to_tensor(batch) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 tensor (..., 3, H, W) in [-1, 1]."""
    return torch.from_numpy(to_model(batch))


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """float tensor (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3) (clipped, rounded)."""
    return from_model(t.detach().float().cpu().numpy())
