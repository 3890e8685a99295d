"""Episodes for meta-learning, drawn from a prepared folder (see monalisa/prepare.py).

An episode is one video i, K reference frames (image + landmark raster) and one target frame of
the same video. Sampling is a pure function of (seed, step, rank, slot), so a resumed or a
multi-process run sees exactly the episodes a single uninterrupted run would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monalisa.errors import DataError
from monalisa.prepare import manifest_geometry, read_manifest
from monalisa.models.tensors import to_tensor
from monalisa.nodes.facecrop import CropGeometry, model_crop


@dataclass
class Video:
    id: str
    frames: np.ndarray  # uint8 (N, S, S, 3), memory-mapped
    landmarks: np.ndarray  # float32 (N, 68, 2), crop pixels


class PreparedData:
    """The videos of a prepared folder, frames memory-mapped."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.size = int(self.manifest["size"])
        self.videos = []
        for entry in self.manifest["videos"]:
            sub = self.folder / entry["dir"]
            try:
                frames = np.load(sub / "frames.npy", mmap_mode="r")
                points = np.load(sub / "landmarks.npy")
            except (OSError, ValueError) as exc:
                raise DataError(f"{sub}: frames.npy or landmarks.npy unreadable ({exc}); "
                                "delete the folder and re-run monalisa prepare") from exc
            if frames.ndim != 4 or frames.shape[1:] != (self.size, self.size, 3) or len(points) != len(frames):
                raise DataError(f"{sub}: frames {frames.shape} / landmarks {points.shape} do not match "
                                f"(N, {self.size}, {self.size}, 3) / (N, 68, 2); re-run monalisa prepare")
            self.videos.append(Video(entry["id"], frames, points))

    def __len__(self):
        return len(self.videos)

    def geometry(self, resolution: int) -> CropGeometry:
        """The model crop these squares make at ``resolution`` (recorded in checkpoints)."""
        return manifest_geometry(self.manifest, resolution)

    def pair(self, video: int, frame: int, resolution: int):
        """(image, raster) uint8 (R, R, 3) each for one frame at the model resolution, cut by the
        one model crop (``nodes.facecrop.model_crop``) from the prepared square."""
        v = self.videos[video]
        crop = model_crop(np.asarray(v.frames[frame]), v.landmarks[frame], self.geometry(resolution))
        return crop.image, crop.raster

    def min_frames(self) -> tuple[str, int]:
        """(id, frames) of the video with the fewest frames."""
        v = min(self.videos, key=lambda v: len(v.frames))
        return v.id, len(v.frames)


def episode_batch(data: PreparedData, step: int, batch_size: int, k: int, resolution: int,
                  seed: int = 0, rank: int = 0) -> dict:
    """A batch of episodes -> tensors: ref_images/ref_rasters (B, K, 3, R, R), images/rasters
    (B, 3, R, R) of the targets, video (B,) long. Deterministic in (seed, step, rank)."""
    refs, ref_r, tgt, tgt_r, vid = [], [], [], [], []
    for slot in range(batch_size):
        rng = np.random.default_rng([seed, step, rank, slot])
        i = int(rng.integers(len(data)))
        n = len(data.videos[i].frames)
        picks = rng.choice(n, size=k + 1, replace=n < k + 1)
        pairs = [data.pair(i, int(f), resolution) for f in picks]
        refs.append([p[0] for p in pairs[:k]])
        ref_r.append([p[1] for p in pairs[:k]])
        tgt.append(pairs[k][0])
        tgt_r.append(pairs[k][1])
        vid.append(i)
    return {"ref_images": to_tensor(np.array(refs)), "ref_rasters": to_tensor(np.array(ref_r)),
            "images": to_tensor(np.array(tgt)), "rasters": to_tensor(np.array(tgt_r)),
            "video": torch.tensor(vid, dtype=torch.long)}

_to_tensor = to_tensor  # older name, still imported by models/warptrain.py
