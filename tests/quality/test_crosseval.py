"""`monalisa evaluate --driver`: cross-reenactment end to end on a short real pair, its measures, and
bad input (one line, exit 2, nothing written)."""
import json
from pathlib import Path

import numpy as np
import pytest

from monalisa.cli import main
from monalisa.models import quality

REPO = Path(__file__).resolve().parents[2]
STILL = REPO / "assets" / "portraits" / "liveportrait_s3.jpg"


@pytest.fixture(scope="module")
def tiny_warp_checkpoint(tmp_path_factory):
    import torch

    from monalisa.models.checkpoint import build_networks, save_checkpoint
    from monalisa.models.config import ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                      attention_resolution=0, generator="warp")
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(path, *build_networks(cfg), cfg, 0)
    return path


def test_cross_reenactment_end_to_end(shared_file, tiny_warp_checkpoint, tmp_path, capsys):
    clip = shared_file("clips/liveportrait_d18.mp4")
    still = shared_file("portraits/liveportrait_s0.jpg")
    out = tmp_path / "cross"
    args = ["evaluate", "--driver", str(clip), "--stills", str(still), "--frames", "6", "--out", str(out),
            "--checkpoint", str(tiny_warp_checkpoint), "--finetune-steps", "2", "--finetune-jitter", "0"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = {r.split(",")[2]: r.split(",") for r in (out / "cross.csv").read_text().splitlines()[1:]
            if r.startswith("liveportrait_s0")}
    assert set(rows) == {"performer", "warp", "render", "render+identity"}
    header = (out / "cross.csv").read_text().splitlines()[0].split(",")
    value = lambda row, col: float(rows[row][header.index(col)])  # noqa: E731
    for row in ("warp", "render", "render+identity"):
        assert value(row, "faces") == 1.0  # a face found on every frame
        assert 0.8 < value(row, "identity") <= 1.0  # the still's own face, warped
        assert 0 < value(row, "landmark_error") < 0.1
        assert 0.3 < value(row, "detail") < 1.5
    assert "render+identity: a face on every frame" in printed and "| mean |  | warp |" in printed
    meta = json.loads((out / "liveportrait_s0__liveportrait_d18" / "metrics.json").read_text())
    assert meta["frames"] == list(range(6)) and len(meta["results"]) == 4
    import cv2

    sheet = cv2.imread(str(out / "liveportrait_s0__liveportrait_d18" / "contact_sheet.png"))
    assert sheet.shape[0] == 4 * 256  # performer, warp, render, render+identity
    assert (out / "identities" / "liveportrait_s0" / "onnx").is_dir()  # the K = 1 identity, baked
    stamp = (out / "liveportrait_s0__liveportrait_d18" / "metrics.json").stat().st_mtime_ns
    assert main(args) == 0  # resumed: the pair is not redone
    assert (out / "liveportrait_s0__liveportrait_d18" / "metrics.json").stat().st_mtime_ns == stamp


def test_mouth_interior_tells_a_mouth_from_smeared_lips():
    """Lip colour inside the inner-lip polygon scores ~0; a dark cavity and teeth score high."""
    import cv2

    points = np.zeros((68, 2))
    outer = [(60 + 40 * np.cos(a), 100 + 22 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)]
    inner = [(60 + 28 * np.cos(a), 100 + 12 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    points[48:60], points[60:68] = outer, inner
    smeared = np.full((200, 120, 3), (200, 90, 90), np.uint8)
    assert abs(quality.mouth_interior(smeared, points)) < 0.5
    mouth = smeared.copy()
    cv2.fillPoly(mouth, [np.round(np.array(inner)).astype(np.int32)], (30, 10, 10))
    assert quality.mouth_interior(mouth, points) > 20
    closed = points.copy()
    closed[60:68, 1] = 100  # the inner lips on one line: nothing inside
    assert np.isnan(quality.mouth_interior(mouth, closed))


def test_mouth_opening_and_landmark_error():
    p = np.zeros((68, 2))
    p[48], p[54], p[36], p[45] = (0, 0), (10, 0), (-5, -20), (15, -20)
    p[[61, 62, 63]], p[[67, 66, 65]] = [(3, -1), (5, -1), (7, -1)], [(3, 2), (5, 2), (7, 2)]
    assert quality.mouth_opening(p) == pytest.approx(0.3)
    crossed = p.copy()
    crossed[[61, 62, 63]], crossed[[67, 66, 65]] = p[[67, 66, 65]], p[[61, 62, 63]]
    assert quality.mouth_opening(crossed) == pytest.approx(-0.3)  # lips that cross read negative
    assert quality.landmark_error(p + (2, 0), p) == pytest.approx(0.1)  # 2 px / 20 px between the eyes


@pytest.mark.parametrize("case", ["missing clip", "no face", "no stills", "both modes", "few frames", "stills alone"])
def test_cross_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    import cv2

    clip = REPO / "assets" / "clips" / "liveportrait_d10.mp4"
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    out = tmp_path / "out"
    args = {"missing clip": ["--driver", str(tmp_path / "nope.mp4"), "--stills", str(STILL)],
            "no face": ["--driver", str(clip), "--stills", str(blank)],
            "no stills": ["--driver", str(clip)],
            "both modes": [str(clip), "--driver", str(clip), "--stills", str(STILL)],
            "few frames": ["--driver", str(clip), "--stills", str(STILL), "--frames", "2"],
            "stills alone": [str(clip), "--stills", str(STILL)]}[case]
    assert main(["evaluate", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    want = {"missing clip": "nope.mp4", "no face": "blank.png", "no stills": "--stills", "both modes": "--driver",
            "few frames": "--frames", "stills alone": "--driver"}[case]
    assert want in err[0]
    assert not out.exists()
