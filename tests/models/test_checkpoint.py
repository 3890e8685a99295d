import dataclasses
import json

import pytest
import torch

from monalisa.errors import CheckpointError
from monalisa.models.checkpoint import build_models, load_checkpoint, restore_optimizers, save_checkpoint
from monalisa.models.config import ModelConfig
from monalisa.models.discriminator import Discriminator
from monalisa.models.embedder import Embedder
from monalisa.models.generator import Generator

TINY = ModelConfig(resolution=64, base_width=8, max_width=32, embed_dim=16, num_down=3,
                   num_res_blocks=1, attention_resolution=16, num_videos=2)


def outputs(E, G, D):
    torch.manual_seed(1)
    x = torch.rand(1, 2, 3, 64, 64)
    for m in (E, G, D):
        m.eval()
    with torch.no_grad():
        e = E(x, x)
        y = G(x[:, 0], e)
        return e, y, D(y, x[:, 0], torch.tensor([1]))[0]


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    nets = Embedder(TINY), Generator(TINY), Discriminator(TINY)
    opt = torch.optim.Adam(nets[1].parameters(), lr=1e-3)
    nets[1](torch.rand(1, 3, 64, 64), torch.rand(1, 16)).mean().backward()
    opt.step()
    sha = save_checkpoint(tmp_path / "ck", *nets, TINY, 7, optimizers={"g": opt})
    return tmp_path / "ck", nets, sha, opt


def test_roundtrip_identical_outputs(saved):
    path, nets, sha, opt = saved
    ck = load_checkpoint(path, expect_config=TINY)
    assert ck.step == 7 and ck.sha256 == sha and len(sha) == 64
    assert json.loads((path / "checkpoint.json").read_text())["format"] == "monalisa-checkpoint"
    for a, b in zip(outputs(*nets), outputs(*build_models(ck))):
        assert torch.equal(a, b)
    G2 = build_models(ck)[1]
    opt2 = torch.optim.Adam(G2.parameters(), lr=1e-3)
    restore_optimizers(ck, {"g": opt2})
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert torch.equal(s1[0]["exp_avg"], s2[0]["exp_avg"])


def test_fp16_save_loads_and_runs(tmp_path, saved):
    _, nets, _, _ = saved
    save_checkpoint(tmp_path / "h", *nets, TINY, 1, dtype=torch.float16)
    ck = load_checkpoint(tmp_path / "h")
    assert ck.state["generator.projection"].dtype == torch.float16
    a, b = outputs(*nets)[1], outputs(*build_models(ck))[1]
    assert (a - b).abs().max() < 2e-2


def test_errors(tmp_path, saved):
    path, *_ = saved
    with pytest.raises(CheckpointError, match="nowhere: missing"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="config differs"):
        load_checkpoint(path, expect_config=dataclasses.replace(TINY, embed_dim=32))
    meta = json.loads((path / "checkpoint.json").read_text())
    (path / "checkpoint.json").write_text(json.dumps({**meta, "version": 9}))
    with pytest.raises(CheckpointError, match="version 9"):
        load_checkpoint(path)
    (path / "checkpoint.json").write_text(json.dumps({**meta, "config": {**meta["config"], "base_width": 4}}))
    with pytest.raises(CheckpointError, match="do not fit this architecture"):
        build_models(load_checkpoint(path))
    (path / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="model.safetensors: corrupt"):
        load_checkpoint(path)
