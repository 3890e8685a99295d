"""onnxruntime sessions on exported monalisa models: where every runtime session is created.

:func:`create_session` is the one way the runtime opens a session (provider check, threads, no
silent CPU fallback); ``nodes.modelfile`` underneath it loads the file and reads its metadata, and
the sessions it returns are run here (image roles), in ``nodes.warpgen`` (warp roles) and in
``nodes.mouthmodel`` (the mouth model).

``load_model(path, provider="cpu"|"cuda")`` opens a file written by ``monalisa export``, validates
its metadata (``nodes.modelfile``) and returns an :class:`OnnxModel` that runs numpy arrays:

- embedder:        ``model.embed(images, rasters)``   (B, K, 3, R, R) x2   -> (B, E)
- generator:       ``model.generate(raster, embedding)`` (B, 3, R, R), (B or 1, E) -> (B, 3, R, R)
- baked_generator: ``model.generate(raster)``            (B, 3, R, R)          -> (B, 3, R, R)

All arrays are float32 NCHW in [-1, 1] (see ``modelfile.ENCODINGS``). Asking for "cuda" where
onnxruntime would silently run on the CPU instead raises BackendUnavailableError.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from monalisa.errors import BackendUnavailableError, ConfigError, ModelFormatError, ShapeError
from monalisa.nodes import modelfile

log = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def session_options(threads: int = 0, profile_prefix: str | None = None, spinning: bool = True):
    """threads 0: one per core. spinning=False stops idle pool threads from busy-waiting, which is
    what a box running several renders (or torch beside onnxruntime) wants; see docs/export.md."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    return opts


def create_session(path, provider: str = "cpu", threads: int = 0, profile_prefix: str | None = None,
                   spinning: bool = True):
    """An InferenceSession on ``provider``; BackendUnavailableError when it cannot really run there."""
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ConfigError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    wanted = PROVIDERS[provider]
    if wanted not in ort.get_available_providers():
        raise BackendUnavailableError(
            f"{path}: onnxruntime {ort.__version__} has no {wanted} (available: "
            f"{', '.join(ort.get_available_providers())}); install monalisa[gpu] (onnxruntime-gpu) or use 'cpu'")
    providers = [wanted] if provider == "cpu" else [wanted, "CPUExecutionProvider"]
    session = modelfile.open_session(path, providers, session_options(threads, profile_prefix, spinning))
    active = session.get_providers()
    if not active or active[0] != wanted:
        # onnxruntime falls back to the CPU with only a log line when CUDA libraries or a GPU are missing
        raise BackendUnavailableError(f"{path}: onnxruntime could not start {wanted} (running on {active}); "
                                      "check the CUDA 12/13 and cuDNN 9 libraries and the GPU driver, or use 'cpu'")
    return session


def _as_batch(x, what: str, tail: tuple, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != ndim or tuple(arr.shape[ndim - len(tail):]) != tail:
        raise ShapeError(what, ("B",) * (ndim - len(tail)) + tail, arr.shape)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ShapeError(f"{what} (dtype {arr.dtype}: float32 in [-1, 1] expected)", ("B",) * (ndim - len(tail)) + tail,
                         arr.shape)
    return np.ascontiguousarray(arr, dtype=np.float32)


class OnnxModel:
    """One exported model file on one provider."""

    def __init__(self, path, provider: str = "cpu", threads: int = 0, profile_prefix: str | None = None,
                 spinning: bool = True):
        self.path = Path(path)
        self.provider = provider
        self.session = create_session(self.path, provider, threads, profile_prefix, spinning)
        self.info = modelfile.read_model_info(self.path, self.session)
        self.role, self.resolution, self.embed_dim = self.info.role, self.info.resolution, self.info.embed_dim

    def __repr__(self):
        return (f"OnnxModel({str(self.path)!r}, role={self.role}, precision={self.info.precision}, "
                f"{self.resolution}px, provider={self.provider})")

    def _need(self, *roles):
        if self.role not in roles:
            raise ModelFormatError(f"{self.path}: is the {self.role} model, not the {' or '.join(roles)}; "
                                   "load the matching file of the export")

    def embed(self, images, rasters) -> np.ndarray:
        """images, rasters (B, K, 3, R, R) -> embedding (B, E)."""
        self._need("embedder")
        r = self.resolution
        images = _as_batch(images, "embedder images", (3, r, r), 5)
        rasters = _as_batch(rasters, "embedder rasters", (3, r, r), 5)
        if rasters.shape != images.shape:
            raise ShapeError("embedder rasters", images.shape, rasters.shape)
        return self.session.run(None, {"images": images, "rasters": rasters})[0]

    def generate(self, raster, embedding=None) -> np.ndarray:
        """raster (B, 3, R, R) [+ embedding (B or 1, E) for the generic generator] -> image (B, 3, R, R)."""
        self._need("generator", "baked_generator")
        r = self.resolution
        raster = _as_batch(raster, "generator raster", (3, r, r), 4)
        feeds = {"raster": raster}
        if self.role == "generator":
            if embedding is None:
                raise ShapeError("generator embedding (required by a generic generator)", ("B", self.embed_dim), ())
            emb = _as_batch(embedding, "generator embedding", (self.embed_dim,), 2)
            if emb.shape[0] == 1 and raster.shape[0] > 1:
                emb = np.ascontiguousarray(np.broadcast_to(emb, (raster.shape[0], self.embed_dim)))
            if emb.shape[0] != raster.shape[0]:
                raise ShapeError("generator embedding", (raster.shape[0], self.embed_dim), emb.shape)
            feeds["embedding"] = emb
        elif embedding is not None:
            raise ModelFormatError(f"{self.path}: a baked generator ({self.info.identity_name}) takes no embedding; "
                                   "pass only the raster")
        return self.session.run(None, feeds)[0]


def load_model(path, provider: str = "cpu", threads: int = 0, spinning: bool = True) -> OnnxModel:
    """Open an exported model on "cpu" or "cuda" (see OnnxModel)."""
    return OnnxModel(path, provider, threads, spinning=spinning)


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """(B, 3, H, W) float in [-1, 1] -> (B, H, W, 3) uint8 sRGB (``nodes.facecrop.from_model``)."""
    from monalisa.nodes.facecrop import from_model

    return from_model(image)
