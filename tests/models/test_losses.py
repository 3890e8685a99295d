import logging

import pytest
import torch
from safetensors.torch import save_file

from monalisa.errors import CheckpointError
from monalisa.models import losses
from monalisa.models.losses import ContentLoss, LossWeights, discriminator_losses, generator_losses
from monalisa.models.perceptual import VGGFeatures, load_vgg


def test_hinge_values():
    d = discriminator_losses(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5]))
    assert d["real"].item() == pytest.approx(0.5) and d["fake"].item() == pytest.approx(0.75)
    assert d["total"].item() == pytest.approx(1.25)


def test_fallback_content_logs_once_and_is_zero_on_identical(caplog, monkeypatch):
    monkeypatch.setattr(ContentLoss, "_warned", False)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with caplog.at_level(logging.WARNING, logger=losses.__name__):
        c = ContentLoss()
        ContentLoss()
        assert not caplog.records  # said at the first step, once the inputs were checked, not at construction
        assert c(x, x).item() == pytest.approx(0.0, abs=1e-5)
        assert c(x, -x).item() > 0.5
        ContentLoss()(x, x)
    assert sum("L1 + gradient L1 over 3 scales + MS-SSIM" in r.message for r in caplog.records) == 1


def test_stand_in_gradient_term_sees_edges_that_l1_does_not():
    """A one-pixel shift of a sharp edge and a uniform offset of the same L1: the pyramid stand-in
    (L1 + gradient L1 + MS-SSIM) tells them apart more than L1 + MS-SSIM does; unknown names refused."""
    from monalisa.errors import ConfigError
    from monalisa.models.losses import gradient_l1, pyramid

    real = -torch.ones(1, 3, 64, 64)
    real[..., 20:44] = 1.0  # a vertical bar
    shifted = torch.roll(real, 1, dims=-1)
    assert gradient_l1(real, real).item() == 0.0
    assert gradient_l1(shifted, real).item() > 0.05
    assert gradient_l1(real + 0.1, real).item() == pytest.approx(0.0, abs=1e-6)  # offsets have no edges
    assert [t.shape[-1] for t in pyramid(real)] == [64, 32, 16]
    new, old = ContentLoss(stand_in="pyramid"), ContentLoss(stand_in="l1-msssim")
    assert new(shifted, real).item() > old(shifted, real).item() + 0.05
    with pytest.raises(ConfigError, match="stand-in must be one of"):
        ContentLoss(stand_in="vgg")


def test_generator_losses_total_and_weights():
    c = ContentLoss()
    fake, real = torch.zeros(2, 3, 64, 64), torch.zeros(2, 3, 64, 64)
    feats = [torch.ones(2, 4, 8, 8)]
    out = generator_losses(fake, real, torch.tensor([1.0, 3.0]), feats, [torch.zeros(2, 4, 8, 8)],
                           torch.ones(2, 5), torch.zeros(2, 5), c, LossWeights())
    assert out["adv"].item() == pytest.approx(-2.0)
    assert out["fm"].item() == pytest.approx(10.0)
    assert out["match"].item() == pytest.approx(50.0)
    assert out["total"].item() == pytest.approx(58.0, abs=1e-4)


def test_vgg_weights_from_safetensors(tmp_path):
    torch.manual_seed(0)
    net = VGGFeatures()
    path = tmp_path / "vgg19.safetensors"
    save_file({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, str(path))
    loaded = load_vgg(path)
    x = torch.rand(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(net(x), loaded(x)))
    c = ContentLoss(vgg19_path=path)
    assert c(x, x).item() == 0 and c(x, -x).item() > 0
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="bad.safetensors: cannot read VGG weights"):
        load_vgg(tmp_path / "bad.safetensors")
