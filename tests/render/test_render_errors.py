"""`monalisa render` bad input: one line naming the file or frame, exit 2, nothing on disk."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from monalisa.nodes.models import default_model_dir

from .conftest import monalisa


def refused(done, out_dir: Path, *words):
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monalisa render: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not out_dir.exists() or not any(out_dir.iterdir()), list(out_dir.iterdir())
    return lines[0]


def render(still, track, out, *extra):
    return monalisa("render", "--still", still, "--track", track, "--out", out, *extra)


def test_corrupt_and_truncated_exr_stills(small_still, short_track, tmp_path):
    import OpenImageIO as oiio

    exr = tmp_path / "still.exr"
    buf = oiio.ImageBuf(str(small_still))
    assert buf.write(str(exr), oiio.HALF)
    data = exr.read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.exr").write_bytes(b"\x76\x2f\x31\x01" + os.urandom(2000))
    for name in ("cut.exr", "junk.exr"):
        out = tmp_path / f"out_{name}"
        refused(render(tmp_path / name, short_track, out / "s.####.exr"), out, str(tmp_path / name))


def test_plate_sequence_with_a_missing_frame(small_still, tmp_path):
    plate = tmp_path / "plate"
    plate.mkdir()
    img = cv2.imread(str(small_still))
    for n in (1001, 1002, 1004):
        cv2.imwrite(str(plate / f"p.{n}.png"), img)
    out = tmp_path / "out"
    refused(monalisa("render", "--still", small_still, "--plate", plate / "p.####.png", "--out", out / "s.####.exr"),
            out, "frame 1003 is missing", "p.####.png")


def test_still_without_a_face(short_track, tmp_path):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 200, 3), 128, np.uint8))
    out = tmp_path / "out"
    refused(render(blank, short_track, out / "s.####.exr"), out, str(blank), "no face found", "--still-landmarks")


def test_still_landmarks_rescue_a_still_the_detector_misses(short_track, small_still, tmp_path):
    """The same painting, its face painted over: the detector fails, --still-landmarks renders it."""
    from monalisa.nodes import trackfile
    from monalisa.nodes.media import read_still
    from monalisa.nodes.node import still_landmarks

    still = read_still(small_still)
    points = still_landmarks(still)
    hidden = tmp_path / "hidden.png"
    img = cv2.imread(str(small_still))
    x0, y0 = points.min(axis=0).astype(int)
    x1, y1 = points.max(axis=0).astype(int)
    img[y0:y1, x0:x1] = cv2.GaussianBlur(img[y0:y1, x0:x1], (0, 0), 12)
    cv2.imwrite(str(hidden), img)
    lm = tmp_path / "still_landmarks.json"
    trackfile.save(trackfile.Track(np.array([1]), points[None], still.size), lm)
    out = tmp_path / "out"
    refused(render(hidden, short_track, out / "s.####.exr", "--frames", "0"), out, "no face found")
    done = render(hidden, short_track, out / "s.####.exr", "--frames", "0", "--still-landmarks", lm)
    assert done.returncode == 0, done.stderr
    assert (out / "s.0000.exr").is_file()


@pytest.mark.parametrize("change,words", [
    ("nan", ["NaN"]),
    ("67", ["67 points", "expected 68"]),
])
def test_bad_tracks(small_still, short_track, tmp_path, change, words):
    data = json.loads(short_track.read_text())
    if change == "nan":
        data["frames"][3]["points"][10][0] = float("nan")
    else:
        data["frames"][3]["points"] = data["frames"][3]["points"][:67]
    track = tmp_path / "bad.json"
    track.write_text(json.dumps(data))  # json writes NaN as the bare token NaN
    assert change != "nan" or "NaN" in track.read_text()
    out = tmp_path / "out"
    refused(render(small_still, track, out / "s.####.exr"), out, str(track), "frame 3", *words)


def test_frames_the_track_does_not_have(small_still, short_track, tmp_path):
    out = tmp_path / "out"
    refused(render(small_still, short_track, out / "s.####.exr", "--frames", "5-12"), out,
            "frames 8-12 are not in", "0-7")


def test_out_without_a_frame_pattern_for_several_frames(small_still, short_track, tmp_path):
    out = tmp_path / "out"
    refused(render(small_still, short_track, out / "single.exr", "--frames", "0-2"), out, "frame-number pattern",
            "single.####.exr")


def test_unwritable_output_folder(small_still, short_track, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    cmd = ["monalisa", "render", "--still", str(small_still), "--track", str(short_track), "--out",
           str(locked / "s.####.exr")]
    if os.geteuid() == 0:  # root writes anywhere: drop the capability for the child
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        cmd = ["setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    locked.chmod(0o755)
    refused(done, locked, "cannot write in", str(locked))


def _altered_copy(src: Path, dst: Path, **changes) -> Path:
    import onnx

    from monalisa.export.metadata import get_metadata, set_metadata

    model = onnx.load(str(src))
    set_metadata(model, {**get_metadata(model), **{f"monalisa.{k}": v for k, v in changes.items()}})
    onnx.save(model, str(dst))
    return dst


def _model_dir(tmp_path, name="model", **changes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for role in ("embedder", "generator"):
        _altered_copy(default_model_dir("reference") / f"{role}.onnx", folder / f"{role}.onnx", **changes)
    return folder


def test_onnx_that_is_not_a_monalisa_export(small_still, short_track, tmp_path):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    folder = tmp_path / "foreign"
    folder.mkdir()
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    for role in ("embedder", "generator"):
        (folder / f"{role}.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    out = tmp_path / "out"
    refused(render(small_still, short_track, out / "s.####.exr", "--model", folder), out, "no monalisa metadata")


@pytest.mark.parametrize("changes,words", [
    ({"format_version": "1"}, ["format version 1 is older"]),
    ({"format_version": "9"}, ["format version 9 is newer"]),
    ({"resolution": "128", "config": None,
      "crop": '{"filter": "area", "margin": 0.15, "prepare_size": 256, "resolution": 128}'},
     ["takes 64 px images but its metadata says 128 px"]),
])
def test_onnx_of_another_format_version_or_resolution(small_still, short_track, tmp_path, changes, words):
    pytest.importorskip("onnx")
    if changes.get("config", "") is None:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(default_model_dir("reference") / "generator.onnx")).metadata_props}
        config = json.loads(meta["monalisa.config"])
        config["resolution"] = 128
        changes["config"] = json.dumps(config)
    folder = _model_dir(tmp_path, **changes)
    out = tmp_path / "out"
    refused(render(small_still, short_track, out / "s.####.exr", "--model", folder), out, str(folder), *words)


def test_onnx_whose_external_data_leaves_its_folder(small_still, short_track, tmp_path):
    onnx = pytest.importorskip("onnx")
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(default_model_dir("reference") / "embedder.onnx", folder)
    model = onnx.load(str(default_model_dir("reference") / "generator.onnx"))
    onnx.save_model(model, str(folder / "generator.onnx"), save_as_external_data=True, location="weights.bin",
                    size_threshold=1024)
    os.replace(folder / "weights.bin", tmp_path / "weights.bin")
    bad = onnx.load(str(folder / "generator.onnx"), load_external_data=False)
    for tensor in bad.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../weights.bin"
    onnx.save(bad, str(folder / "generator.onnx"))
    out = tmp_path / "out"
    refused(render(small_still, short_track, out / "s.####.exr", "--model", folder), out,
            str(folder / "generator.onnx"), "escapes model directory")


def test_identity_made_from_another_checkpoint(small_still, short_track, tmp_path):
    """A baked generator exported from the reference weights, against a model folder of another checkpoint."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from monalisa.cli import main
    from monalisa.models.checkpoint import build_models, load_checkpoint
    from monalisa.models.identity import save_identity

    reference = default_model_dir("reference").parent
    ckpt = load_checkpoint(reference)
    _, gen, _ = build_models(ckpt)
    emb = torch.rand(1, ckpt.config.embed_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        psi = gen.project(emb)
    save_identity(tmp_path / "pack", gen, psi, emb, {"name": "Anna", "k": 1, "steps": 0, "images": [],
                                                     "base_checkpoint_sha256": ckpt.sha256,
                                                     "config": ckpt.config.to_dict()})
    assert main(["export", str(reference), "--identity", str(tmp_path / "pack"), "--out", str(tmp_path / "exp")]) == 0
    baked = tmp_path / "exp" / "baked_generator.onnx"
    other = _model_dir(tmp_path, "other", checkpoint_sha256="0" * 64)
    out = tmp_path / "out"
    refused(render(small_still, short_track, out / "s.####.exr", "--identity", baked, "--model", other), out,
            str(baked), "'Anna'", "was made from checkpoint")
    done = render(small_still, short_track, out / "s.####.exr", "--identity", baked, "--frames", "0")
    assert done.returncode == 0, done.stderr
    from .conftest import read_exr

    _, _, attrs = read_exr(out / "s.0000.exr")
    assert attrs["monalisa:mode"] == "identity" and attrs["monalisa:embedder_sha256"] == "none"
