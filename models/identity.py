"""Identity packs: a fine-tuned generator + psi + embedding for one person (safetensors + JSON)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from monalisa import __version__
from monalisa.errors import DivergedError, IdentityPackError
from monalisa.files import atomic_dir, write_json

FORMAT, VERSION = "monalisa-identity", 1
#: what an identity pack folder holds
FILES = ("identity.safetensors", "identity.json", "contact_sheet.png")


@dataclass
class IdentityPack:
    state: dict  # generator.* weights
    psi: object  # (1, n) tensor
    embedding: object  # (1, E) tensor
    meta: dict
    path: Path


def save_identity(path, generator, psi, embedding, meta: dict, extra_files: dict | None = None) -> None:
    """Write the pack folder atomically. extra_files: name -> bytes written beside (e.g. a PNG).
    DivergedError (exit 1, nothing written) when a weight is not finite."""
    from safetensors.torch import save_file

    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tensors["psi"], tensors["embedding"] = psi.detach().cpu().contiguous(), embedding.detach().cpu().contiguous()
    check_finite(tensors, path)
    with atomic_dir(path, ours=(*FILES, *(extra_files or {}))) as tmp:
        save_file(tensors, str(tmp / "identity.safetensors"))
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        write_json(tmp / "identity.json", {"format": FORMAT, "version": VERSION,
                                           "monalisa_version": __version__, **meta})


def check_finite(tensors: dict, path) -> None:
    """DivergedError naming how many weights of which tensors are NaN or infinite."""
    import torch

    bad = {k: int((~torch.isfinite(v)).sum()) for k, v in tensors.items() if v.is_floating_point()}
    bad = {k: n for k, n in bad.items() if n}
    if bad:
        total = sum(v.numel() for v in tensors.values())
        first = next(iter(bad))
        raise DivergedError(f"{path}: not written: fine-tuning diverged, {sum(bad.values())} of {total} weights are "
                            f"NaN or infinite ({len(bad)} tensors, first {first}); re-run with a lower --steady "
                            "or fewer --steps")


def load_identity(path, *, base_sha256: str | None = None) -> IdentityPack:
    from safetensors.torch import load_file

    path = Path(path)
    meta_path, st_path = path / "identity.json", path / "identity.safetensors"
    for p in (meta_path, st_path):
        if not p.exists():
            raise IdentityPackError(f"{p}: missing; an identity pack comes from `monalisa finetune`")
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(st_path))
    except Exception as exc:
        raise IdentityPackError(f"{path}: corrupt identity pack ({exc}); re-run monalisa finetune") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise IdentityPackError(f"{meta_path}: not a {FORMAT} version {VERSION} pack")
    if base_sha256 is not None and meta.get("base_checkpoint_sha256") != base_sha256:
        raise IdentityPackError(f"{path}: fine-tuned from checkpoint {str(meta.get('base_checkpoint_sha256'))[:12]}, "
                                f"not the given {base_sha256[:12]}; use the pack's own base checkpoint")
    if "psi" not in tensors or "embedding" not in tensors:
        raise IdentityPackError(f"{st_path}: psi or embedding missing; re-run monalisa finetune")
    state = {k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")}
    return IdentityPack(state, tensors["psi"], tensors["embedding"], meta, path)
