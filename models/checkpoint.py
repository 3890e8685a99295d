"""Checkpoints: a folder of model.safetensors + checkpoint.json (+ training.safetensors).

Nothing is pickled. The checkpoint's identity is the sha256 of model.safetensors.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from monalisa import __version__
from monalisa.errors import CheckpointError, ConfigError
from monalisa.files import atomic_dir, sha256_file, write_json
from monalisa.models.config import ModelConfig
from monalisa.nodes.facecrop import CropGeometry

FORMAT, VERSION = "monalisa-checkpoint", 1
PARTS = ("embedder", "generator", "discriminator")
#: what a checkpoint folder holds (preview.png is written beside, after)
FILES = ("model.safetensors", "checkpoint.json", "training.safetensors", "preview.png")


@dataclass
class Checkpoint:
    config: ModelConfig
    state: dict  # "embedder.x.weight" -> tensor, ...
    step: int
    meta: dict  # the whole checkpoint.json
    sha256: str
    path: Path
    training: dict | None = None  # training.safetensors tensors, when present


def save_checkpoint(path, embedder, generator, discriminator, config: ModelConfig, step: int, *,
                    optimizers: dict | None = None, extra: dict | None = None, dtype=None) -> str:
    """Write the checkpoint folder atomically; returns its sha256. optimizers: name -> optimizer.

    dtype=torch.float16 stores floating weights in half precision (compact reference weights).
    """
    from safetensors.torch import save_file

    state = {}
    for name, net in zip(PARTS, (embedder, generator, discriminator)):
        for k, v in net.state_dict().items():
            v = v.detach().cpu()
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            state[f"{name}.{k}"] = v.contiguous()
    meta = {"format": FORMAT, "version": VERSION, "config": config.to_dict(), "step": int(step),
            "videos": [], "metrics": {}, "monalisa_version": __version__, **(extra or {})}
    with atomic_dir(path, ours=FILES) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        if optimizers:
            tensors, groups = {}, {}
            for name, opt in optimizers.items():
                sd = opt.state_dict()
                groups[name] = sd["param_groups"]
                for idx, st in sd["state"].items():
                    for key, val in st.items():
                        tensors[f"{name}.state.{idx}.{key}"] = torch.as_tensor(val).contiguous()
            tensors["rng.torch"] = torch.get_rng_state()
            save_file(tensors, str(tmp / "training.safetensors"))
            meta["training"] = {"param_groups": groups}
        write_json(tmp / "checkpoint.json", meta)
    return sha256_file(Path(path) / "model.safetensors")


def load_checkpoint(path, *, expect_config: ModelConfig | None = None) -> Checkpoint:
    from safetensors.torch import load_file

    path = Path(path)
    meta_path, model_path = path / "checkpoint.json", path / "model.safetensors"
    for p in (path, meta_path, model_path):
        if not p.exists():
            raise CheckpointError(f"{p}: missing; a checkpoint is a folder with checkpoint.json and model.safetensors")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta_path}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: holds a JSON {type(meta).__name__}, not a checkpoint's object; "
                              "re-copy the checkpoint folder or re-train")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{meta_path}: format {meta.get('format')!r} version {meta.get('version')!r} "
                              f"is not {FORMAT!r} version {VERSION}; use a matching monalisa")
    try:
        config = ModelConfig.from_dict(meta["config"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{meta_path}: bad config ({exc})") from exc
    if expect_config is not None and config != expect_config:
        diff = {k: (v, expect_config.to_dict()[k]) for k, v in config.to_dict().items()
                if v != expect_config.to_dict()[k]}
        raise CheckpointError(f"{path}: config differs from the one expected (saved, expected): {diff}")
    try:
        state = load_file(str(model_path))
    except Exception as exc:  # safetensors raises several types on corrupt files
        raise CheckpointError(f"{model_path}: corrupt safetensors ({exc}); re-copy or re-train") from exc
    training = None
    if (path / "training.safetensors").exists():
        try:
            training = load_file(str(path / "training.safetensors"))
        except Exception as exc:
            raise CheckpointError(f"{path / 'training.safetensors'}: corrupt ({exc})") from exc
    return Checkpoint(config, state, int(meta.get("step", 0)), meta, sha256_file(model_path), path, training)


def crop_geometry(ckpt: Checkpoint) -> CropGeometry:
    """The model crop the checkpoint was trained on (checkpoint.json "crop"); checkpoints from
    before it was recorded were all prepared at 128 px (or their resolution, when larger)."""
    if "crop" in ckpt.meta:
        try:
            return CropGeometry.from_dict(ckpt.meta["crop"])
        except (ConfigError, TypeError) as exc:
            raise CheckpointError(f"{ckpt.path / 'checkpoint.json'}: bad \"crop\" ({exc})") from None
    r = ckpt.config.resolution
    return CropGeometry(resolution=r, prepare_size=max(128, r))


def build_networks(config: ModelConfig):
    """-> (Embedder, Generator or WarpGenerator, Discriminator), freshly initialised, for ``config``."""
    from monalisa.models.discriminator import Discriminator
    from monalisa.models.embedder import Embedder

    if config.generator == "warp":
        from monalisa.models.warpgen import WarpGenerator as Gen
    else:
        from monalisa.models.generator import Generator as Gen
    return Embedder(config), Gen(config), Discriminator(config)


def build_models(ckpt: Checkpoint):
    """-> (Embedder, Generator or WarpGenerator, Discriminator) in float32 with the checkpoint's weights."""
    nets = build_networks(ckpt.config)
    for name, net in zip(PARTS, nets):
        prefix = f"{name}."
        sub = {k[len(prefix):]: v.float() for k, v in ckpt.state.items() if k.startswith(prefix)}
        own = net.state_dict()
        missing, unexpected = sorted(set(own) - set(sub)), sorted(set(sub) - set(own))
        bad = [k for k in set(own) & set(sub) if own[k].shape != sub[k].shape]
        if missing or unexpected or bad:
            raise CheckpointError(f"{ckpt.path}: {name} weights do not fit this architecture "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]}, shape {bad[:3]})")
        net.load_state_dict(sub)
    return nets


