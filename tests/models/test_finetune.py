import json

import pytest
import torch

from monalisa.cli import main
from monalisa.errors import IdentityPackError
from monalisa.models.checkpoint import save_checkpoint
from monalisa.models.config import ModelConfig
from monalisa.models.discriminator import Discriminator
from monalisa.models.embedder import Embedder
from monalisa.models.finetune import FinetuneConfig, finetune
from monalisa.models.generator import Generator
from monalisa.models.identity import load_identity, save_identity

TINY = ModelConfig(resolution=64, base_width=8, max_width=32, embed_dim=16, num_down=3,
                   num_res_blocks=1, attention_resolution=16)


def nets():
    torch.manual_seed(0)
    return Embedder(TINY), Generator(TINY), Discriminator(TINY)


def test_finetune_moves_generator_and_reconstruction_improves():
    E, G, D = nets()
    torch.manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        G.eval()
        before = (G(y, E(x[None], y[None]).expand(2, -1)) - x).abs().mean()
    psi, e = finetune(E, G, D, x, y, FinetuneConfig(steps=25, optim=FinetuneConfig().optim.__class__(lr_eg=1e-3)),
                      progress=False)
    assert psi.shape == (1, G.num_adain_params) and e.shape == (1, 16)
    with torch.no_grad():
        after = (G.synthesize(y, psi.expand(2, -1)) - x).abs().mean()
    assert after < before


def test_identity_pack_roundtrip_and_errors(tmp_path):
    E, G, D = nets()
    psi, e = torch.randn(1, G.num_adain_params), torch.randn(1, 16)
    save_identity(tmp_path / "p", G, psi, e, {"name": "anna", "base_checkpoint_sha256": "ab" * 32},
                  {"contact_sheet.png": b"png"})
    pack = load_identity(tmp_path / "p", base_sha256="ab" * 32)
    assert torch.equal(pack.psi, psi) and pack.meta["name"] == "anna"
    assert (tmp_path / "p" / "contact_sheet.png").read_bytes() == b"png"
    with pytest.raises(IdentityPackError, match="not the given cdcdcdcdcdcd"):
        load_identity(tmp_path / "p", base_sha256="cd" * 32)
    (tmp_path / "p" / "identity.safetensors").write_bytes(b"xx")
    with pytest.raises(IdentityPackError, match="corrupt identity pack"):
        load_identity(tmp_path / "p")
    with pytest.raises(IdentityPackError, match="missing"):
        load_identity(tmp_path / "nope")


@pytest.fixture
def ckpt(tmp_path):
    save_checkpoint(tmp_path / "ck", *nets(), TINY, 0)
    return tmp_path / "ck"


def test_cli_rejects_k0_and_k33(ckpt, tmp_path, capsys):
    assert main(["finetune", str(ckpt), "--out", str(tmp_path / "o")]) == 2
    assert "got 0 images, need 1..32" in capsys.readouterr().err
    stills = [str(ckpt / "checkpoint.json")] * 33
    assert main(["finetune", str(ckpt), "--stills", *stills, "--out", str(tmp_path / "o")]) == 2
    assert "got 33 images" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_rejects_other_version_checkpoint(ckpt, tmp_path, capsys):
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    (ckpt / "checkpoint.json").write_text(json.dumps({**meta, "version": 2}))
    still = tmp_path / "s.png"
    still.write_bytes(b"x")
    assert main(["finetune", str(ckpt), "--stills", str(still), "--out", str(tmp_path / "o")]) == 2
    assert "version 2" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_no_face(ckpt, tmp_path, capsys, shared_file):
    noface = shared_file("portraits/liveportrait_s36_alpaca_noface.jpg")
    assert main(["finetune", str(ckpt), "--stills", str(noface), "--out", str(tmp_path / "o")]) == 2
    assert "no face" in capsys.readouterr().err.lower()
    assert not (tmp_path / "o").exists()


