"""The warp-conditioned generator: shapes, identity at initialisation, gradients, ONNX parity,
baked == generic, the export folder, the torch-free composite, and a one-identity overfit race
against the plain generator."""
from pathlib import Path

import numpy as np
import pytest
import torch

from monalisa.errors import ConfigError, ShapeError
from monalisa.models.config import ModelConfig, get_config
from monalisa.models.warpgen import WarpGenerator, compose

TINY = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                   attention_resolution=0, generator="warp")
CLIP = Path(__file__).resolve().parents[2] / "assets" / "clips" / "liveportrait_d0.mp4"


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def inputs(cfg, b=2):
    r = cfg.resolution
    return torch.rand(b, 3, r, r) * 2 - 1, torch.rand(b, 3, r, r) * 2 - 1, torch.rand(b, cfg.embed_dim)


def test_shapes_and_untrained_network_returns_the_warp_exactly():
    G = WarpGenerator(TINY).eval()
    y, w, e = inputs(TINY)
    corr, mask = G(y, w, e)
    assert corr.shape == (2, 3, 32, 32) and mask.shape == (2, 1, 32, 32)
    assert torch.equal(compose(w, corr, mask), w)  # zero correction: exactly the warp
    assert ((mask > 0) & (mask < 1)).all()
    for preset in ("warp_small", "warp_medium", "warp"):
        assert get_config(preset).generator == "warp"
    with pytest.raises(ShapeError):
        G(y, w[:, :, :16], e)
    with pytest.raises(ConfigError):
        WarpGenerator(get_config("small"))


def test_gradients_reach_every_part():
    G = WarpGenerator(TINY).train()
    y, w, e = inputs(TINY)
    target = torch.rand_like(w) * 2 - 1
    corr, mask = G(y, w, e)
    (compose(w, corr, mask) - target).abs().mean().backward()
    assert G.to_correction.weight.grad.abs().sum() > 0  # the zero head learns at once
    opt = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt.step()
    opt.zero_grad()
    corr, mask = G(y, w, e)
    (compose(w, corr, mask) - target).abs().mean().backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert G.projection.grad.abs().sum() > 0  # identity (psi = P e) shapes the output


def _ckpt(tmp_path, cfg=TINY):
    from monalisa.models.checkpoint import save_checkpoint
    from monalisa.models.checkpoint import build_networks

    E, G, D = build_networks(cfg)
    with torch.no_grad():  # a non-trivial correction so parity means something
        G.to_correction.weight.normal_(0, 0.05)
    save_checkpoint(tmp_path / "ckpt", E, G, D, cfg, 1)
    return tmp_path / "ckpt", E, G


def test_onnx_parity_and_baked_equals_generic(tmp_path):
    import onnxruntime as ort

    from monalisa.export import onnx as xw
    from monalisa.models.checkpoint import load_checkpoint
    from monalisa.models.identity import load_identity, save_identity

    path, E, G = _ckpt(tmp_path)
    ckpt = load_checkpoint(path)
    e = torch.rand(1, TINY.embed_dim)
    psi = G.project(e).detach()
    save_identity(tmp_path / "pack", G, psi, e, {"name": "x", "base_checkpoint_sha256": ckpt.sha256})
    graphs = xw.build_graphs(ckpt, load_identity(tmp_path / "pack"))
    y, w, _ = inputs(TINY, 3)
    feeds_g = {"raster": y.numpy(), "warped": w.numpy(), "embedding": e.expand(3, -1).numpy()}
    outs = {}
    for role in ("warp_generator", "baked_warp_generator"):
        model = xw.export_graph(graphs[role], role, TINY)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        feed = {k: v for k, v in feeds_g.items() if k in [i.name for i in sess.get_inputs()]}
        outs[role] = sess.run(["correction", "mask"], feed)
        ref = xw.torch_reference(graphs[role], tuple(feed[i.name] for i in sess.get_inputs()))
        for got, want in zip(outs[role], ref):
            assert np.abs(got - want).max() < 1e-4
    for a, b in zip(outs["warp_generator"], outs["baked_warp_generator"]):
        assert np.abs(a - b).max() < 1e-5
    assert np.abs(outs["warp_generator"][0]).max() > 1e-3


def test_export_folder_is_read_by_the_runtime(tmp_path):
    from monalisa.export.pipeline import export_checkpoint
    from monalisa.nodes.modelfile import read_model_info
    from monalisa.nodes.runtime import create_session
    from monalisa.nodes.warpgen import run_generator

    path, _, _ = _ckpt(tmp_path)
    result = export_checkpoint(path, tmp_path / "onnx")
    assert {f.name for f in result.files} == {"embedder.onnx", "warp_generator.onnx"}
    assert all(f.metric == "max|diff|" and f.value < 1e-4 for f in result.files)
    sess = create_session(tmp_path / "onnx" / "warp_generator.onnx")
    info = read_model_info(tmp_path / "onnx" / "warp_generator.onnx", sess)
    assert info.role == "warp_generator" and info.outputs == ("correction", "mask") and info.config["generator"] == "warp"
    y, w, e = inputs(TINY, 2)
    corr, mask = run_generator(sess, y.numpy(), w.numpy(), e[:1].numpy())
    assert corr.shape == (2, 3, 32, 32) and mask.shape == (2, 1, 32, 32)


