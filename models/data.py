"""Episodes for meta-learning, drawn from a prepared folder (see models/prepare.py).

An episode is one video i, K reference frames (image + landmark raster) and one target frame of
the same video. Sampling is a pure function of (seed, step, rank, slot), so a resumed or a
multi-process run sees exactly the episodes a single uninterrupted run would.

For the warp-conditioned generator an episode also carries the *warped still*: the first reference
frame warped to the target's landmarks the way the render path does it. The prepared squares keep
their crop matrices, so the warp happens in the still's own square with the target's landmarks
brought into it (the background stays put, as in a frame), and the result is then resampled into
the target's square: ``nodes.warp`` over the still's landmarks + static anchors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from monalisa.errors import DataError
from monalisa.models.prepare import manifest_geometry, read_manifest
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
        self.videos, self._matrices = [], {}
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

    def matrices(self, video: int) -> np.ndarray:
        """(N, 2, 3) frame -> square crop matrices of one video (from its frames.json)."""
        import json

        if video not in self._matrices:
            entry = self.manifest["videos"][video]
            meta = json.loads((self.folder / entry["dir"] / "frames.json").read_text())
            self._matrices[video] = np.asarray(meta["matrices"], np.float64)
        return self._matrices[video]

    def warped_still(self, video: int, still: int, target: int, points=None) -> np.ndarray:
        """uint8 (S, S, 3): frame ``still`` warped to frame ``target``'s landmarks (or ``points`` in the
        target's square), in the target's square."""
        from monalisa.nodes.warp import build_mesh, dense_warp

        v, s = self.videos[video], self.size
        a_s = np.vstack([self.matrices(video)[still], [0, 0, 1]])
        a_t = np.vstack([self.matrices(video)[target], [0, 0, 1]])
        t_to_s = (a_s @ np.linalg.inv(a_t))[:2]  # target square -> still square
        pts_t = np.asarray(v.landmarks[target] if points is None else points, np.float64)
        driven = pts_t @ t_to_s[:, :2].T + t_to_s[:, 2]
        mesh = build_mesh(v.landmarks[still], (s, s))
        warped = dense_warp(np.asarray(v.frames[still]), mesh, driven).image
        return cv2.warpAffine(warped, cv2.invertAffineTransform(t_to_s), (s, s), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT101)

    def resize(self, image, resolution: int):
        return image if resolution == self.size else cv2.resize(image, (resolution, resolution),
                                                                 interpolation=cv2.INTER_AREA)

    def min_frames(self) -> tuple[str, int]:
        """(id, frames) of the video with the fewest frames."""
        v = min(self.videos, key=lambda v: len(v.frames))
        return v.id, len(v.frames)


def episode_batch(data: PreparedData, step: int, batch_size: int, k: int, resolution: int,
                  seed: int = 0, rank: int = 0, warped: bool = False, jitter_px: float = 0.0) -> dict:
    """A batch of episodes -> tensors: ref_images/ref_rasters (B, K, 3, R, R), images/rasters
    (B, 3, R, R) of the targets, video (B,) long. Deterministic in (seed, step, rank).

    warped: also "warped" (B, 3, R, R), the first reference warped to the target; jitter_px > 0: also
    "jitter_rasters" and "jitter_warped", the same with the target's landmarks moved by N(0, jitter_px)
    prepared-square px (the crop stays that of the true landmarks)."""
    from monalisa.nodes.facecrop import rasterize

    keys = ["ref_images", "ref_rasters", "images", "rasters", "video"]
    keys += ["warped"] * warped + ["jitter_rasters", "jitter_warped"] * (warped and jitter_px > 0)
    out = {key: [] for key in keys}
    for slot in range(batch_size):
        rng = np.random.default_rng([seed, step, rank, slot])
        i = int(rng.integers(len(data)))
        n = len(data.videos[i].frames)
        picks = [int(f) for f in rng.choice(n, size=k + 1, replace=n < k + 1)]
        pairs = [data.pair(i, f, resolution) for f in picks]
        out["ref_images"].append([p[0] for p in pairs[:k]])
        out["ref_rasters"].append([p[1] for p in pairs[:k]])
        out["images"].append(pairs[k][0])
        out["rasters"].append(pairs[k][1])
        out["video"].append(i)
        if "warped" in out:
            out["warped"].append(data.resize(data.warped_still(i, picks[0], picks[k]), resolution))
        if "jitter_warped" in out:
            moved = data.videos[i].landmarks[picks[k]] + rng.normal(0.0, jitter_px, (68, 2))
            out["jitter_warped"].append(data.resize(data.warped_still(i, picks[0], picks[k], moved), resolution))
            out["jitter_rasters"].append(rasterize(moved * (resolution / data.size), resolution))
    return {key: torch.tensor(v, dtype=torch.long) if key == "video" else to_tensor(np.array(v))
            for key, v in out.items()}
