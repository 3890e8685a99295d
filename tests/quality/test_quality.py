"""Metric sanity, the baselines on a real pair, and `monalisa evaluate` end to end on a short real clip."""
import json
from pathlib import Path

import numpy as np
import pytest

from monalisa.cli import main
from monalisa import evaluate as ev
from monalisa.files import LEDGER
from monalisa.models import quality
from monalisa.nodes.detect import create_detector
from monalisa.nodes.media import iter_frames

CLIP = Path(__file__).resolve().parents[2] / "assets" / "clips" / "liveportrait_d10.mp4"


@pytest.fixture(scope="module")
def analyser():
    return quality.FaceAnalyser()


@pytest.fixture(scope="module")
def pair():
    """(still, still points, target, target points): frames 0 and 40 of a bundled real clip."""
    det = create_detector("dlib")
    got = {n: rgb for n, rgb in iter_frames(CLIP, 0, 40) if n in (0, 40)}
    faces = {n: max(det.detect(rgb), key=lambda f: f.score) for n, rgb in got.items()}
    return got[0], faces[0].points, got[40], faces[40].points


def test_identical_images_score_perfectly(pair, analyser):
    _, _, img, pts = pair
    tf = quality.metric_transform(pts)
    crop = quality.metric_crop(img, tf)
    assert crop.shape == (quality.CROP_SIZE, quality.CROP_SIZE, 3)
    m = quality.image_metrics(crop, crop)
    assert m["l1"] == 0.0 and m["ssim"] == pytest.approx(1.0) and m["psnr"] == quality.PSNR_CAP
    ref = analyser.reference(crop, tf.apply(pts), img, pts)
    assert analyser.akd(crop, ref) == 0.0
    assert analyser.csim(img, ref) == pytest.approx(1.0)
    assert quality.flicker([crop, crop], [crop, crop]) == 0.0


