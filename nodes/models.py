"""The models a render runs: the bundled default, an export folder, or an identity's baked generator.

Feed-forward mode: the embedder turns the still's face crop(s) into an embedding once, then the
generic generator draws every frame. Identity mode: the baked generator from ``monalisa export
--identity`` (the identity's fine-tuned weights folded in) draws every frame from the raster alone.
Two kinds of generator, told apart by their metadata roles: an *image* generator
(``generator`` / ``baked_generator``: raster -> face square) and a *warp* generator
(``warp_generator`` / ``baked_warp_generator``: raster + the still warped to the frame -> a
correction and a blend mask, composited at the still's resolution by ``nodes.warpgen``). A folder
holding ``warp_generator.onnx`` is a warp model. Every file is checked through its metadata
(``nodes.modelfile``) before a frame is drawn.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monalisa.errors import BackendUnavailableError, ModelFormatError
from monalisa.files import sha256_file
from monalisa.nodes.facecrop import CropGeometry
from monalisa.nodes.runtime import OnnxModel

log = logging.getLogger(__name__)

#: the bundled model a render uses when none is named: the 256 px warp-conditioned model
#: (monalisa/weights/warp/MODEL_CARD.md); "reference" is the paper's 64 px image generator
DEFAULT_MODEL = "warp"


def default_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """A bundled model's folder (installed package or source tree), e.g. "warp" (see bundled_models)."""
    return _weights_root() / name / "onnx"


def bundled_models() -> list:
    """Names of the bundled models (folders of monalisa/weights with an onnx/ export)."""
    return sorted(p.parent.parent.name for p in _weights_root().glob("*/onnx/embedder.onnx"))


def _weights_root() -> Path:
    import monalisa

    return Path(monalisa.__file__).resolve().parent / "weights"


def resolve_model_dir(model) -> Path:
    """``model``: None (the bundled default, DEFAULT_MODEL), a bundled model's name, or an export folder."""
    if model is None:
        return default_model_dir()
    path = Path(model)
    if not path.exists() and "/" not in str(model) and default_model_dir(str(model)).is_dir():
        return default_model_dir(str(model))
    return path


def open_model(path, device: str, strict: bool, threads: int = 0) -> OnnxModel:
    """Load ``path`` on ``device``; without ``strict`` a CUDA request that cannot run falls back to the
    CPU with a warning naming the provider that runs."""
    path = Path(path)  # onnxruntime itself refuses external data that escapes the model's folder
    try:
        return OnnxModel(path, device, threads, spinning=False)
    except BackendUnavailableError as exc:
        if device == "cpu" or strict:
            raise
        log.warning("%s; running on CPUExecutionProvider instead", exc)
        return OnnxModel(path, "cpu", threads, spinning=False)


@dataclass
class RenderModel:
    """The generator a render runs, and how to feed it."""

    generator: OnnxModel
    embedder: OnnxModel | None
    crop: CropGeometry
    mode: str  # "feed-forward" | "identity"
    provenance: dict  # monalisa:* header values naming the model files

    @property
    def warp(self) -> bool:
        """True for a warp generator (correction + mask), False for an image generator."""
        return self.generator.role in ("warp_generator", "baked_warp_generator")

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    @property
    def provider(self) -> str:
        return self.generator.session.get_providers()[0]

    def embed(self, images, rasters) -> np.ndarray | None:
        """images, rasters (K, 3, R, R) of the still -> (1, E); None in identity mode."""
        if self.embedder is None:
            return None
        return self.embedder.embed(images[None], rasters[None])

    def generate(self, rasters, embedding) -> np.ndarray:
        """Image generator: rasters (B, 3, R, R) -> faces (B, 3, R, R) in [-1, 1] sRGB."""
        return self.generator.generate(rasters, embedding)

    def correct(self, rasters, warped, embedding) -> tuple:
        """Warp generator: rasters, warped crops (B, 3, R, R) -> (correction (B, 3, R, R), mask (B, 1, R, R))."""
        from monalisa.nodes.warpgen import run_generator

        return run_generator(self.generator.session, rasters, warped, embedding)


def _generator_name(folder: Path) -> str:
    """The generic generator's role (and file stem) in an export folder."""
    return "warp_generator" if (folder / "warp_generator.onnx").is_file() else "generator"


def load_render_model(model_dir=None, identity=None, device: str = "cpu", strict: bool = False,
                      precision: str = "fp32", threads: int = 0) -> RenderModel:
    """Open the render's models. ``model_dir``: an export folder (default: the bundled one);
    ``identity``: a baked_generator .onnx; with both, the identity must come from the folder's checkpoint."""
    suffix = "" if precision == "fp32" else f".{precision}"
    explicit = model_dir is not None
    folder = resolve_model_dir(model_dir)
    if identity is not None:
        baked = open_model(identity, device, strict, threads)
        if baked.role not in ("baked_generator", "baked_warp_generator"):
            raise ModelFormatError(f"{identity}: is the {baked.role} model, not a baked generator; pass the "
                                   "baked_generator.onnx written by `monalisa export --identity`")
        if explicit:
            base = open_model(folder / f"{_generator_name(folder)}{suffix}.onnx", "cpu", True, 1)
            if base.info.checkpoint_sha256 != baked.info.checkpoint_sha256:
                raise ModelFormatError(
                    f"{identity}: identity {baked.info.identity_name!r} was made from checkpoint "
                    f"{baked.info.checkpoint_sha256[:12]}, the model in {folder} is {base.info.checkpoint_sha256[:12]}; "
                    "export the identity from the same checkpoint or drop --model")
        prov = {"monalisa:model_sha256": sha256_file(identity), "monalisa:embedder_sha256": "",
                "monalisa:identity_sha256": sha256_file(identity), "monalisa:identity_name": baked.info.identity_name,
                "monalisa:checkpoint_sha256": baked.info.checkpoint_sha256}
        return RenderModel(baked, None, baked.info.crop, "identity", prov)
    if not folder.is_dir():
        raise ModelFormatError(f"{folder}: no such model folder; pass --model DIR written by `monalisa export`, "
                               f"or a bundled model name ({', '.join(bundled_models())})")
    name = _generator_name(folder)
    generator = open_model(folder / f"{name}{suffix}.onnx", device, strict, threads)
    embedder = open_model(folder / f"embedder{suffix}.onnx", device, strict, threads)
    if generator.role != name or embedder.role != "embedder":
        raise ModelFormatError(f"{folder}: generator/embedder files hold the {generator.role}/{embedder.role} "
                               "models; re-export the folder")
    if (embedder.info.checkpoint_sha256 != generator.info.checkpoint_sha256
            or embedder.resolution != generator.resolution or embedder.info.crop != generator.info.crop):
        raise ModelFormatError(f"{folder}: embedder.onnx and generator.onnx come from different checkpoints; "
                               "re-export the folder with `monalisa export`")
    prov = {"monalisa:model_sha256": sha256_file(generator.path), "monalisa:embedder_sha256": sha256_file(embedder.path),
            "monalisa:identity_sha256": "", "monalisa:identity_name": "",
            "monalisa:checkpoint_sha256": generator.info.checkpoint_sha256}
    return RenderModel(generator, embedder, generator.info.crop, "feed-forward", prov)
