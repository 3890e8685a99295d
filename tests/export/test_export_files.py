"""The files `monalisa export` writes: checker, parity on real inputs, baked == generic, metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

import monalisa
from monalisa.files import sha256_file

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

FP32 = ["embedder.onnx", "generator.onnx", "baked_generator.onnx"]
FP16 = ["embedder.fp16.onnx", "generator.fp16.onnx", "baked_generator.fp16.onnx"]


def run(path, **feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


@pytest.fixture(scope="module")
def nets(reference_ckpt):
    """The checkpoint's own torch networks in eval mode (not the export wrappers)."""
    from monalisa.models.checkpoint import build_models

    emb, gen, _ = build_models(reference_ckpt)
    return emb.eval(), gen.eval()


@pytest.fixture(scope="module")
def torch_out(nets, real):
    """Torch references on the real inputs: group embeddings (K=4) and generator images."""
    emb_net, gen = nets
    k = 4
    n = len(real.images) // k * k
    imgs = torch.from_numpy(real.images[:n]).view(-1, k, *real.images.shape[1:])
    ras = torch.from_numpy(real.rasters[:n]).view(-1, k, *real.rasters.shape[1:])
    with torch.no_grad():
        e = emb_net(imgs, ras)  # (B, E)
        per_frame = e.repeat_interleave(k, dim=0)  # (n, E)
        image = gen(torch.from_numpy(real.rasters[:n]), per_frame)
    return {"images": imgs.numpy(), "rasters": ras.numpy(), "embedding": e.numpy(),
            "raster": real.rasters[:n], "frame_embedding": per_frame.numpy(), "image": image.numpy()}


def test_command_succeeds_and_reports(exported):
    out, stdout, code = exported
    assert code == 0
    for name in FP32 + FP16:
        assert (out / name).is_file()
        line = next(l for l in stdout.splitlines() if l.startswith(name + " "))
        assert "ok" in line and "max|diff|" in line
    assert "generator.int8.onnx" in stdout and "SSIM" in stdout
    assert f"wrote {out}" in stdout


def test_checker_full_check_passes(exported):
    out, _, _ = exported
    for path in sorted(out.glob("*.onnx")):
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_dynamic_batch_axis(exported, real):
    out, _, _ = exported
    for b in (1, 3, 8):
        r = real.rasters[:b]
        emb = np.zeros((b, 128), np.float32)
        assert run(out / "generator.onnx", raster=r, embedding=emb).shape == (b, 3, 64, 64)
        assert run(out / "baked_generator.onnx", raster=r).shape == (b, 3, 64, 64)
    for k in (1, 5):
        x = np.repeat(real.images[None, :k], 2, axis=0)
        y = np.repeat(real.rasters[None, :k], 2, axis=0)
        assert run(out / "embedder.onnx", images=x, rasters=y).shape == (2, 128)


@pytest.mark.parametrize("suffix,bound", [(".onnx", 1e-4), (".fp16.onnx", 2e-2)])
def test_parity_against_torch_on_real_inputs(exported, torch_out, suffix, bound):
    out, _, _ = exported
    e = run(out / f"embedder{suffix}", images=torch_out["images"], rasters=torch_out["rasters"])
    assert np.abs(e - torch_out["embedding"]).max() <= bound
    img = run(out / f"generator{suffix}", raster=torch_out["raster"], embedding=torch_out["frame_embedding"])
    assert img.shape == torch_out["image"].shape
    assert np.abs(img - torch_out["image"]).max() <= bound
    # not trivially equal: the output depends on the embedding
    other = run(out / f"generator{suffix}", raster=torch_out["raster"], embedding=torch_out["frame_embedding"][::-1].copy())
    assert np.abs(other - img).max() > 1e-3


def test_fp16_files_hold_half_weights_with_float_io(exported):
    out, _, _ = exported
    for name in FP16:
        model = onnx.load(str(out / name))
        types = {t.data_type for t in model.graph.initializer}
        assert onnx.TensorProto.FLOAT16 in types
        assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in model.graph.input)
        assert (out / name).stat().st_size < 0.7 * (out / name.replace(".fp16", "")).stat().st_size


def test_baked_equals_generic_fed_the_identity_embedding(exported, pack, real):
    from monalisa.models.identity import load_identity

    out, _, _ = exported
    p = load_identity(pack)
    n = len(real.rasters)
    baked = run(out / "baked_generator.onnx", raster=real.rasters)
    generic = run(out / "generator.onnx", raster=real.rasters,
                  embedding=np.repeat(p.embedding.numpy(), n, axis=0))
    assert np.abs(baked - generic).max() <= 1e-4
    assert baked.std() > 1e-3  # a real image, not a constant


