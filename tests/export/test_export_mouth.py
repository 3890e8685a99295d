"""The bundled mouth-interior model: its ONNX file matches its safetensors weights, its metadata is
what the node checks, and a re-export reproduces it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import monalisa

torch = pytest.importorskip("torch")
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


def test_bundled_onnx_matches_its_weights_and_says_what_it_is():
    from monalisa.export.mouth import load_trained
    from monalisa.files import sha256_file
    from monalisa.nodes.mouthmodel import FORMAT, FORMAT_VERSION, load_mouth_model

    net, record, sha = load_trained(BUNDLED)
    model = load_mouth_model()
    assert model.path == BUNDLED / "onnx" / "mouth.onnx"
    info = model.info
    assert info["format"] == FORMAT and info["format_version"] == str(FORMAT_VERSION)
    assert info["resolution"] == net.cfg.resolution == model.resolution
    assert info["checkpoint_sha256"] == sha == sha256_file(BUNDLED / "model.safetensors")
    assert json.loads(info["config"]) == net.cfg.to_dict() == record["config"]
    x = _patches(model.resolution)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = model.paint(x)
    assert got.shape == (4, 3, model.resolution, model.resolution)
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(got - got[:1]).max() > 1e-3  # it looks at its input


def test_reexport_reproduces_the_bundled_onnx_outputs(tmp_path):
    pytest.importorskip("onnx")
    from monalisa.export.mouth import export
    from monalisa.nodes.mouthmodel import load_mouth_model

    assert export(BUNDLED, tmp_path / "mouth") < 1e-4
    x = _patches(load_mouth_model().resolution)
    again = load_mouth_model(tmp_path / "mouth" / "onnx" / "mouth.onnx").paint(x)
    assert np.abs(again - load_mouth_model().paint(x)).max() < 1e-5
