"""The bundled mouth-interior model goes through the one export pipeline (`monalisa export`): its
ONNX file matches its safetensors weights, carries the metadata the node checks and the pipeline's
export.json, and a re-export over an earlier one reproduces a file the runtime accepts, with the
same --overwrite rules as every other model kind."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import monalisa
from monalisa.cli import main
from monalisa.files import LEDGER, sha256_file

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
BUNDLED = Path(monalisa.__file__).parent / "weights" / "mouth"


def _patches(r, n=4, seed=1):
    from monalisa.nodes.mouth import hole_mask, model_input, patch_transform

    pts = np.array(json.loads((Path(__file__).parents[1] / "render" / "face68.json").read_text()), np.float64)
    pts[[65, 66, 67]] += (0, 6)  # an open mouth
    rng = np.random.default_rng(seed)
    m = patch_transform(pts, r)
    hole = hole_mask(pts, m, r)
    assert 0.05 < hole.mean() < 0.5
    return np.stack([model_input(rng.uniform(0, 1, (r, r, 3)).astype(np.float32), hole) for _ in range(n)])


def _torch_net():
    from monalisa.models.mouth import MouthNet, load_mouth_checkpoint

    ckpt = load_mouth_checkpoint(BUNDLED)
    net = MouthNet(ckpt.config)
    net.load_state_dict(ckpt.state)
    return net.eval(), ckpt


def _one_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for w in words:
        assert w in err[0], err[0]


def test_bundled_onnx_matches_its_weights_and_says_what_it_is():
    from monalisa.export.pipeline import SIDECAR_FORMAT, SIDECAR_VERSION
    from monalisa.nodes.mouthmodel import FORMAT, FORMAT_VERSION, load_mouth_model

    net, ckpt = _torch_net()
    model = load_mouth_model()
    assert model.path == BUNDLED / "onnx" / "mouth.onnx"
    info = model.info
    assert info["format"] == FORMAT and info["format_version"] == str(FORMAT_VERSION)
    assert info["resolution"] == net.cfg.resolution == model.resolution
    assert info["checkpoint_sha256"] == ckpt.sha256 == sha256_file(BUNDLED / "model.safetensors")
    assert json.loads(info["config"]) == net.cfg.to_dict() == ckpt.meta["config"]
    side = json.loads((BUNDLED / "onnx" / "export.json").read_text())  # written by `monalisa export`
    assert (side["format"], side["version"]) == (SIDECAR_FORMAT, SIDECAR_VERSION)
    assert side["checkpoint"]["sha256"] == ckpt.sha256 and side["config"] == net.cfg.to_dict()
    assert {f["name"]: (f["role"], f["sha256"]) for f in side["files"]} == {
        "mouth.onnx": ("mouth", sha256_file(model.path))}
    x = _patches(model.resolution)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = model.paint(x)
    assert got.shape == (4, 3, model.resolution, model.resolution)
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(got - got[:1]).max() > 1e-3  # it looks at its input


def test_monalisa_export_of_the_bundled_mouth_over_an_earlier_export(tmp_path, capsys):
    """`monalisa export monalisa/weights/mouth` over the bundled export plus a user's file: refused
    without --overwrite (nothing changes); with it, mouth.onnx and export.json are rewritten, the
    user's file stays, and the new file runs in the node's reader and matches torch."""
    from monalisa.nodes.mouthmodel import load_mouth_model

    out = tmp_path / "onnx"
    shutil.copytree(BUNDLED / "onnx", out)
    assert (out / LEDGER).is_file()
    (out / "notes.txt").write_text("the good take\n")
    before = {p.name: sha256_file(p) for p in out.iterdir()}

    assert main(["export", str(BUNDLED), "--out", str(out)]) == 2
    _one_line(capsys, "notes.txt", "--overwrite")
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before

    assert main(["export", str(BUNDLED), "--out", str(out), "--overwrite", "--fp16"]) == 0
    printed = capsys.readouterr().out
    assert "mouth model" in printed and "mouth.fp16.onnx" in printed
    assert sha256_file(out / "notes.txt") == before["notes.txt"]
    assert sorted(p.name for p in out.iterdir() if p.name != LEDGER) == [
        "export.json", "mouth.fp16.onnx", "mouth.onnx", "notes.txt"]
    side = json.loads((out / "export.json").read_text())
    assert side["format"] == "monalisa-export" and side["version"] == 2 and side["crop"] is None
    assert {f["name"]: f["sha256"] for f in side["files"]} == {
        n: sha256_file(out / n) for n in ("mouth.onnx", "mouth.fp16.onnx")}
    fp32 = next(f for f in side["files"] if f["name"] == "mouth.onnx")
    assert fp32["metric"] == "max|diff|" and fp32["value"] <= 1e-4 and side["calibration"]["frames"] >= 2

    net, _ = _torch_net()
    x = _patches(net.cfg.resolution)
    again = load_mouth_model(out / "mouth.onnx")
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.abs(again.paint(x) - want).max() < 1e-4
    assert np.abs(again.paint(x) - load_mouth_model().paint(x)).max() < 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no temporaries left beside it


def test_a_mouth_model_refuses_identity_before_any_work(tmp_path, capsys):
    out = tmp_path / "onnx"
    assert main(["export", str(BUNDLED), "--identity", str(tmp_path), "--out", str(out)]) == 2
    _one_line(capsys, "mouth model", "--identity")
    assert not out.exists()
