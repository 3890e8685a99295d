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


def test_warp_identity_pack_export_and_render(tmp_path, stills):
    from monalisa.models.checkpoint import build_networks, save_checkpoint

    torch.manual_seed(0)
    E, G, D = build_networks(TINY)
    save_checkpoint(tmp_path / "ckpt", E, G, D, TINY, 1)
    pack = tmp_path / "pack"
    assert main(["finetune", str(tmp_path / "ckpt"), "--stills", *map(str, stills), "--out", str(pack),
                 "--steps", "3", "--steady", "1", "--threads", "1"]) == 0
    meta = json.loads((pack / "identity.json").read_text())
    assert meta["k"] == 2 and meta["still"] == str(stills[0]) and meta["steady"] == 1.0
    sheet = cv2.imread(str(pack / "contact_sheet.png"))
    assert sheet.shape[1] >= 4 * 32 and sheet.shape[0] >= 2 * 32  # crops | rasters | warped | output, a row per still
    assert main(["export", str(tmp_path / "ckpt"), "--identity", str(pack), "--out", str(tmp_path / "onnx")]) == 0
    baked = tmp_path / "onnx" / "baked_warp_generator.onnx"
    assert baked.is_file()
    assert main(["track", str(CLIP), "--out", str(tmp_path / "track.json"), "--start", "0", "--end", "1"]) == 0
    assert main(["render", "--still", str(stills[0]), "--track", str(tmp_path / "track.json"), "--model",
                 str(tmp_path / "onnx"), "--identity", str(baked), "--out", str(tmp_path / "r" / "f.####.png")]) == 0
    assert len(list((tmp_path / "r").glob("f.*.png"))) == 2


def test_finetune_steady_below_zero_is_one_line(tmp_path, stills, capsys):
    assert main(["finetune", str(ROOT / "monalisa" / "weights" / "warp_small"), "--stills", str(stills[0]),
                 "--out", str(tmp_path / "p"), "--steady", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--steady" in err[0]
    assert not (tmp_path / "p").exists()