def test_composite_keeps_the_still_where_the_mask_is_zero():
    from monalisa.nodes.crop import align_face
    from monalisa.nodes.warpgen import composite

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    pts = np.array([[100 + 60 * np.cos(a), 150 + 70 * np.sin(a)] for a in np.linspace(0, 6, 68)], np.float32)
    tf = align_face(pts, 32)
    out, matte = composite(frame, tf, np.ones((3, 32, 32), np.float32), np.zeros((1, 32, 32), np.float32))
    assert np.array_equal(out, frame) and matte.max() == 0.0
    out, matte = composite(frame, tf, np.full((3, 32, 32), 2.0, np.float32), np.ones((1, 32, 32), np.float32))
    centre = tf.invert(np.array([[16.0, 16.0]]))[0].round().astype(int)
    assert out.dtype == np.uint8 and out[centre[1], centre[0]].min() == 255 and matte[centre[1], centre[0]] == 1.0
    far = matte == 0
    assert far.any() and np.array_equal(out[far], frame[far])  # outside the square: the still, exactly
    fl, _ = composite(frame.astype(np.float32) / 255, tf, np.zeros((3, 32, 32), np.float32),
                      np.ones((32, 32), np.float32))
    assert fl.dtype == np.float32 and np.allclose(fl, frame / 255.0, atol=1e-6)


