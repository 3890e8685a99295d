"""The mouth: the lips part instead of stretching, and the hole between them is painted (issue 16)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from monalisa.nodes import colour

from .conftest import REPO, frame, monalisa, read_exr

CLIP10 = REPO / "assets" / "clips" / "liveportrait_d10.mp4"
OPEN = [24, 25, 26, 27]  # the bundled clip's widest-open frames (inner-lip height ~0.4 of the mouth width)
RED, BLUE, SKIN = (0.9, 0.1, 0.1), (0.1, 0.1, 0.9), (0.9, 0.75, 0.6)


@pytest.fixture(scope="module")
def open_track(tmp_path_factory) -> Path:
    """dlib track of the bundled README clip's frames 0..27: closed, then opening wide."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.track import track_plate

    path = tmp_path_factory.mktemp("track10") / "track.json"
    trackfile.save(track_plate(str(CLIP10), end=OPEN[-1]), path)
    return path


def _lip_still():
    """A 320x260 still with a closed mouth: the upper lip red, the lower blue, on skin; and its points."""
    pts = np.array(json.loads((Path(__file__).parent / "face68.json").read_text()), np.float64)
    pts = (pts - pts.mean(axis=0)) / np.ptp(pts[:, 0]) * 240 + (160, 110)
    pts[[61, 62, 63]] = pts[[67, 66, 65]] = (pts[[61, 62, 63]] + pts[[67, 66, 65]]) / 2  # closed lips
    img = np.zeros((260, 320, 3), np.float32) + SKIN
    upper = np.concatenate([pts[48:55], pts[[64, 63, 62, 61, 60]]])
    lower = np.concatenate([pts[[54, 55, 56, 57, 58, 59, 48]], pts[[60, 67, 66, 65, 64]]])
    for poly, c in ((upper, RED), (lower, BLUE)):
        cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], c, lineType=cv2.LINE_8, shift=4)
    return img, pts


def _run_length(column, c):
    return int((np.abs(column - np.array(c, np.float32)).max(axis=1) < 0.2).sum())


@pytest.mark.parametrize("split", [True, False])
def test_lips_part_and_keep_their_thickness(split):
    """The lower lip and jaw drop by 12 px; through the middle of the mouth each lip keeps its thickness
    within 5 % with split lips, while the plain mesh smears lip colour across the opening."""
    from monalisa.nodes.warp import apply_flow, build_mesh, warp_field

    img, pts = _lip_still()
    driven = pts.copy()
    driven[list(range(4, 13)) + [55, 56, 57, 58, 59, 65, 66, 67]] += (0, 12)
    mesh = build_mesh(pts, (320, 260), split_lips=split)
    assert (mesh.mouth is not None) == split
    out = apply_flow(img, warp_field(mesh, driven)[0])
    x_up, x_low = int(round(pts[62, 0])), int(round(pts[66, 0]))
    red_still, blue_still = _run_length(img[:, x_up], RED), _run_length(img[:, x_low], BLUE)
    red, blue = _run_length(out[:, x_up], RED), _run_length(out[:, x_low], BLUE)
    assert red_still > 5 and blue_still > 5
    kept = abs(red - red_still) <= 0.05 * red_still + 1 and abs(blue - blue_still) <= 0.05 * blue_still + 1
    assert kept == split, (red_still, red, blue_still, blue)
    if split:  # the gap between the lips holds no lip pixel stretched from the still
        gap = out[int(round(driven[62, 1])) + 2:int(round(driven[66, 1])) - 1, x_up]
        assert len(gap) >= 8 and _run_length(gap, RED) + _run_length(gap, BLUE) <= 2


def test_the_inner_lip_line_is_never_crossed_on_real_landmarks(small_still):
    """Every mesh of the painting's landmarks, opened and closed, hangs each lip on its own inner-lip points."""
    from monalisa.nodes.media import read_still
    from monalisa.nodes.node import still_landmarks
    from monalisa.nodes.warp import LOWER_LIP, MOUTH, UPPER_LIP, build_mesh

    pts = still_landmarks(read_still(small_still))
    mesh = build_mesh(pts, (282, 364))
    tris = {tuple(sorted(t)) for t in mesh.triangles.tolist()}
    assert {tuple(sorted(t)) for t in UPPER_LIP + LOWER_LIP + MOUTH} <= tris
    upper, lower = {49, 50, 51, 52, 53, 61, 62, 63}, {55, 56, 57, 58, 59, 65, 66, 67}
    spans = [t for t, m in zip(mesh.triangles.tolist(), mesh.mouth) if not m and upper & set(t) and lower & set(t)]
    assert spans == []