def restore_optimizers(ckpt: Checkpoint, optimizers: dict) -> None:
    """Load optimiser states (and the torch RNG) saved by save_checkpoint(optimizers=...)."""
    if ckpt.training is None or "training" not in ckpt.meta:
        raise CheckpointError(f"{ckpt.path}: no training.safetensors to resume from")
    groups = ckpt.meta["training"]["param_groups"]
    for name, opt in optimizers.items():
        if name not in groups:
            raise CheckpointError(f"{ckpt.path}: no optimiser state named {name!r}")
        state = {}
        prefix = f"{name}.state."
        for key, val in ckpt.training.items():
            if key.startswith(prefix):
                idx, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[field] = val
        opt.load_state_dict({"state": state, "param_groups": groups[name]})
    torch.set_rng_state(ckpt.training["rng.torch"])


def warm_start(config: ModelConfig, ckpt: Checkpoint):
    """(E, G, D) for ``config`` initialised from ``ckpt`` (another run's weights): E and G must fit,
    except that a warp generator of shuffle 1 grows into one of shuffle s over the same trunk
    (``models.warpgen.grow_shuffle``); D keeps what fits (its per-video rows W are new: other videos)."""
    from monalisa.models.warpgen import grow_shuffle

    E, G, D = build_networks(config)
    sE, sG, sD = build_models(ckpt)
    try:
        E.load_state_dict(sE.state_dict())
        if config.generator == "warp" and sG.cfg.generator == "warp" and sG.cfg.shuffle != config.shuffle:
            grow_shuffle(sG, G)
        else:
            G.load_state_dict(sG.state_dict())
    except (RuntimeError, ConfigError) as exc:
        raise CheckpointError(f"{ckpt.path}: its weights cannot start a {config.generator} {config.resolution} px "
                              f"run ({str(exc).splitlines()[0]}); give a checkpoint of the same preset, or "
                              "warp_small for warp") from None
    own = D.state_dict()
    D.load_state_dict({k: v for k, v in sD.state_dict().items() if k != "W" and k in own and v.shape == own[k].shape},
                      strict=False)
    return E, G, D


def export_reference(checkpoint, out) -> str:
    """Copy a checkpoint's weights in float16, without optimiser state: compact reference weights."""
    ckpt = load_checkpoint(checkpoint)
    E, G, D = build_models(ckpt)
    extra = {k: ckpt.meta[k] for k in ("videos", "metrics", "crop") if k in ckpt.meta}
    extra["source_checkpoint_sha256"] = ckpt.sha256
    return save_checkpoint(out, E, G, D, ckpt.config, ckpt.step, extra=extra, dtype=torch.float16)