def test_one_identity_overfit_beats_the_plain_generator(tmp_path):
    """Same episodes, same steps, same L1 loss: the warp generator ends lower than the plain one."""
    from monalisa.models.embedder import Embedder
    from monalisa.models.generator import Generator
    from monalisa.models.prepare import PrepareOptions, prepare
    from monalisa.models.data import PreparedData, episode_batch

    prepare([CLIP], tmp_path / "data", PrepareOptions(size=64, max_frames=8), progress=False)
    data = PreparedData(tmp_path / "data")
    plain_cfg = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                            attention_resolution=0)
    batches = [episode_batch(data, s, 2, 2, 32, warped=True) for s in range(4)]
    losses = {}
    for kind, cfg in (("plain", plain_cfg), ("warp", TINY)):
        torch.manual_seed(0)
        E = Embedder(cfg)
        G = Generator(cfg) if kind == "plain" else WarpGenerator(cfg)
        opt = torch.optim.Adam([*E.parameters(), *G.parameters()], lr=2e-4, betas=(0.0, 0.999))
        hist = []
        for step in range(24):
            b = batches[step % len(batches)]
            e = E(b["ref_images"], b["ref_rasters"])
            fake = G(b["rasters"], e) if kind == "plain" else compose(b["warped"], *G(b["rasters"], b["warped"], e))
            loss = (fake - b["images"]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            hist.append(loss.item())
        losses[kind] = float(np.mean(hist[-4:]))
    assert losses["warp"] < losses["plain"]
    assert losses["warp"] < float((batches[0]["warped"] - batches[0]["images"]).abs().mean()) + 0.05


SHUFFLED = ModelConfig(resolution=64, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                       attention_resolution=0, generator="warp", shuffle=2)


def test_shuffled_generator_grows_exactly_from_its_trunk():
    """shuffle=2 at 64²: a 32² network between space-to-depth and depth-to-space. Grown from the
    32² generator it equals that generator on the 2x average-pooled inputs, upsampled by repeating
    pixels; untrained it still returns the warp; shuffle is refused where it cannot work."""
    import torch.nn.functional as F

    from monalisa.models.embedder import Embedder
    from monalisa.models.warpgen import grow_shuffle

    small = WarpGenerator(TINY).eval()
    with torch.no_grad():
        small.to_correction.weight.normal_(0, 0.05)
        small.to_mask.weight.normal_(0, 0.05)
    big = WarpGenerator(SHUFFLED).eval()
    y, w, e = inputs(SHUFFLED)
    corr, mask = big(y, w, e)
    assert corr.shape == (2, 3, 64, 64) and mask.shape == (2, 1, 64, 64)
    assert torch.equal(compose(w, corr, mask), w)
    grow_shuffle(small, big)
    with torch.no_grad():
        c_big, m_big = big(y, w, e)
        c_small, m_small = small(F.avg_pool2d(y, 2), F.avg_pool2d(w, 2), e)
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
    assert torch.allclose(c_big, up(c_small), atol=1e-5) and torch.allclose(m_big, up(m_small), atol=1e-5)
    assert c_small.abs().max() > 1e-2
    emb = Embedder(SHUFFLED)
    assert emb(torch.rand(1, 2, 3, 64, 64), torch.rand(1, 2, 3, 64, 64)).shape == (1, 16)
    with pytest.raises(ConfigError, match="warp-generator option"):
        ModelConfig(resolution=64, shuffle=2)
    with pytest.raises(ConfigError, match="power of two"):
        ModelConfig(resolution=64, shuffle=3, generator="warp")
    with pytest.raises(ConfigError, match="not the trunk"):
        grow_shuffle(WarpGenerator(TINY), WarpGenerator(get_config("warp")))
    assert get_config("warp").resolution == 256 and get_config("warp").net_resolution == 64


def test_shuffled_generator_onnx_parity(tmp_path):
    from monalisa.export.pipeline import export_checkpoint
    from monalisa.nodes.runtime import create_session
    from monalisa.nodes.warpgen import run_generator

    path, _, G = _ckpt(tmp_path, SHUFFLED)
    result = export_checkpoint(path, tmp_path / "onnx")
    assert all(f.value < 1e-4 for f in result.files)
    sess = create_session(tmp_path / "onnx" / "warp_generator.onnx")
    y, w, e = inputs(SHUFFLED, 2)
    corr, mask = run_generator(sess, y.numpy(), w.numpy(), e[:1].numpy())
    with torch.no_grad():
        want, _ = G.eval()(y, w, e[:1].expand(2, -1))
    assert corr.shape == (2, 3, 64, 64) and np.abs(corr - want.numpy()).max() < 1e-4


def test_steady_term_trains_on_jittered_landmarks(tmp_path):
    """The one trainer (models/meta.py) with a warp config: episodes carry the warped still and the
    target's landmarks moved by N(0, 1 px) (raster and warp), the direct and steadiness terms are
    logged, and a run starts from another checkpoint's weights (--init)."""
    import csv

    from monalisa.models.checkpoint import build_models, load_checkpoint
    from monalisa.models.data import PreparedData, episode_batch
    from monalisa.models.meta import TrainConfig, train
    from monalisa.models.prepare import PrepareOptions, prepare

    prepare([CLIP], tmp_path / "data", PrepareOptions(size=64, max_frames=6), progress=False)
    b = episode_batch(PreparedData(tmp_path / "data"), 0, 2, 2, 32, warped=True, jitter_px=1.0)
    assert b["jitter_warped"].shape == b["warped"].shape == (2, 3, 32, 32)
    assert 0 < (b["jitter_rasters"] - b["rasters"]).abs().mean() and not torch.equal(b["jitter_warped"], b["warped"])
    init, _, G0 = _ckpt(tmp_path)
    cfg = TrainConfig(steps=2, batch_size=2, k=2, checkpoint_every=2, adversarial=False, steady_weight=1.0)
    train(tmp_path / "data", tmp_path / "run", TINY, cfg, progress=False, init=init)
    rows = list(csv.DictReader(open(tmp_path / "run" / "losses.csv")))
    assert len(rows) == 2 and all(float(r["steady"]) > 0 and float(r["direct"]) > 0 for r in rows)
    assert all(r["d_total"] == "" and float(r["warp_l1"]) > 0 for r in rows)  # no D step without adversarial
    _, G1, _ = build_models(load_checkpoint(tmp_path / "run" / "checkpoints" / "step_0000002"))
    w0, w1 = G0.to_correction.weight, G1.to_correction.weight.float()
    assert (w1 - w0).abs().max() < 0.01 < w0.abs().max()  # two small steps from the init weights, not from zero


def test_adversarial_warp_training_steps_d_and_resumes_exactly(tmp_path):
    """With the projection discriminator: D's loss is logged; a resumed run continues with the
    losses an uninterrupted run logs (the one trainer's resume, for the warp generator too)."""
    import csv

    from monalisa.models.meta import TrainConfig, train
    from monalisa.models.prepare import PrepareOptions, prepare

    prepare([CLIP], tmp_path / "data", PrepareOptions(size=64, max_frames=6), progress=False)
    rows = {}
    for name, stops in (("once", (3,)), ("twice", (2, 3))):
        for steps in stops:
            torch.manual_seed(0)
            cfg = TrainConfig(steps=steps, batch_size=2, k=2, checkpoint_every=1, amp=False)
            train(tmp_path / "data", tmp_path / name, TINY, cfg, progress=False)
        rows[name] = list(csv.DictReader(open(tmp_path / name / "losses.csv")))
    assert all(float(r["d_total"]) > 0 for r in rows["once"])
    for a, b in zip(rows["once"], rows["twice"]):
        assert a["g_total"] == b["g_total"] and a["d_total"] == b["d_total"]