def test_the_painted_interior_is_shaded_in_its_rim(monkeypatch):
    """The shadow where the lips meet the interior: a flat paint (the dark-fill baseline) is 1 - CAVITY darker
    across a just-parted mouth and in the rim of a wide one, unchanged in a wide one's middle (its teeth and
    tongue); dlib reads an unshaded, lip-like interior as closed lips."""
    from monalisa.nodes import mouth
    from monalisa.nodes.mouth import CAVITY, CAVITY_RIM, DarkFill, MouthPainter, cavity_shade

    yy, xx = np.mgrid[:64, :64]
    hole = (((xx - 31.5) / 18) ** 2 + ((yy - 31.5) / 8) ** 2 <= 1).astype(np.float32)
    shade = cavity_shade(hole)
    assert shade[hole == 0].min() == 1.0 and shade[31:33, 31:33].min() == 1.0  # outside and the middle
    rim = hole.astype(bool) & (cv2.erode(hole, np.ones((3, 3), np.uint8)) == 0)
    assert shade[rim] == pytest.approx(1 - CAVITY) and int(2 * CAVITY_RIM) < 8

    img, pts = _lip_still()
    for drop in (4, 40):
        driven = pts.copy()
        driven[[65, 66, 67]] += (0, drop)  # the lower inner lip drops
        x, y = np.round(driven[[62, 66]].mean(axis=0)).astype(int)
        with monkeypatch.context() as m:
            m.setattr(mouth, "CAVITY", 0.0)
            flat, _ = MouthPainter(DarkFill(64), pts).paint(img, driven, colour.SRGB)
        out, matte = MouthPainter(DarkFill(64), pts).paint(img, driven, colour.SRGB)
        a = matte[y, x]
        assert a > 0.5
        paint, flat_paint = ((v[y, x] - (1 - a) * img[y, x]) / a for v in (out, flat))  # under the matte
        if drop == 4:  # resampled back from the patch, a line ~2 patch px high: most of the shade
            assert (paint < (1 - CAVITY / 2) * flat_paint).all(), (paint, flat_paint)
        else:
            assert paint == pytest.approx(flat_paint, rel=0.06), (paint, flat_paint)


def _render_node(still, track, mouth, frames=OPEN, **kw):
    from monalisa.nodes.node import AnimatePortrait

    node = AnimatePortrait(str(still), track=str(track), mouth=mouth, threads=1, **kw)
    return node, list(node.render(frames))


def test_the_hole_is_painted_with_mouth_on_and_is_the_lips_with_mouth_off(small_still, open_track):
    """The painting driven by the bundled clip's open mouth: inside the driven inner-lip line the colour
    is far from the lips' own with --mouth on (the issue's CIELAB score) and near it with --mouth off; the
    paint's matte reaches the `matte` channel; the provenance says which."""
    from monalisa.models.mouth_eval import interior_score

    scores = {}
    for mouth in ("on", "off"):
        node, results = _render_node(small_still, open_track, mouth)
        scores[mouth] = []
        for r in results:
            points = node.driving.points[node.driving.index(r.frame)]
            srgb = colour.convert(r.rgb, node.output_colorspace, colour.SRGB)
            scores[mouth].append(interior_score(srgb, points))
            centre = np.round(points[[62, 66]].mean(axis=0)).astype(int)
            assert r.metadata["monalisa:mouth"] == (1.0 if mouth == "on" else 0.0)
            if mouth == "on":
                assert r.matte[centre[1], centre[0]] == pytest.approx(1.0, abs=1e-3)
                assert r.metadata["monalisa:mouth_sha256"]
    # performers' own open mouths score ~20 (../shared/QUALITY.md); the issue's goal is half of that
    assert min(scores["on"]) > 10.0, scores
    assert abs(np.mean(scores["off"])) < 6.0, scores  # the painting's lip line stretched: a few units