def test_cli_end_to_end_two_stills(ckpt, tmp_path, shared_file):
    stills = [shared_file("portraits/liveportrait_s0.jpg"), shared_file("portraits/liveportrait_s3.jpg")]
    out = tmp_path / "pack"
    assert main(["finetune", str(ckpt), "--stills", *map(str, stills), "--out", str(out), "--steps", "3"]) == 0
    meta = json.loads((out / "identity.json").read_text())
    assert meta["k"] == 2 and meta["format"] == "monalisa-identity" and len(meta["images"]) == 2
    assert meta["lr"] == {"generator": 5e-5, "discriminator": 2e-4} and meta["seed"] == 0
    pack = load_identity(out, base_sha256=meta["base_checkpoint_sha256"])
    assert pack.psi.shape[0] == 1 and (out / "contact_sheet.png").read_bytes()[:4] == b"\x89PNG"


def test_gan_step_teaches_d_real_from_fake_and_g_to_fool_it():
    """The shared adversarial update as fine-tuning runs it: D's hinge loss falls on a fixed batch,
    the real image is scored without a graph for G's step, and G and psi move."""
    from monalisa.models.update import gan_update

    E, G, D = nets()
    torch.manual_seed(2)
    x, y = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        e = E(x[None], y[None])
    psi = torch.nn.Parameter(G.project(e).detach())
    w = torch.nn.Parameter(e.clone())
    opt_g = torch.optim.Adam([*G.parameters(), psi], lr=5e-5, betas=(0.0, 0.999))
    opt_d = torch.optim.Adam([*D.parameters(), w], lr=2e-4, betas=(0.0, 0.999))
    graphs = []

    def score(im, r):
        out = D.score_with(im, r, w.expand(len(im), -1))
        graphs.append((len(im), out[0].requires_grad))
        return out

    g0 = [p.detach().clone() for p in G.parameters()]
    psi0 = psi.detach().clone()
    d_losses = []
    for _ in range(12):
        fake = G.synthesize(y, psi.expand(2, -1))
        g, d = gan_update(fake, x, y, score_g=score, score_d=score, opt_g=opt_g, opt_d=opt_d,
                          content=torch.nn.L1Loss())
        d_losses.append(d["total"].item())
    # per update: the fake with a graph, the real without one (G's step), then both together for D
    assert graphs[:3] == [(2, True), (2, False), (4, True)]
    assert set(g) == {"content", "adv", "fm", "total"}
    assert d_losses[-1] < d_losses[0] / 2, d_losses
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters())) and not torch.equal(psi0, psi)


def test_a_pack_with_non_finite_weights_is_never_written(tmp_path):
    """Issue 17 item 6: a fine-tuning that diverged fails (exit 1) and writes nothing."""
    from monalisa.errors import DivergedError

    E, G, D = nets()
    with torch.no_grad():
        next(G.parameters()).view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    with pytest.raises(DivergedError, match=r"not written: fine-tuning diverged, 3 of \d+ weights are NaN") as err:
        save_identity(tmp_path / "p", G, torch.zeros(1, G.num_adain_params), torch.zeros(1, 16), {})
    assert err.value.exit_code == 1 and list(tmp_path.iterdir()) == []


def test_finetune_that_diverges_writes_no_pack(tmp_path):
    """The real case: an infinite steadiness weight turns the warp generator's weights to NaN."""
    from pathlib import Path

    import av
    import cv2

    import monalisa
    from monalisa.errors import DivergedError
    from monalisa.models.finetune import make_identity_pack

    clip = Path(__file__).resolve().parents[2] / "assets" / "clips" / "liveportrait_d0.mp4"
    with av.open(str(clip)) as c:
        still = tmp_path / "still.png"
        cv2.imwrite(str(still), next(c.decode(video=0)).to_ndarray(format="bgr24"))
    warp_small = Path(monalisa.__file__).parent / "weights" / "warp_small"
    with pytest.raises(DivergedError, match="NaN or infinite"):
        make_identity_pack(warp_small, [still], tmp_path / "pack", steps=1, steady=float("inf"), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.png"]