def test_metrics_see_a_difference(pair):
    _, _, img, _ = pair
    noisy = np.clip(img.astype(int) + np.random.default_rng(0).integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    m = quality.image_metrics(noisy, img)
    assert 0.02 < m["l1"] < 0.05 and 20 < m["psnr"] < 30 and m["ssim"] < 0.9
    flat = np.zeros_like(img)
    assert quality.flicker([flat, img], [flat, flat]) == pytest.approx(img.mean() / 255.0)


def test_crop_jaw_spans_sixty_percent(pair):
    _, _, _, pts = pair
    p = quality.metric_transform(pts).apply(pts)
    assert 0.5 < np.linalg.norm(p[16] - p[0]) / quality.CROP_SIZE < 0.7


def test_baselines_on_a_real_pair(pair, analyser):
    still, still_pts, target, target_pts = pair
    clip = ev.Clip(CLIP, "pair", 41, 30.0, 0, {1: [0]}, [40], [], {0: still, 40: target},
                   {0: still_pts, 40: target_pts})
    scorer = ev.Scorer(clip, analyser)
    scores = {name: scorer.score(fn(clip, [40])) for name, fn in ev.BASELINES.items()}
    # the warp moves the still's landmarks onto the target's: AKD falls well below copying the still
    assert scores["warp"]["akd"] < scores["copy"]["akd"] - 1.0
    assert scores["warp"]["ssim"] > scores["copy"]["ssim"]
    # the blur control differs from the warp, and only slightly
    assert scores["warp-blur"]["l1"] != scores["warp"]["l1"]
    assert abs(scores["warp-blur"]["ssim"] - scores["warp"]["ssim"]) < 0.1
    warped = ev.warp_source(clip, [40])[40]
    assert warped.shape == still.shape and warped.dtype == np.uint8 and not np.array_equal(warped, still)


def test_blur_sigma_is_in_metric_pixels(pair):
    _, _, _, pts = pair
    scale = np.sqrt(abs(np.linalg.det(quality.metric_transform(pts).matrix[:, :2])))
    assert ev.blur_sigma(pts) * scale == pytest.approx(ev.BLUR_SIGMA)


def test_evaluate_end_to_end(tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["evaluate", str(CLIP), "--targets", "3", "--window", "3", "--k", "1", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| warp |" in printed and "| copy |" in printed and "| warp-blur |" in printed
    assert "| monalisa-ff1 | 1 |" in printed  # through the render path (nodes.node.AnimatePortrait)
    assert "| monalisa-default | – |" in printed  # the render's default without identity
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].startswith("clip,method,k,n,l1,psnr,ssim") and rows[0].endswith("mouth_l1,mouth_ssim")
    assert len(rows) == 1 + 5 + 5
    import cv2

    sheet = cv2.imread(str(out / "liveportrait_d10" / "contact_sheet.png"))
    assert sheet.shape[0] == 4 * 256  # rows: truth, monalisa-ff1, monalisa-default, warp
    assert (out / "liveportrait_d10" / "preview.mp4").stat().st_size > 1000
    means = {r.split(",")[1]: r.split(",") for r in rows if r.startswith("mean")}
    assert float(means["warp"][4]) < float(means["copy"][4])  # L1 of the crop
    stamp = (out / "liveportrait_d10" / "metrics.json").stat().st_mtime_ns
    assert main(["evaluate", str(CLIP), "--targets", "3", "--window", "3", "--k", "1", "--out", str(out)]) == 0
    assert (out / "liveportrait_d10" / "metrics.json").stat().st_mtime_ns == stamp  # resumed: not redone
    assert main(["evaluate", str(CLIP), "--targets", "3", "--window", "3", "--k", "1", "--out", str(out),
                 "--finetune-steps", "7"]) == 0
    assert (out / "liveportrait_d10" / "metrics.json").stat().st_mtime_ns != stamp  # other settings: redone


def test_evaluate_bad_input_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.mp4"), "--baselines-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.mp4" in err[0] and "not found" in err[0]
    assert main(["evaluate", str(CLIP), "--k", "0"]) == 2


def test_untrained_warp_generator_through_the_node_composite_is_the_warp(pair, tmp_path):
    """Correction zero at initialisation: the full node-side path (dense warp, model crop, onnxruntime,
    composite at the still's resolution) returns the warp baseline (to one code value)."""
    import torch

    from monalisa.export.pipeline import export_checkpoint
    from monalisa.models.checkpoint import save_checkpoint
    from monalisa.models.config import ModelConfig
    from monalisa.models.checkpoint import build_networks

    torch.manual_seed(0)
    cfg = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                      attention_resolution=0, generator="warp")
    save_checkpoint(tmp_path / "ckpt", *build_networks(cfg), cfg, 0)
    export_checkpoint(tmp_path / "ckpt", tmp_path / "onnx")
    still, still_pts, target, target_pts = pair
    clip = ev.Clip(CLIP, "pair", 41, 30.0, 0, {1: [0]}, [40], [], {0: still, 40: target},
                   {0: still_pts, 40: target_pts})
    # through AnimatePortrait, like a render, the untrained correction at full weight (the mouth model,
    # which paints between the lips, is off: the warp baseline stretches them)
    got = ev.render_method(tmp_path / "onnx", 1, warp=True, mouth="off")(clip, [40])[40]
    want = ev.warp_source(clip, [40])[40]
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want).max() <= 1  # float vs 8-bit bilinear resampling: one code value


