import dataclasses

import numpy as np
import pytest
import torch

from monalisa.errors import ConfigError, ShapeError
from monalisa.models.config import ModelConfig, get_config
from monalisa.models.discriminator import Discriminator
from monalisa.models.embedder import Embedder
from monalisa.models.generator import Generator
from monalisa.models.layers import fold_spectral_norm

TINY = ModelConfig(resolution=64, base_width=8, max_width=32, embed_dim=16, num_down=3,
                   num_res_blocks=1, attention_resolution=16, num_videos=3)


def nets(cfg):
    torch.manual_seed(0)
    return Embedder(cfg), Generator(cfg), Discriminator(cfg)


@pytest.mark.parametrize("res,k", [(64, 1), (64, 4), (64, 8), (128, 4)])
def test_output_shapes(res, k):
    cfg = dataclasses.replace(TINY, resolution=res, attention_resolution=32)
    E, G, D = nets(cfg)
    x = torch.rand(2, k, 3, res, res) * 2 - 1
    e = E(x, x)
    assert e.shape == (2, 16)
    y = G(x[:, 0], e)
    assert y.shape == (2, 3, res, res) and y.abs().max() <= 1
    score, feats = D(y, x[:, 0], torch.tensor([0, 2]))
    assert score.shape == (2,) and len(feats) >= 4


def test_paper_constructs_with_paper_size():
    G = Generator(get_config("paper"))
    assert 30e6 < sum(p.numel() for p in G.parameters()) < 45e6


def test_forward_equals_synthesize_project():
    E, G, D = nets(TINY)
    G.eval()
    y, e = torch.rand(2, 3, 64, 64), torch.randn(2, 16)
    assert torch.equal(G(y, e), G.synthesize(y, G.project(e)))


def test_every_parameter_gets_gradient():
    E, G, D = nets(TINY)
    with torch.no_grad():  # attention gates start at 0 (no gradient into q, k, v): open them
        for m in (E, G, D):
            for name, p in m.named_parameters():
                if name.endswith("gamma"):
                    p.fill_(0.5)
    x = torch.rand(2, 2, 3, 64, 64)
    e = E(x, x)
    fake = G(x[:, 0], e)
    score, feats = D(fake, x[:, 0], torch.tensor([0, 1]))
    (score.sum() + sum(f.mean() for f in feats)).backward()
    for m in (E, G, D):
        for name, p in m.named_parameters():
            if name == "W" or name.endswith(".k.bias"):
                continue  # W: rows of unsampled videos; key bias: softmax is shift-invariant
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert D.W.grad[:2].abs().sum() > 0 and D.W.grad[2].abs().sum() == 0


def test_shape_errors_name_expected_shape():
    E, G, D = nets(TINY)
    with pytest.raises(ShapeError, match=r"embedder images: expected shape \[2, 'K', 3, 64, 64\]"):
        E(torch.zeros(2, 3, 32, 32), torch.zeros(2, 3, 32, 32))
    with pytest.raises(ShapeError, match="generator psi"):
        G.synthesize(torch.zeros(1, 3, 64, 64), torch.zeros(1, 5))


def test_config_roundtrip_and_errors():
    cfg = get_config("small")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown model config 'huge'; known: small, medium, paper"):
        get_config("huge")
    with pytest.raises(ConfigError, match="unknown model config keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "depth": 3})


def test_generator_exports_to_onnx_and_matches(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    E, G, D = nets(TINY)
    G.eval()
    y, psi = torch.rand(1, 3, 64, 64) * 2 - 1, torch.randn(1, G.num_adain_params) * 0.1

    class Synth(torch.nn.Module):
        def __init__(self, g):
            super().__init__()
            self.g = g

        def forward(self, rasters, psi):
            return self.g.synthesize(rasters, psi)

    with torch.no_grad():
        ref = G.synthesize(y, psi).numpy()
    fold_spectral_norm(G)
    path = tmp_path / "g.onnx"
    torch.onnx.export(Synth(G), (y, psi), str(path), dynamo=False, opset_version=17,
                      input_names=["rasters", "psi"], output_names=["image"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"rasters": y.numpy(), "psi": psi.numpy()})[0]
    assert np.abs(out - ref).max() < 1e-4
