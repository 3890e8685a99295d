import json

import av
import numpy as np
import pytest

from monalisa.cli import main
from monalisa.errors import DataError
from monalisa.models.data import PreparedData, episode_batch
from monalisa.models.prepare import PrepareOptions, prepare, read_manifest

from pathlib import Path

CLIP = Path(__file__).resolve().parents[2] / "assets" / "clips" / "liveportrait_d0.mp4"


def write_movie(path, frames):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 128, 128, "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "data"
    prepare([CLIP], out, PrepareOptions(size=64, max_frames=10), progress=False)
    return out


def test_prepare_bundled_clip_layout(prepared):
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["format"] == "monalisa-prepared" and manifest["version"] == 1 and manifest["size"] == 64
    (video,) = manifest["videos"]
    assert video["id"] == "liveportrait_d0" and video["frames"] == 10 and video["skipped"] == 0
    assert video["fps"] == pytest.approx(25.0)
    frames = np.load(prepared / "liveportrait_d0" / "frames.npy")
    points = np.load(prepared / "liveportrait_d0" / "landmarks.npy")
    assert frames.shape == (10, 64, 64, 3) and frames.dtype == np.uint8
    assert points.shape == (10, 68, 2) and points.dtype == np.float32
    # aligned: the eye corners land near the canonical template (x 0.25/0.75 of the inner square)
    inner = 64 * 0.7
    assert np.allclose(points[:, 36, 0].mean(), 64 * 0.15 + 0.25 * inner, atol=3)
    assert np.allclose(points[:, 45, 0].mean(), 64 * 0.15 + 0.75 * inner, atol=3)
    assert frames.std() > 20  # real pixels, not a blank image


def test_prepare_resumes_without_redoing_a_clip(prepared):
    stamp = (prepared / "liveportrait_d0" / "frames.npy").stat().st_mtime_ns
    manifest = prepare([CLIP], prepared, PrepareOptions(size=64, max_frames=10), progress=False)
    assert (prepared / "liveportrait_d0" / "frames.npy").stat().st_mtime_ns == stamp
    assert manifest["videos"][0]["fps"] == pytest.approx(25.0) and manifest["videos"][0]["frames"] == 10


def test_prepare_real_shared_clip(shared_file, tmp_path):
    clip = shared_file("clips/liveportrait_d12.mp4")
    manifest = prepare([clip], tmp_path / "d", PrepareOptions(size=128, every=10), progress=False)
    (video,) = manifest["videos"]
    assert video["frames"] + video["skipped"] == 19 and video["frames"] >= 15


def test_episode_batch_shapes_and_determinism(prepared):
    data = PreparedData(prepared)
    a = episode_batch(data, step=3, batch_size=2, k=4, resolution=32, seed=1)
    b = episode_batch(data, step=3, batch_size=2, k=4, resolution=32, seed=1)
    c = episode_batch(data, step=4, batch_size=2, k=4, resolution=32, seed=1)
    assert a["ref_images"].shape == (2, 4, 3, 32, 32) and a["rasters"].shape == (2, 3, 32, 32)
    assert a["video"].tolist() == [0, 0]
    assert float(a["images"].min()) >= -1 and float(a["images"].max()) <= 1
    assert all((a[k] == b[k]).all() for k in a) and not (a["images"] == c["images"]).all()


def test_unreadable_and_empty_video(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a movie at all")
    assert main(["prepare", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("monalisa prepare: error:") and "broken.mp4" in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert main(["prepare", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "empty.mp4: the file is empty (0 bytes)" in err
    assert not (tmp_path / "o").exists()


def test_clip_without_a_face(tmp_path, capsys):
    clip = tmp_path / "wall.mp4"
    rng = np.random.default_rng(0)
    write_movie(clip, [np.full((128, 128, 3), 90, np.uint8) + rng.integers(0, 9, (128, 128, 3), dtype=np.uint8)
                       for _ in range(6)])
    assert main(["prepare", str(clip), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "wall.mp4: no face found in any of 6 frames" in err
    assert not (tmp_path / "o" / "wall").exists() and not (tmp_path / "o" / "manifest.json").exists()


def test_data_dir_without_manifest(tmp_path, capsys):
    with pytest.raises(DataError, match="manifest.json: missing"):
        read_manifest(tmp_path)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "manifest.json: missing; run `monalisa prepare" in err


def dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_rerun_removes_the_temporaries_of_a_killed_run(prepared, tmp_path):
    import shutil
    import socket

    out = tmp_path / "data"
    shutil.copytree(prepared, out)
    tag = f"~{dead_pid()}@{socket.gethostname()}~k1ll3d"
    stale = out / f".liveportrait_d0.{tag}.tmp"
    (stale / "frames.npy").parent.mkdir()
    (stale / "frames.npy").write_bytes(b"half")
    other_host = out / ".liveportrait_d0.~1@elsewhere~abc.tmp"
    other_host.mkdir()
    (out / "notes.txt").write_text("mine")
    prepare([CLIP], out, PrepareOptions(size=64, max_frames=10), progress=False, overwrite=True)
    assert not stale.exists() and other_host.exists()  # a farm node's temporary is not ours to judge
    assert (out / "notes.txt").read_text() == "mine"
