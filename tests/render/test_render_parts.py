"""The render path's parts: colour, still formats, the dense warp, driving, the bundled model, a torch-free install."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from monalisa.nodes import colour
from monalisa.nodes.media import read_still

from .conftest import CLIP, REPO, frame, monalisa, read_exr


def test_colour_round_trip_linear_srgb_within_1e3():
    rng = np.random.default_rng(0)
    linear = np.concatenate([rng.uniform(0, 1, (64, 3)), rng.uniform(0, 4, (16, 3))]).astype(np.float32)
    srgb = colour.convert(linear, colour.LINEAR, colour.SRGB)
    assert abs(float(colour.convert(np.array([[0.18] * 3], np.float32), "lin_rec709", "srgb_tx")[0, 0]) - 0.4614) < 1e-3
    back = colour.convert(srgb, colour.SRGB, colour.LINEAR)
    assert np.abs(back - linear).max() < 1e-3
    acescg = colour.convert(linear, colour.LINEAR, "ACEScg")
    assert np.abs(colour.convert(acescg, "ACEScg", colour.LINEAR) - linear).max() < 1e-3


def test_unknown_colour_space_is_one_line(small_still, short_track, tmp_path):
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", tmp_path / "s.####.exr",
                    "--colorspace", "rec709")
    assert done.returncode == 2 and "colour space 'rec709' is not in the OCIO config" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_grey_rgba_16bit_half_exr_dpx_tiff_stills_give_the_same_face_crop(small_still, tmp_path):
    """Each variant of the same 8-bit RGB still crops to the same model input, within 1 code value."""
    import OpenImageIO as oiio

    from monalisa.nodes.facecrop import CropGeometry, model_crop
    from monalisa.nodes.node import still_landmarks

    rgb = cv2.cvtColor(cv2.imread(str(small_still)), cv2.COLOR_BGR2RGB)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    variants = {}
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])  # half-transparent: colour must not darken
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    variants["rgba"] = (tmp_path / "rgba.png", rgb)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    variants["grey"] = (tmp_path / "grey.png", np.dstack([grey] * 3))
    cv2.imwrite(str(tmp_path / "deep.png"), cv2.cvtColor(rgb.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    variants["16-bit"] = (tmp_path / "deep.png", rgb)
    linear = colour.convert(rgb.astype(np.float32) / 255.0, colour.SRGB, colour.LINEAR)
    buf = oiio.ImageBuf(oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.FLOAT))
    buf.set_pixels(oiio.ROI(), linear)
    assert buf.write(str(tmp_path / "half.exr"), oiio.HALF)
    variants["half exr"] = (tmp_path / "half.exr", rgb)
    srgb_buf = oiio.ImageBuf(oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.FLOAT))
    srgb_buf.set_pixels(oiio.ROI(), rgb.astype(np.float32) / 255.0)
    for name, fmt in (("still.dpx", oiio.UINT16), ("still.tif", oiio.UINT16)):
        assert srgb_buf.write(str(tmp_path / name), fmt)
        variants[name] = (tmp_path / name, rgb)
    geometry = CropGeometry()
    points = still_landmarks(read_still(small_still))
    for name, (path, expected) in variants.items():
        still = read_still(path)
        assert still.srgb.shape == rgb.shape, name
        want = model_crop(expected, points, geometry).image.astype(int)
        got = model_crop(still.srgb, points, geometry).image.astype(int)
        assert np.abs(got - want).max() <= 1, name
    assert read_still(tmp_path / "rgba.png").alpha is not None


def test_dense_warp_identity_translation_and_reach():
    from monalisa.nodes.warp import apply_flow, build_mesh, motion_vectors, warp_field

    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (300, 400, 3)).astype(np.float32)
    track = __import__("json").loads((Path(__file__).parent / "face68.json").read_text())
    points = np.array(track, np.float32) * 0.5 + (150, 100)  # a face in the middle of the frame
    mesh = build_mesh(points, (400, 300))
    flow, triangle = warp_field(mesh, points)
    assert np.abs(flow).max() < 1e-3 and np.array_equal(apply_flow(image, np.zeros_like(flow)), image)
    moved = points + (4.0, -3.0)
    flow, triangle = warp_field(mesh, moved)
    centre = points.mean(axis=0).astype(int)
    assert np.allclose(flow[centre[1], centre[0]], (-4.0, 3.0), atol=1e-3)  # samples the still 4 px left, 3 down
    assert flow[0, 0].tolist() == [0.0, 0.0] and flow[-1, -1].tolist() == [0.0, 0.0]  # frame edges are static
    motion = motion_vectors(mesh, points, moved, warp_field(mesh, points)[1])
    assert np.allclose(motion[centre[1], centre[0]], (4.0, -3.0), atol=1e-3)
    warped = apply_flow(image, flow)
    c = centre + (4, -3)
    assert np.allclose(warped[c[1], c[0]], image[centre[1], centre[0]], atol=1e-4)
    closed = points.copy()
    closed[[61, 62, 63]] = closed[[67, 66, 65]]  # closed lips: dlib puts inner-lip points on top of each other
    flow, triangle = warp_field(mesh, closed)
    assert np.isfinite(flow).all() and np.isfinite(motion_vectors(mesh, closed, points, triangle)).all()


def test_relative_retargeting_keeps_the_still_face_and_follows_the_mouth(short_track, small_still):
    from monalisa.nodes import trackfile
    from monalisa.nodes.drive import drive
    from monalisa.nodes.landmarks import inter_ocular
    from monalisa.nodes.node import still_landmarks
    from monalisa.nodes.track import track_plate

    track = track_plate(str(CLIP), end=40)  # the clip's first 41 frames: the mouth opens and closes
    still = still_landmarks(read_still(small_still))
    plate_eyes = np.array([inter_ocular(p) for p in track.points])
    mouth = lambda pts: np.array([np.linalg.norm(p[66] - p[62]) / inter_ocular(p) for p in pts])  # noqa: E731
    for mode, keeps in (("relative", True), ("absolute", False)):
        driving = drive(track, still, mode=mode, smooth=False)
        eyes = np.array([inter_ocular(p) for p in driving.points]) / inter_ocular(still)
        n = driving.index(driving.neutral)  # the plate frame matched to the still
        drift = np.abs(eyes / (plate_eyes / plate_eyes[n]) - 1).max()  # head scale changes removed
        assert (drift <= 0.02) == keeps, (mode, drift)
    driving = drive(track, still, mode="relative", smooth=False)
    opening = mouth(driving.points)
    assert opening.max() - opening.min() > 0.1  # the still's mouth opens
    assert np.corrcoef(opening, mouth(track.points))[0, 1] > 0.9  # with the plate's
    head = driving.points.mean(axis=1) - still.mean(axis=0)
    plate_head = track.points.mean(axis=1) - track.points[0].mean(axis=0)
    assert np.corrcoef(head[:, 0], plate_head[:, 0])[0, 1] > 0.8  # and the head moves with the plate's
    assert trackfile.validate(track) is track


def test_reexporting_the_reference_weights_reproduces_the_bundled_model(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from monalisa.cli import main
    from monalisa.export.verify import load_real_inputs
    from monalisa.nodes.modelfile import read_model_info
    from monalisa.nodes.models import default_model_dir

    bundled = default_model_dir("reference")
    assert main(["export", str(bundled.parent), "--out", str(tmp_path / "again"), "--fp16"]) == 0
    real = load_real_inputs(None, read_model_info(bundled / "generator.onnx").crop)
    images, rasters = real.images[:4].astype(np.float32), real.rasters[:4].astype(np.float32)
    for precision, bound in (("", 1e-4), (".fp16", 2e-2)):
        outputs = []
        for folder in (bundled, tmp_path / "again"):
            emb = ort.InferenceSession(str(folder / f"embedder{precision}.onnx")).run(
                None, {"images": images[None], "rasters": rasters[None]})[0]
            img = ort.InferenceSession(str(folder / f"generator{precision}.onnx")).run(
                None, {"raster": rasters, "embedding": np.repeat(emb, len(rasters), axis=0)})[0]
            outputs.append((emb, img))
        (e0, i0), (e1, i1) = outputs
        assert np.abs(e0 - e1).max() <= bound and np.abs(i0 - i1).max() <= bound, precision


@pytest.mark.skipif(os.environ.get("MONALISA_SKIP_VENV_TEST") == "1", reason="MONALISA_SKIP_VENV_TEST=1")
def test_a_torch_free_install_renders(tmp_path, small_still, short_track):
    """`pip install .[cpu]` in a fresh venv (no torch) renders a frame with the bundled model."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{REPO}[cpu]"], capture_output=True,
                         text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    py = str(venv / "bin" / "python")
    assert subprocess.run([py, "-c", "import torch"], capture_output=True).returncode != 0
    out = tmp_path / "out" / "s.####.exr"
    done = subprocess.run([str(venv / "bin" / "monalisa"), "render", "--still", str(small_still), "--track",
                           str(short_track), "--out", str(out), "--frames", "0-1"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    pixels, names, attrs = read_exr(frame(out, 1))
    assert names[-3:] == ("forward.u", "forward.v", "matte.A") and "Vector.W" in names and attrs["monalisa:synthetic"] == 1


@pytest.mark.parametrize("name", ["warp_small", "warp"])
def test_reexporting_bundled_warp_weights_reproduces_their_onnx(tmp_path, name):
    """Each bundled warp-conditioned model's ONNX is what `monalisa export` makes of its weights."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from monalisa.cli import main
    from monalisa.export.verify import load_real_inputs
    from monalisa.nodes.modelfile import read_model_info
    from monalisa.nodes.models import default_model_dir

    bundled = default_model_dir(name)
    if not (bundled / "warp_generator.onnx").is_file():
        pytest.skip(f"no bundled {name} model in this checkout")
    info = read_model_info(bundled / "warp_generator.onnx")
    assert main(["export", str(bundled.parent), "--out", str(tmp_path / "again")]) == 0
    real = load_real_inputs(None, info.crop)
    rasters, warped = real.rasters[:2], real.images[:2]
    outs = []
    for folder in (bundled, tmp_path / "again"):
        emb = ort.InferenceSession(str(folder / "embedder.onnx")).run(
            None, {"images": real.images[None, :4], "rasters": real.rasters[None, :4]})[0]
        outs.append(ort.InferenceSession(str(folder / "warp_generator.onnx")).run(
            None, {"raster": rasters, "warped": warped, "embedding": np.repeat(emb, 2, axis=0)}))
    for a, b in zip(*outs):
        assert a.shape[-1] == info.resolution and np.abs(a - b).max() <= 1e-4
