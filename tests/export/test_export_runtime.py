"""The torch-free runtime on exported files: metadata validation and the onnxruntime wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from monalisa.errors import BackendUnavailableError, ModelFormatError, ShapeError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def altered(src, dst, **changes):
    """Copy an .onnx with metadata keys changed (value None: key removed; clear=True: no metadata)."""
    from monalisa.export.metadata import get_metadata, set_metadata

    model = onnx.load(str(src))
    meta = {} if changes.pop("clear", False) else get_metadata(model)
    for key, value in changes.items():
        key = "monalisa." + key
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    set_metadata(model, meta)
    onnx.save(model, str(dst))
    return dst


@pytest.mark.parametrize("changes,words", [
    ({"clear": True}, ["no monalisa metadata"]),
    ({"format": "other-onnx"}, ["format 'other-onnx'"]),
    ({"format_version": "3"}, ["format version 3 is newer", "upgrade monalisa"]),
    ({"format_version": "1"}, ["format version 1 is older", "re-export"]),
    ({"crop": '{"resolution": 128, "prepare_size": 256, "margin": 0.15, "filter": "area"}'}, ["crop geometry is for 128"]),
    ({"format_version": "one"}, ["not a number"]),
    ({"role": "discriminator"}, ["role 'discriminator' is unknown"]),
    ({"landmarks": "mediapipe478"}, ["landmark layout 'mediapipe478'"]),
    ({"input_encoding": '{"raster": "linear-rgb"}', "inputs": '["raster"]', "role": "baked_generator"},
     ["colour encoding of raster"]),
    ({"checkpoint_sha256": None}, ["monalisa.checkpoint_sha256"]),
    ({"config": "{not json"}, ["malformed metadata"]),
])
def test_modelfile_refuses_what_it_does_not_understand(exported, tmp_path, changes, words):
    from monalisa.nodes.modelfile import read_model_info
    from monalisa.nodes.runtime import load_model

    path = altered(exported[0] / "generator.onnx", tmp_path / "changed.onnx", **changes)
    for read in (read_model_info, load_model):
        with pytest.raises(ModelFormatError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
        for w in words:
            assert w in message


def test_modelfile_refuses_missing_and_non_onnx_files(tmp_path):
    from monalisa.nodes.modelfile import read_model_info

    with pytest.raises(ModelFormatError, match="no such model file"):
        read_model_info(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFormatError, match="onnxruntime cannot load it") as info:
        read_model_info(junk)
    assert "\n" not in str(info.value)


def test_runtime_runs_the_export_like_torch(exported, pack, real):
    """embedder -> generator through nodes.runtime equals the baked generator (pack psi = P e)."""
    from monalisa.models.identity import load_identity
    from monalisa.nodes.runtime import image_to_uint8, load_model

    out = exported[0]
    embedder, generator = load_model(out / "embedder.onnx"), load_model(out / "generator.onnx")
    baked = load_model(out / "baked_generator.onnx")
    assert (embedder.role, generator.role, baked.role) == ("embedder", "generator", "baked_generator")
    assert baked.info.identity_name == "Test Person"
    e = embedder.embed(real.images[None, :4], real.rasters[None, :4])
    assert e.shape == (1, 128) and np.isfinite(e).all()
    # a (1, E) embedding is broadcast over the batch
    imgs = generator.generate(real.rasters[:6], e)
    assert imgs.shape == (6, 3, 64, 64)
    p_emb = load_identity(pack).embedding.numpy()
    assert np.abs(generator.generate(real.rasters[:6], p_emb) - baked.generate(real.rasters[:6])).max() <= 1e-4
    u8 = image_to_uint8(imgs)
    assert u8.shape == (6, 64, 64, 3) and u8.dtype == np.uint8


def test_runtime_checks_shapes_and_roles(exported, real):
    from monalisa.nodes.runtime import load_model

    out = exported[0]
    generator, baked = load_model(out / "generator.onnx"), load_model(out / "baked_generator.onnx")
    embedder = load_model(out / "embedder.onnx")
    with pytest.raises(ShapeError, match=r"expected shape \['B', 3, 64, 64\], got \[2, 3, 32, 32\]"):
        baked.generate(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(ShapeError, match="generator raster"):
        baked.generate(np.zeros((3, 64, 64), np.float32))
    with pytest.raises(ShapeError, match="generator embedding"):
        generator.generate(real.rasters[:2], np.zeros((2, 64), np.float32))
    with pytest.raises(ShapeError, match="generator embedding"):
        generator.generate(real.rasters[:3], np.zeros((2, 128), np.float32))
    with pytest.raises(ShapeError, match="required"):
        generator.generate(real.rasters[:2])
    with pytest.raises(ShapeError, match="embedder rasters"):
        embedder.embed(real.images[None, :4], real.rasters[None, :3])
    with pytest.raises(ModelFormatError, match="is the embedder model, not the generator"):
        embedder.generate(real.rasters[:1])
    with pytest.raises(ModelFormatError, match="takes no embedding"):
        baked.generate(real.rasters[:1], np.zeros((1, 128), np.float32))


def test_cuda_request_never_falls_back_silently(exported):
    from monalisa.nodes.runtime import load_model

    path = exported[0] / "generator.onnx"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider") as info:
            load_model(path, "cuda")
        assert "\n" not in str(info.value) and str(path) in str(info.value)
    else:  # a GPU build: either CUDA really runs, or the fallback is caught
        try:
            model = load_model(path, "cuda")
        except BackendUnavailableError as exc:
            assert "could not start CUDAExecutionProvider" in str(exc)
        else:
            assert model.session.get_providers()[0] == "CUDAExecutionProvider"


def test_runtime_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"
            "import monalisa.nodes.modelfile, monalisa.nodes.runtime\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
