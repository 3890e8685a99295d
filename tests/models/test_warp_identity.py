"""`monalisa finetune` on a warp-generator checkpoint: an identity pack from K stills of a person
(the first still warped to each still's expression -> that still), exported baked and rendered."""
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from monalisa.cli import main
from monalisa.models.config import ModelConfig

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "assets" / "clips" / "liveportrait_d10.mp4"
TINY = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                   attention_resolution=0, generator="warp")


@pytest.fixture
def stills(tmp_path):
    """Frames 0 and 40 of a bundled clip (MIT) as PNG stills: one person, two expressions."""
    paths = []
    with av.open(str(CLIP)) as movie:
        for i, frame in enumerate(movie.decode(video=0)):
            if i in (0, 40):
                paths.append(tmp_path / f"still_{i}.png")
                cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame.to_ndarray(format="rgb24"), cv2.COLOR_RGB2BGR))
            if i >= 40:
                break
    return paths


def test_onto_keeps_the_shape_and_takes_the_pose():
    from monalisa.models.finetune import onto

    rng = np.random.default_rng(0)
    ref = rng.uniform(100, 200, (68, 2))
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = (ref @ rot.T) * 1.7 + [40.0, -25.0]  # the same face, another pose and scale
    assert np.abs(onto(ref, moved) - ref).max() < 1e-3
    smiling = moved.copy()
    smiling[48:68] += [0.0, 6.0]  # the mouth moves: that shape survives the mapping
    mapped = onto(ref, smiling)
    assert np.abs(mapped[:48] - ref[:48]).max() < 1.0 and np.abs(mapped[48:68] - ref[48:68]).mean() > 2.0


def _read_exr(path):
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(str(path))
    spec, pixels = inp.spec(), np.asarray(inp.read_image(oiio.FLOAT))
    inp.close()
    return pixels, list(spec.channelnames), {a.name: a.value for a in spec.extra_attribs}


def test_warp_identity_pack_export_and_render(tmp_path, stills):
    """Fine-tuning changes the generator and psi', the export bakes them in, and the render with
    --identity draws its face from them: other pixels than the same network without the identity."""
    from monalisa.files import sha256_file
    from monalisa.models.checkpoint import build_models, build_networks, load_checkpoint, save_checkpoint
    from monalisa.models.identity import load_identity
    from monalisa.nodes.writer import matte_channel

    torch.manual_seed(0)
    E, G, D = build_networks(TINY)
    with torch.no_grad():
        G.to_correction.weight.normal_(0, 0.05)  # a live correction head, as after training
    save_checkpoint(tmp_path / "ckpt", E, G, D, TINY, 1)
    pack = tmp_path / "pack"
    assert main(["finetune", str(tmp_path / "ckpt"), "--stills", *map(str, stills), "--out", str(pack),
                 "--steps", "3", "--steady", "1", "--threads", "1"]) == 0
    meta = json.loads((pack / "identity.json").read_text())
    assert meta["k"] == 2 and meta["still"] == str(stills[0]) and meta["steady"] == 1.0
    sheet = cv2.imread(str(pack / "contact_sheet.png"))
    assert sheet.shape[1] >= 4 * 32 and sheet.shape[0] >= 2 * 32  # crops | rasters | warped | output, a row per still
    ident = load_identity(pack)
    base_g = build_models(load_checkpoint(tmp_path / "ckpt"))[1].eval()
    moved = max(float((ident.state[k].float() - v.detach()).abs().max()) for k, v in base_g.named_parameters())
    assert moved > 1e-6  # fine-tuning changed the generator's weights (not only its buffers)

    assert main(["export", str(tmp_path / "ckpt"), "--identity", str(pack), "--out", str(tmp_path / "onnx")]) == 0
    baked = tmp_path / "onnx" / "baked_warp_generator.onnx"
    # the baked file is the pack's generator with its psi', not the base generator on the pack's embedding
    import onnxruntime as ort

    tuned_g = build_models(load_checkpoint(tmp_path / "ckpt"))[1]
    tuned_g.load_state_dict({k: v.float() for k, v in ident.state.items()})
    gen = torch.Generator().manual_seed(1)
    raster, warped = (torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(2))
    got = ort.InferenceSession(str(baked), providers=["CPUExecutionProvider"]).run(
        None, {"raster": raster.numpy(), "warped": warped.numpy()})
    with torch.no_grad():
        want = tuned_g.eval().synthesize(raster, warped, ident.psi.float().expand(2, -1))
        untuned = base_g.synthesize(raster, warped, base_g.project(ident.embedding.float()).expand(2, -1))
    assert all(np.abs(g - w.numpy()).max() < 1e-4 for g, w in zip(got, want))
    assert np.abs(got[0] - untuned[0].numpy()).max() > 1e-4
    assert main(["track", str(CLIP), "--out", str(tmp_path / "track.json"), "--start", "0", "--end", "1"]) == 0
    renders = {}
    for name, extra in (("identity", ["--identity", str(baked)]), ("generic", ["--correction", "1"])):
        out = tmp_path / name / "f.####.exr"
        assert main(["render", "--still", str(stills[0]), "--track", str(tmp_path / "track.json"), "--model",
                     str(tmp_path / "onnx"), *extra, "--out", str(out)]) == 0
        assert sorted(p.name for p in out.parent.iterdir()) == ["f.0000.exr", "f.0001.exr"]
        renders[name] = _read_exr(out.parent / "f.0001.exr")
    pixels, names, attrs = renders["identity"]
    assert attrs["monalisa:identity_sha256"] == sha256_file(baked)
    assert attrs["monalisa:identity_name"] == ident.meta.get("name", pack.name)
    assert renders["generic"][2]["monalisa:identity_sha256"] in ("", "none")
    face = pixels[..., names.index(matte_channel(names))] > 0.5
    assert face.mean() > 0.01
    diff = np.abs(pixels[..., :3] - renders["generic"][0][..., :3])[face]
    assert diff.max() > 1e-3  # the identity's weights and psi' drew this face, not the feed-forward network


def test_finetune_steady_below_zero_is_one_line(tmp_path, stills, capsys):
    assert main(["finetune", str(ROOT / "monalisa" / "weights" / "warp_small"), "--stills", str(stills[0]),
                 "--out", str(tmp_path / "p"), "--steady", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--steady" in err[0]
    assert not (tmp_path / "p").exists()