def test_evaluate_a_warp_generator_export_with_fine_tuning(tmp_path, capsys):
    """--model with a warp-generator export and --checkpoint: feed-forward and fine-tuned rows."""
    import torch

    from monalisa.export.pipeline import export_checkpoint
    from monalisa.models.checkpoint import save_checkpoint
    from monalisa.models.config import ModelConfig
    from monalisa.models.checkpoint import build_networks

    torch.manual_seed(0)
    cfg = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                      attention_resolution=0, generator="warp")
    save_checkpoint(tmp_path / "ckpt", *build_networks(cfg), cfg, 0)
    export_checkpoint(tmp_path / "ckpt", tmp_path / "onnx")
    rc = main(["evaluate", str(CLIP), "--targets", "2", "--window", "0", "--k", "2", "--model", str(tmp_path / "onnx"),
               "--checkpoint", str(tmp_path / "ckpt"), "--finetune-steps", "2", "--finetune-jitter", "1",
               "--finetune-steady", "1", "--finetune-loss", "l1-msssim", "--out", str(tmp_path / "eval")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| monalisa-ff2 | 2 |" in printed and "| monalisa-ft2 | 2 |" in printed
    # a plain checkpoint with a warp export is refused before any work
    assert main(["evaluate", str(CLIP), "--model", str(tmp_path / "onnx"), "--checkpoint",
                 str(Path(__file__).resolve().parents[2] / "monalisa" / "weights" / "reference")]) == 2


def test_monalisa_export_writes_a_warp_checkpoint(tmp_path, capsys):
    """`monalisa export` sees a warp checkpoint by its config and writes the warp roles through the
    one pipeline: --int8 is gated on the composited face like any generator's picture."""
    from pathlib import Path

    import monalisa
    from monalisa.cli import main
    from monalisa.nodes.modelfile import read_model_info

    ckpt = Path(monalisa.__file__).parent / "weights" / "warp_small"
    if not (ckpt / "checkpoint.json").is_file():
        pytest.skip("no warp_small checkpoint in this checkout")
    assert main(["export", str(ckpt), "--out", str(tmp_path / "onnx"), "--int8"]) == 0
    printed = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    assert names[:3] == [LEDGER, "embedder.onnx", "export.json"] and "warp_generator.onnx" in names
    int8 = json.loads((tmp_path / "onnx" / "export.json").read_text())["files"][-1]
    assert int8["name"] == "warp_generator.int8.onnx" and int8["metric"] == "SSIM"
    assert int8["kept"] == (int8["value"] >= 0.99) == ("warp_generator.int8.onnx" in names)
    assert "warp_generator.int8.onnx" in printed
    info = read_model_info(tmp_path / "onnx" / "warp_generator.onnx")
    assert info.role == "warp_generator" and info.inputs == ("raster", "warped", "embedding")


def test_warp_model_end_to_end_prepare_train_export_render(tmp_path):
    """monalisa prepare -> train --config warp_small (2 steps from the bundled weights, so the correction
    is a live one) -> export -> render: each stage's output is the next one's input (hashes carried
    through), and the rendered face comes from the exported network."""
    import json
    from pathlib import Path

    import OpenImageIO as oiio

    from monalisa.cli import main
    from monalisa.files import sha256_file
    from monalisa.nodes.modelfile import read_model_info
    from monalisa.nodes.writer import matte_channel

    def read(path):
        inp = oiio.ImageInput.open(str(path))
        spec, pixels = inp.spec(), np.asarray(inp.read_image(oiio.FLOAT))
        inp.close()
        attrs = {a.name: a.value for a in spec.extra_attribs if a.name.startswith("monalisa:")}
        return pixels, list(spec.channelnames), attrs

    repo = Path(__file__).resolve().parents[2]
    clip = repo / "assets" / "clips" / "liveportrait_d0.mp4"
    assert main(["prepare", str(clip), "--out", str(tmp_path / "data"), "--size", "128", "--max-frames", "6"]) == 0
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert [(v["frames"], v["skipped"]) for v in manifest["videos"]] == [(6, 0)]  # every frame had its face
    assert np.load(tmp_path / "data" / manifest["videos"][0]["dir"] / "frames.npy").shape == (6, 128, 128, 3)
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--config", "warp_small",
                 "--steps", "2", "--checkpoint-every", "2", "--k", "2", "--batch", "1", "--no-adversarial",
                 "--init", str(repo / "monalisa" / "weights" / "warp_small")]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "step_0000002"
    ckpt_sha = sha256_file(ckpt / "model.safetensors")
    assert json.loads((ckpt / "checkpoint.json").read_text())["step"] == 2
    assert main(["export", str(ckpt), "--out", str(tmp_path / "onnx")]) == 0
    info = read_model_info(tmp_path / "onnx" / "warp_generator.onnx")
    assert info.role == "warp_generator" and info.checkpoint_sha256 == ckpt_sha
    side = json.loads((tmp_path / "onnx" / "export.json").read_text())
    assert all(f["value"] <= 1e-4 for f in side["files"] if f["precision"] == "fp32")
    track = tmp_path / "track.json"
    assert main(["track", str(clip), "--out", str(track), "--end", "1"]) == 0
    still = repo / "assets" / "portraits" / "liveportrait_s3.jpg"
    frames = {}
    for w in ("0", "1"):
        out = tmp_path / f"frames_{w}" / "f.####.exr"
        assert main(["render", "--still", str(still), "--track", str(track), "--out", str(out), "--model",
                     str(tmp_path / "onnx"), "--correction", w]) == 0
        assert sorted(p.name for p in out.parent.iterdir()) == ["f.0000.exr", "f.0001.exr"]
        frames[w] = [read(out.parent / f"f.000{n}.exr") for n in (0, 1)]
    pixels, names, attrs = frames["1"][1]
    assert attrs["monalisa:checkpoint_sha256"] == ckpt_sha  # the trained checkpoint, not a bundled model
    assert attrs["monalisa:model_sha256"] == sha256_file(tmp_path / "onnx" / "warp_generator.onnx")
    alpha = pixels[..., names.index(matte_channel(names))]
    matte, outside = alpha > 0.5, alpha == 0
    assert 0.01 < matte.mean() < 0.9 and outside.mean() > 0.1  # a face-sized matte
    rgb = [pixels[..., :3] for pixels, _, _ in frames["1"]]
    assert np.abs(rgb[0] - rgb[1])[matte].max() > 0.01  # the face follows the track from frame to frame
    plain = frames["0"][1][0][..., :3]  # the landmark warp alone: the network's correction off
    # the exported network changes the face: mean |diff| 0.035 with the warm-started correction, 0.0002
    # (colour-space round trips) were it not composited
    assert np.abs(rgb[1] - plain)[matte].mean() > 0.005
    assert np.abs(rgb[1] - plain)[outside].max() < 1e-6  # ... and nothing outside it


def test_inner_mouth_score_on_open_mouth_targets(analyser):
    """The self-reenactment mouth score: only targets whose true mouth is open count; the truth
    scores perfectly, the warp of the closed-mouth source does not (its error sits in the mouth), and
    the mask is the inner lips."""
    det = create_detector("dlib")
    got = {n: rgb for n, rgb in iter_frames(CLIP, 0, 11)}
    points = {n: max(det.detect(rgb), key=lambda f: f.score).points for n, rgb in got.items()}
    opening = {n: quality.mouth_opening(p) for n, p in points.items()}
    target = max(opening, key=opening.get)
    source = min(opening, key=opening.get)
    assert opening[target] > quality.OPEN_MOUTH
    clip = ev.Clip(CLIP, "mouth", 12, 30.0, source, {1: [source]}, [target], [], got, points)
    scorer = ev.Scorer(clip, analyser)
    assert list(scorer.mouth) == [target] and 50 < scorer.mouth[target].sum() < 0.2 * 256 ** 2
    truth = scorer.score({target: got[target]})
    assert truth["mouth_l1"] == 0.0 and truth["mouth_ssim"] == pytest.approx(1.0)
    warp = scorer.score(ev.warp_source(clip, [target]))
    assert warp["mouth_l1"] > 2 * warp["l1"]  # the warp's error sits in the mouth it cannot open
    assert warp["mouth_ssim"] < warp["ssim"]
    closed = ev.Clip(CLIP, "closed", 12, 30.0, target, {1: [target]}, [source], [], got, points)
    assert np.isnan(ev.Scorer(closed, analyser).score({source: got[source]})["mouth_l1"])
