"""export_checkpoint as a library: the failure path keeps nothing; int8 and other opsets when asked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monalisa.errors import ExportMismatchError
from monalisa.files import LEDGER, sha256_file

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def test_too_tight_bound_fails_and_leaves_no_folder(tmp_path, reference, real):
    from monalisa.export.pipeline import Bounds, export_checkpoint

    out = tmp_path / "onnx"
    with pytest.raises(ExportMismatchError) as info:
        export_checkpoint(reference, out, bounds=Bounds(fp32=1e-12))
    message = str(info.value)
    assert "\n" not in message and "embedder.onnx" in message and "nothing was written" in message
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary folder left beside it either


def test_failed_export_leaves_a_previous_export_as_it_was(tmp_path, reference, exported):
    import shutil

    from monalisa.export.pipeline import Bounds, export_checkpoint

    src, _, _ = exported
    out = tmp_path / "onnx"
    shutil.copytree(src, out)
    before = {p.name: sha256_file(p) for p in out.iterdir()}
    with pytest.raises(ExportMismatchError):
        export_checkpoint(reference, out, bounds=Bounds(fp32=0.0))
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]


def test_fp16_bound_is_enforced(tmp_path, reference):
    from monalisa.export.pipeline import Bounds, export_checkpoint

    out = tmp_path / "onnx"
    with pytest.raises(ExportMismatchError, match=r"embedder\.fp16\.onnx"):
        export_checkpoint(reference, out, fp16=True, slim=False, bounds=Bounds(fp16=1e-6))
    assert not out.exists()


def test_int8_written_when_within_bound_opset_18_no_slim(tmp_path, reference, real, exported, feed_of):
    """With a bound it passes, the int8 file is a QDQ graph calibrated on real rasters, at opset 18;
    --no-slim keeps the traced graph (more nodes than the slimmed default export)."""
    from monalisa.export.pipeline import Bounds, export_checkpoint
    from monalisa.export.verify import ssim
    from monalisa.nodes.runtime import load_model

    out = tmp_path / "onnx"
    result = export_checkpoint(reference, out, opset=18, int8=True, slim=False, bounds=Bounds(int8_ssim=-1.0))
    row = next(f for f in result.files if f.name == "generator.int8.onnx")
    assert row.kept and row.metric == "SSIM" and -1.0 <= row.value <= 1.0
    model = onnx.load(str(out / "generator.int8.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert {o.domain: o.version for o in model.opset_import}[""] >= 18
    int8 = load_model(out / "generator.int8.onnx")
    fp32 = load_model(out / "generator.onnx")
    assert int8.info.precision == "int8" and json.loads(int8.info.metadata["monalisa.verification"])["metric"] == "SSIM"
    emb = np.full((1, 128), 0.5, np.float32)
    a, b = int8.generate(real.rasters[:4], emb), fp32.generate(real.rasters[:4], emb)
    assert a.shape == b.shape and np.isfinite(a).all()
    # the SSIM recorded is the one measured (on all real frames, group embeddings)
    feed = feed_of("generator", out, real)
    measured = ssim(int8.session.run(None, feed)[0], fp32.session.run(None, feed)[0])
    assert row.value == pytest.approx(measured, abs=2e-3) and -1.0 <= measured <= 1.0
    assert not (out / "baked_generator.int8.onnx").exists()  # no identity, no baked files
    slimmed = {f["name"]: f["nodes"] for f in json.loads((exported[0] / "export.json").read_text())["files"]}
    raw = {f.name: f.nodes for f in result.files}
    assert raw["generator.onnx"] > slimmed["generator.onnx"]
    assert all(f.value <= 1e-4 for f in result.files if f.precision == "fp32")


def test_re_export_over_an_earlier_export(tmp_path, reference, exported, capsys):
    """A second export into the folder of a first replaces it (files the new one does not make go);
    a file monalisa did not write stops it, unless --overwrite, which keeps that file."""
    import shutil

    from monalisa.cli import main

    out = tmp_path / "onnx"
    shutil.copytree(exported[0], out)
    assert (out / "baked_generator.onnx").is_file() and (out / "generator.fp16.onnx").is_file()
    before = json.loads((out / "export.json").read_text())
    assert main(["export", str(reference), "--out", str(out), "--no-slim"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [LEDGER, "embedder.onnx", "export.json", "generator.onnx"]
    after = json.loads((out / "export.json").read_text())
    assert after["identity"] is None and before["identity"] is not None
    assert all(f["sha256"] == sha256_file(out / f["name"]) for f in after["files"] if f["kept"])
    (out / "comp.nk").write_text("mine")
    capsys.readouterr()
    assert main(["export", str(reference), "--out", str(out), "--no-slim"]) == 2
    err = capsys.readouterr().err
    assert "comp.nk" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main(["export", str(reference), "--out", str(out), "--no-slim", "--overwrite"]) == 0
    assert (out / "comp.nk").read_text() == "mine" and (out / "generator.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no temporaries left beside it
