"""Shared export fixtures: the committed reference checkpoint, an identity pack made from it, and
one full export (CLI, with --identity --fp16 --int8) reused by every test file in this folder."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

import monalisa

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

REFERENCE = Path(monalisa.__file__).parent / "weights" / "reference"


@pytest.fixture(scope="session")
def reference():
    if not (REFERENCE / "checkpoint.json").is_file():
        pytest.skip(f"reference checkpoint not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def reference_ckpt(reference):
    from monalisa.models.checkpoint import load_checkpoint

    return load_checkpoint(reference)


@pytest.fixture(scope="session")
def real(reference_ckpt):
    """The bundled real calibration inputs at the reference resolution."""
    from monalisa.export.verify import default_calibration_path, load_real_inputs
    from monalisa.models.checkpoint import crop_geometry

    if not default_calibration_path().is_file():
        pytest.skip(f"bundled calibration set not found at {default_calibration_path()}")
    return load_real_inputs(None, crop_geometry(reference_ckpt))


def make_pack(path, ckpt, *, seed=1, tune=0.0, base_sha=None, name="Test Person"):
    """An identity pack of ``ckpt``'s generator with psi = P e (so baked == generic(e)); ``tune`` > 0
    perturbs the weights and psi as fine-tuning would."""
    from monalisa.models.checkpoint import build_models
    from monalisa.models.identity import save_identity

    _, gen, _ = build_models(ckpt)
    gen.eval()
    g = torch.Generator().manual_seed(seed)
    emb = torch.rand(1, ckpt.config.embed_dim, generator=g) * 2
    with torch.no_grad():
        psi = gen.project(emb)
        if tune:
            for p in gen.parameters():
                p.add_(torch.randn(p.shape, generator=g) * tune * p.abs().mean().clamp_min(1e-3))
            psi = psi + torch.randn(psi.shape, generator=g) * tune
    save_identity(path, gen, psi, emb, {"name": name, "k": 1, "steps": 0, "images": [],
                                        "base_checkpoint_sha256": base_sha or ckpt.sha256,
                                        "config": ckpt.config.to_dict()})
    return Path(path)


@pytest.fixture(scope="session")
def pack_maker():
    return make_pack


@pytest.fixture(scope="session")
def pack(tmp_path_factory, reference_ckpt):
    return make_pack(tmp_path_factory.mktemp("pack") / "test_person", reference_ckpt)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, reference, pack, real):
    """Run `monalisa export REF --identity PACK --fp16 --int8 --out DIR` once -> (DIR, stdout, exit code)."""
    from monalisa.cli import main

    out = tmp_path_factory.mktemp("export") / "onnx"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["export", str(reference), "--identity", str(pack), "--out", str(out), "--fp16", "--int8"])
    return out, buf.getvalue(), code


def export_feed(role, out, real):
    """The inputs export verified ``role`` on: every real raster and, for the generic generator, the
    embedding (from the exported embedder) of its group of K = 4 frames, the last group's for the
    remainder, as export/pipeline.py does."""
    import numpy as np
    import onnxruntime as ort

    if role == "baked_generator":
        return {"raster": real.rasters}
    images, rasters = real.groups(4)
    sess = ort.InferenceSession(str(out / "embedder.onnx"), providers=["CPUExecutionProvider"])
    groups = sess.run(None, {"images": images, "rasters": rasters})[0]
    per_frame = np.repeat(groups, images.shape[1], axis=0)
    emb = np.concatenate([per_frame, np.repeat(groups[-1:], len(real.rasters) - len(per_frame), axis=0)])
    return {"raster": real.rasters, "embedding": emb.astype(np.float32)}


@pytest.fixture(scope="session")
def feed_of():
    return export_feed