def test_unknown_mouth_value_is_one_line_exit_2_nothing_written(small_still, short_track, tmp_path):
    out = tmp_path / "out"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out / "s.####.exr",
                    "--mouth", "open")
    assert done.returncode == 2 and "--mouth 'open': expected one of on, off" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def _mouth_model_with(tmp_path, name, resolution=None, **meta):
    """A mouth model file: a fresh network at ``resolution``, or the bundled file with metadata changed."""
    pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from monalisa.nodes.mouthmodel import bundled_path

    path = tmp_path / f"{name}.onnx"
    if resolution is not None:  # a fresh mouth-model folder through the one export pipeline
        from safetensors.torch import save_file

        from monalisa.export.pipeline import export_checkpoint
        from monalisa.files import write_json
        from monalisa.models.mouth import MouthConfig, MouthNet

        cfg = MouthConfig(resolution=resolution, width=8, levels=2)
        folder = tmp_path / f"{name}_mouth"
        folder.mkdir()
        save_file(MouthNet(cfg).state_dict(), str(folder / "model.safetensors"))
        write_json(folder / "mouth.json", {"config": cfg.to_dict(), "step": 0})
        export_checkpoint(folder, tmp_path / f"{name}_onnx", slim=False)
        path = tmp_path / f"{name}_onnx" / "mouth.onnx"
    else:
        model = onnx.load(str(bundled_path()))
        for entry in model.metadata_props:
            if entry.key.removeprefix("monalisa.") in meta:
                entry.value = meta[entry.key.removeprefix("monalisa.")]
        onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("name,change,words", [
    ("res32", {"resolution": 32}, None),
    ("v2", {"format_version": "2"}, "mouth model format version 2 is not the one this monalisa reads (1)"),
    ("width", {"mouth_width": "0.7"}, "corners 0.7 of the side apart"),
])
def test_a_mouth_model_of_another_resolution_or_format_version(small_still, short_track, tmp_path, name, change,
                                                                words):
    """A mouth model the node would cut patches for wrongly is refused before anything is written."""
    from .test_render_errors import refused

    if "resolution" in change:
        path = _mouth_model_with(tmp_path, name, resolution=change["resolution"])
        # a 32 px network is a valid file; lie about its side to the node
        import onnx

        model = onnx.load(str(path))
        for entry in model.metadata_props:
            if entry.key == "monalisa.resolution":
                entry.value = "64"
        onnx.save(model, str(path))
        words = "the graph takes ['patch'] of [32, 32] px, its metadata says ['patch'] of 64 px"
    else:
        path = _mouth_model_with(tmp_path, name, **change)
    out = tmp_path / "out"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out / "s.####.exr",
                    "--mouth-model", path)
    line = refused(done, out, str(path))
    assert words in line, line


def test_with_and_without_an_identity_the_painting_gets_a_mouth_interior(small_still, open_track, tmp_path):
    """The bundled painting driven by the bundled clip: the mouth is painted over the identity's
    correction too (an identity fine-tuned on the closed-mouth still cannot take it away)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from monalisa.cli import main
    from monalisa.models.checkpoint import build_networks, save_checkpoint
    from monalisa.models.config import ModelConfig
    from monalisa.models.mouth_eval import interior_score

    tiny = ModelConfig(resolution=32, base_width=8, max_width=16, embed_dim=16, num_down=2, num_res_blocks=1,
                       attention_resolution=0, generator="warp")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ckpt", *build_networks(tiny), tiny, 1)
    assert main(["finetune", str(tmp_path / "ckpt"), "--stills", str(small_still), "--out", str(tmp_path / "pack"),
                 "--steps", "3", "--threads", "1"]) == 0
    assert main(["export", str(tmp_path / "ckpt"), "--identity", str(tmp_path / "pack"), "--out",
                 str(tmp_path / "onnx")]) == 0
    baked = tmp_path / "onnx" / "baked_warp_generator.onnx"
    scores = {}
    for name, kw in (("identity", {"model": str(tmp_path / "onnx"), "identity": str(baked)}), ("plain", {})):
        node, results = _render_node(small_still, open_track, "on", **kw)
        assert node.correction == (1.0 if name == "identity" else 0.0)
        scores[name] = [interior_score(colour.convert(r.rgb, node.output_colorspace, colour.SRGB),
                                       node.driving.points[node.driving.index(r.frame)]) for r in results]
        assert all(r.metadata["monalisa:mouth"] == 1.0 for r in results)
    assert min(scores["identity"]) > 10.0 and min(scores["plain"]) > 10.0, scores
