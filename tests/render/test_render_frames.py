"""`monalisa render` on real data: frames, channels, matte, provenance, determinism, resume, kill -9."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from monalisa.files import sha256_file
from monalisa.nodes import colour
from monalisa.nodes.media import read_still
from monalisa.nodes.models import default_model_dir
from monalisa.nodes.writer import EXR_CHANNELS, MATTE

M = EXR_CHANNELS.index(MATTE)  # the matte's channel index
UV = slice(EXR_CHANNELS.index("forward.u"), EXR_CHANNELS.index("forward.v") + 1)  # forward vectors

from .conftest import FRAMES, frame, monalisa, read_exr


def test_frames_have_the_still_size_channels_and_provenance(rendered, small_still, short_track):
    still = read_still(small_still)
    for n in range(FRAMES):
        pixels, names, attrs = read_exr(frame(rendered, n))
        assert pixels.shape == (still.pixels.shape[0], still.pixels.shape[1], len(EXR_CHANNELS))
        assert names == EXR_CHANNELS
        assert attrs["monalisa:synthetic"] == 1
        assert attrs["monalisa:frame"] == n and attrs["monalisa:flagged"] == 0
        assert attrs["monalisa:model_sha256"] == sha256_file(default_model_dir() / "warp_generator.onnx")
        assert attrs["monalisa:embedder_sha256"] == sha256_file(default_model_dir() / "embedder.onnx")
        assert attrs["monalisa:correction"] == 0.0  # no identity: the warp alone
        assert attrs["monalisa:track_sha256"] == sha256_file(short_track)
        assert attrs["monalisa:still_sha256"] == sha256_file(small_still)
        assert attrs["monalisa:identity_sha256"] == "none" and attrs["monalisa:mode"] == "feed-forward"
        assert attrs["monalisa:colorspace"] == colour.resolve(colour.LINEAR)
        assert np.all(pixels[..., 3] == 1.0)


def test_matte_covers_the_face_and_far_pixels_are_the_still(rendered, small_still):
    from monalisa.nodes.node import still_landmarks

    still = read_still(small_still)
    points = still_landmarks(still)
    linear = colour.convert(still.pixels, colour.SRGB, colour.LINEAR).astype(np.float16).astype(np.float32)
    centre = points[[30, 33, 51]].mean(axis=0)  # nose tip, nostrils, upper lip
    radius = np.linalg.norm(points - points.mean(axis=0), axis=1).max()
    ys, xs = np.mgrid[0:linear.shape[0], 0:linear.shape[1]]
    far = np.hypot(xs - points[:, 0].mean(), ys - points[:, 1].mean()) > 3.2 * radius
    assert far.sum() > 1000  # the test must look at real pixels
    for n in range(FRAMES):
        pixels, _, _ = read_exr(frame(rendered, n))
        matte = pixels[..., M]
        assert matte[int(centre[1]), int(centre[0])] > 0.99
        assert matte[far].max() == 0.0 and matte[:5].max() == 0.0
        assert np.array_equal(pixels[..., :3][far], linear[far])  # beyond the warp's reach: the still, exactly
        assert np.abs(pixels[..., UV][far]).max() == 0.0


def test_the_face_moves_and_motion_vectors_follow_it(rendered):
    first, _, _ = read_exr(frame(rendered, 0))
    moved = [np.abs(read_exr(frame(rendered, n))[0][..., :3] - first[..., :3]).max() for n in range(1, FRAMES)]
    assert max(moved) > 0.05  # frames differ where the face is
    motion = np.stack([read_exr(frame(rendered, n))[0][..., UV] for n in range(FRAMES - 1)])
    assert np.abs(motion).max() > 0.1 and np.isfinite(motion).all()


def test_any_sub_range_gives_byte_identical_frames(rendered, small_still, short_track, tmp_path):
    out = tmp_path / "chunk" / "s.####.exr"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "3-5",
                    "--batch", 2, "--threads", 1)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.0003.exr", "s.0004.exr", "s.0005.exr"]
    for n in (3, 4, 5):
        assert frame(out, n).read_bytes() == frame(rendered, n).read_bytes()


def test_rerun_skips_finished_frames_and_refuses_other_inputs(rendered, small_still, short_track):
    again = monalisa("render", "--still", small_still, "--track", short_track, "--out", rendered, "--threads", 1)
    assert again.returncode == 0, again.stderr
    assert f"0 written, {FRAMES} skipped, 0 flagged" in again.stdout
    other = monalisa("render", "--still", small_still, "--track", short_track, "--out", rendered,
                     "--retarget", "absolute", "--frames", "0-1")
    assert other.returncode == 2
    assert "rendered from other inputs" in other.stderr and "--overwrite" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_a_file_monalisa_did_not_write_is_never_replaced(small_still, short_track, tmp_path):
    out = tmp_path / "s.####.exr"
    mine = frame(out, 1)
    mine.write_bytes(b"the compositor's own frame")
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--overwrite")
    assert done.returncode == 2
    assert "was not written by monalisa" in done.stderr and str(mine) in done.stderr
    assert mine.read_bytes() == b"the compositor's own frame"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.0001.exr"]


def test_kill_9_then_rerun_gives_the_uninterrupted_frames(rendered, small_still, short_track, tmp_path):
    out = tmp_path / "k.####.exr"
    cmd = [sys.executable, "-m", "monalisa", "render", "--still", str(small_still), "--track", str(short_track),
           "--out", str(out), "--batch", "1", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith("k.") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written = [p for p in tmp_path.iterdir() if p.name.startswith("k.")]
    assert 0 < len(written) < FRAMES  # killed mid-render
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"k.{n:04d}.exr" for n in range(FRAMES)]  # no temporaries
    for n in range(FRAMES):
        assert frame(out, n).read_bytes() == frame(rendered, n).read_bytes()


def test_a_frame_without_usable_landmarks_is_the_untouched_still_and_flagged(small_still, short_track, tmp_path):
    import json

    data = json.loads(short_track.read_text())
    data["frames"][2]["points"] = [[0.0, 0.0]] * 68  # a tracker's "face lost" marker
    track = tmp_path / "lost.json"
    track.write_text(json.dumps(data))
    out = tmp_path / "out" / "f.####.exr"
    done = monalisa("render", "--still", small_still, "--track", track, "--out", out, "--frames", "1-3")
    assert done.returncode == 0, done.stderr
    assert "3 written, 0 skipped, 1 flagged" in done.stdout
    pixels, _, attrs = read_exr(frame(out, 2))
    linear = colour.convert(read_still(small_still).pixels, colour.SRGB, colour.LINEAR)
    assert attrs["monalisa:flagged"] == 1 and "collapsed" in attrs["monalisa:flag_reason"]
    assert np.array_equal(pixels[..., :3], linear.astype(np.float16).astype(np.float32))
    assert pixels[..., M].max() == 0.0
    assert read_exr(frame(out, 1))[2]["monalisa:flagged"] == 0


def test_preview_movie_and_contact_sheet(small_still, short_track, tmp_path):
    import av
    import cv2

    out = tmp_path / "p.%04d.exr"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "0-3",
                    "--preview")
    assert done.returncode == 0, done.stderr
    with av.open(str(tmp_path / "p.preview.mp4")) as movie:
        assert sum(1 for _ in movie.decode(video=0)) == 4
    sheet = cv2.imread(str(tmp_path / "p.contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 256 and sheet.std() > 10


def test_png_previews_are_srgb_with_alpha_free_rgb(small_still, short_track, tmp_path):
    import cv2

    out = tmp_path / "p.####.png"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "0")
    assert done.returncode == 0, done.stderr
    png = cv2.imread(str(frame(out, 0)), cv2.IMREAD_UNCHANGED)
    still = cv2.imread(str(small_still))
    assert png.shape == still.shape
    assert np.abs(png[:20].astype(int) - still[:20]).max() <= 1  # far from the face: the still's own pixels


@pytest.mark.parametrize("ext", ["png", "jpg", "tif"])
def test_display_frames_carry_provenance_and_resume(small_still, short_track, tmp_path, ext):
    """PNG/JPEG/TIFF writers drop custom attributes: the provenance rides in ImageDescription, so a
    re-run resumes (skips), other settings are refused, and a pipeline still tells a generated face."""
    from monalisa.nodes.writer import read_header

    out = tmp_path / f"p.####.{ext}"
    args = ("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "0-1")
    assert monalisa(*args).returncode == 0
    header = read_header(frame(out, 1))
    assert header["monalisa:synthetic"] == 1 and header["monalisa:frame"] == 1
    assert len(header["monalisa:still_sha256"]) == 64
    again = monalisa(*args)
    assert again.returncode == 0 and "0 written, 2 skipped" in again.stdout, again.stderr
    other = monalisa(*args, "--mouth", "off")
    assert other.returncode == 2 and "was rendered from other inputs" in other.stderr


def test_cuda_request_says_which_provider_runs_and_strict_fails(small_still, short_track, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this box has CUDA")
    out = tmp_path / "c.####.exr"
    soft = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "0",
                    "--device", "cuda")
    assert soft.returncode == 0, soft.stderr
    assert "CUDA was asked for but onnxruntime runs on CPUExecutionProvider" in soft.stdout
    strict = monalisa("render", "--still", small_still, "--track", short_track, "--out", tmp_path / "d.####.exr",
                      "--frames", "0", "--device", "cuda", "--strict-device")
    assert strict.returncode == 2 and "CUDAExecutionProvider" in strict.stderr
    assert not (tmp_path / "d.0000.exr").exists()


def test_a_warp_generator_model_renders_through_the_same_node(small_still, short_track, tmp_path):
    """The node learns from the metadata that this generator wants the warped still and returns a correction."""
    from monalisa.nodes.node import still_landmarks

    folder = default_model_dir("warp_small")
    if not (folder / "warp_generator.onnx").is_file():
        pytest.skip("no warp_small export in this checkout")
    out = tmp_path / "w.####.exr"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "0-2",
                    "--model", "warp_small", "--correction", "1")  # a bundled model, by name; feed-forward
    assert done.returncode == 0, done.stderr
    assert "adds 1 x the feed-forward correction" in done.stdout + done.stderr  # the feed-forward note
    still = read_still(small_still)
    points = still_landmarks(still)
    linear = colour.convert(still.pixels, colour.SRGB, colour.LINEAR).astype(np.float16).astype(np.float32)
    ys, xs = np.mgrid[0:linear.shape[0], 0:linear.shape[1]]
    radius = np.linalg.norm(points - points.mean(axis=0), axis=1).max()
    far = np.hypot(xs - points[:, 0].mean(), ys - points[:, 1].mean()) > 3.2 * radius
    for n in range(3):
        pixels, names, attrs = read_exr(frame(out, n))
        assert names == EXR_CHANNELS and pixels.shape[:2] == linear.shape[:2]
        assert attrs["monalisa:model_sha256"] == sha256_file(folder / "warp_generator.onnx")
        assert 0.0 < pixels[..., M].max() <= 1.0 and pixels[..., M][far].max() == 0.0
        assert np.array_equal(pixels[..., :3][far], linear[far])
        assert np.isfinite(pixels).all()


def test_the_correction_weight_of_a_warp_model(small_still, short_track):
    """Default without an identity: the still's landmark warp and no network; weight w adds w x the
    feed-forward correction; the matte covers the face either way; bad weights are refused."""
    from monalisa.errors import ConfigError
    from monalisa.nodes.node import AnimatePortrait
    from monalisa.nodes.warp import apply_flow, warp_field

    def render(**kw):
        node = AnimatePortrait(str(small_still), track=str(short_track), threads=1, **kw)
        return node, {r.frame: r for r in node.render([3])}[3]

    node, plain = render()
    assert node.model.warp and node.correction == 0.0 and node.embedding is None
    points = node.driving.points[node.driving.index(3)]
    flow, _ = warp_field(node.mesh, points)
    warp, _ = node.mouth.paint(apply_flow(node.linear, flow), points, node.output_colorspace)
    assert np.array_equal(plain.rgb, warp)  # exactly the warp, with the mouth interior painted
    centre = points[[30, 33, 51]].mean(axis=0).astype(int)
    assert plain.matte[centre[1], centre[0]] > 0.99
    _, full = render(correction=1.0)
    _, half = render(correction=0.5)
    moved = np.abs(full.rgb - plain.rgb).max(axis=2) > 1e-3
    assert moved.sum() > 500  # the correction changes the face
    # the mask scales linearly: half the weight moves each pixel about half as far (colour is converted
    # after the sum, so not exactly half)
    ratio = np.abs(half.rgb - plain.rgb)[moved].sum() / np.abs(full.rgb - plain.rgb)[moved].sum()
    assert 0.3 < ratio < 0.7
    assert full.metadata["monalisa:correction"] == 1.0 and half.metadata["monalisa:correction"] == 0.5
    for bad, words in ((1.5, "within 0..1"), (-0.1, "within 0..1")):
        with pytest.raises(ConfigError, match=words):
            render(correction=bad)
    with pytest.raises(ConfigError, match="warp models only"):
        render(model="reference", correction=0.5)


def test_the_reference_image_generator_still_renders_feed_forward(small_still, short_track, tmp_path):
    """--model reference: the paper's 64 px generator draws the face (feed-forward from the still)."""
    out = tmp_path / "r.####.exr"
    done = monalisa("render", "--still", small_still, "--track", short_track, "--out", out, "--frames", "0-1",
                    "--model", "reference", "--threads", 1)
    assert done.returncode == 0, done.stderr
    warp = tmp_path / "w.####.exr"
    assert monalisa("render", "--still", small_still, "--track", short_track, "--out", warp, "--frames", "0-1",
                    "--threads", 1).returncode == 0
    pixels, _, attrs = read_exr(frame(out, 1))
    plain, _, _ = read_exr(frame(warp, 1))
    assert attrs["monalisa:model_sha256"] == sha256_file(default_model_dir("reference") / "generator.onnx")
    assert "monalisa:correction" not in attrs and attrs["monalisa:mode"] == "feed-forward"
    face = pixels[..., M] > 0.99
    assert face.sum() > 500
    assert np.abs(pixels[..., :3][face] - plain[..., :3][face]).mean() > 0.01  # a generated face, not the warp