def test_baked_generator_carries_fine_tuned_weights(tmp_path, reference_ckpt, real, pack_maker):
    """A pack whose weights and psi moved away from the base: baked == torch synthesize(raster, psi')."""
    from monalisa.export.onnx import build_graphs, export_graph
    from monalisa.models.checkpoint import build_models
    from monalisa.models.identity import load_identity

    p = load_identity(pack_maker(tmp_path / "tuned", reference_ckpt, tune=0.05), base_sha256=reference_ckpt.sha256)
    model = export_graph(build_graphs(reference_ckpt, p)["baked_generator"], "baked_generator", reference_ckpt.config)
    r = torch.from_numpy(real.rasters)
    _, tuned, _ = build_models(reference_ckpt)
    tuned.load_state_dict(p.state)
    _, base, _ = build_models(reference_ckpt)
    with torch.no_grad():
        want = tuned.eval().synthesize(r, p.psi.expand(len(r), -1)).numpy()
        base_out = base.eval().synthesize(r, p.psi.expand(len(r), -1)).numpy()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"raster": real.rasters})[0]
    assert [i.name for i in sess.get_inputs()] == ["raster"]
    assert np.abs(got - want).max() <= 1e-4
    assert np.abs(base_out - want).max() > 1e-2  # the fine-tuned weights, not the base ones, are baked in


def test_metadata_keys_and_values(exported, pack, reference_ckpt):
    from monalisa.nodes.modelfile import read_model_info

    out, _, _ = exported
    pack_sha = sha256_file(pack / "identity.safetensors")
    for path in sorted(out.glob("*.onnx")):
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        role = path.name.split(".")[0]
        precision = {".fp16": "fp16", ".int8": "int8"}.get(path.suffixes[0] if len(path.suffixes) > 1 else "", "fp32")
        assert meta["monalisa.format"] == "monalisa-onnx"
        assert meta["monalisa.format_version"] == "2"
        assert json.loads(meta["monalisa.crop"]) == {"filter": "area", "margin": 0.15, "prepare_size": 128,
                                                     "resolution": 64}
        assert meta["monalisa.role"] == role
        assert meta["monalisa.precision"] == precision
        assert json.loads(meta["monalisa.config"]) == reference_ckpt.config.to_dict()
        assert meta["monalisa.resolution"] == "64"
        assert meta["monalisa.landmarks"] == "ibug68"
        assert meta["monalisa.checkpoint_sha256"] == reference_ckpt.sha256
        assert meta["monalisa.version"] == monalisa.__version__
        assert meta["monalisa.opset"] == "17"
        enc_in = json.loads(meta["monalisa.input_encoding"])
        assert enc_in["raster" if role != "embedder" else "images"].endswith("[-1,1]")
        assert json.loads(meta["monalisa.output_encoding"]) == (
            {"embedding": "identity-embedding-float32"} if role == "embedder" else {"image": "srgb-rgb-nchw-float32-[-1,1]"})
        if role == "baked_generator":
            assert meta["monalisa.identity_name"] == "Test Person"
            assert meta["monalisa.identity_sha256"] == pack_sha
        else:
            assert meta["monalisa.identity_name"] == "" and meta["monalisa.identity_sha256"] == ""
        verification = json.loads(meta["monalisa.verification"])
        assert verification["value"] <= verification["bound"] or verification["metric"] == "SSIM"
        # the torch-free runtime reads the same values
        info = read_model_info(path)
        assert (info.role, info.precision, info.resolution, info.checkpoint_sha256) == (
            role, precision, 64, reference_ckpt.sha256)


def test_sidecar_lists_files_with_hashes(exported, reference_ckpt):
    out, _, _ = exported
    side = json.loads((out / "export.json").read_text())
    assert side["checkpoint"]["sha256"] == reference_ckpt.sha256
    kept = {f["name"]: f for f in side["files"] if f["kept"]}
    assert set(kept) == {p.name for p in out.glob("*.onnx")}
    for name, f in kept.items():
        assert f["sha256"] == sha256_file(out / name)
        assert f["checker"] is True


def test_int8_is_kept_only_within_the_ssim_bound(exported, real, feed_of):
    """The int8 verdict in the report equals a fresh SSIM measurement (of the written file, or of
    the same quantization redone when it was not kept), and the file exists iff it passed."""
    from monalisa.export.int8 import quantize
    from monalisa.export.verify import ssim

    out, stdout, _ = exported
    side = json.loads((out / "export.json").read_text())
    rows = [f for f in side["files"] if f["precision"] == "int8"]
    assert {r["name"] for r in rows} == {"generator.int8.onnx", "baked_generator.int8.onnx"}
    for row in rows:
        assert row["kept"] == (row["value"] >= 0.99) == (out / row["name"]).is_file()
        feed = feed_of(row["role"], out, real)
        fp32 = onnx.load(str(out / f"{row['role']}.onnx"))
        q = onnx.load(str(out / row["name"])) if row["kept"] else quantize(fp32, feed)
        score = ssim(run_model(q, feed), run_model(fp32, feed))
        assert score == pytest.approx(row["value"], abs=2e-3), row


def run_model(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)[0]
