"""Frame numbers and time as a compositor expects them: a movie plate numbered where the comp starts
it (--start-frame), an image sequence keeping its own numbers, the plate's fps recorded in the track
and used by smoothing and the preview movie."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from .conftest import CLIP, monalisa, read_exr

from monalisa.nodes import trackfile

N = 5  # frames of the short movie


@pytest.fixture(scope="module")
def movie25(tmp_path_factory) -> Path:
    """The first N frames of the bundled 25 fps clip, as a 25 fps movie of its own."""
    from monalisa.nodes.media import iter_frames, probe
    from monalisa.nodes.preview import write_movie

    assert probe(CLIP).fps == 25.0
    path = tmp_path_factory.mktemp("plate") / "plate25.mp4"
    write_movie(path, (rgb for _, rgb in iter_frames(CLIP, end=N - 1)), 25)
    return path


def _rate(movie) -> Fraction:
    import av

    with av.open(str(movie)) as c:
        return Fraction(c.streams.video[0].average_rate)


def test_track_numbers_a_movie_from_start_frame_and_records_fps(movie25, tmp_path):
    out = tmp_path / "t.json"
    done = monalisa("track", movie25, "--out", out, "--start-frame", 1001, "--end", 1002)
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["version"] == 2 and data["fps"] == 25.0  # was: version 1, no fps (smoothing assumed 24)
    assert [f["frame"] for f in data["frames"]] == [1001, 1002]  # was: 0, 1 (and --start-frame unknown)
    default = monalisa("track", movie25, "--out", tmp_path / "d.json", "--end", 0)
    assert default.returncode == 0, default.stderr
    assert [f["frame"] for f in json.loads((tmp_path / "d.json").read_text())["frames"]] == [0]


def test_movie_plate_renders_from_start_frame_with_a_preview_at_its_fps(movie25, small_still, tmp_path):
    out = tmp_path / "o" / "mona.####.exr"
    done = monalisa("render", "--still", small_still, "--plate", movie25, "--start-frame", 1001, "--frames",
                    "1001-1002", "--out", out, "--preview", "--threads", 1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.parent.glob("mona.*.exr")) == ["mona.1001.exr", "mona.1002.exr"]
    assert int(read_exr(out.parent / "mona.1001.exr")[2]["monalisa:frame"]) == 1001
    track = json.loads((out.parent / "mona.track.json").read_text())
    assert track["fps"] == 25.0 and track["frames"][0]["frame"] == 1001 and len(track["frames"]) == N
    assert _rate(out.parent / "mona.preview.mp4") == 25  # was 24 for a 25 fps plate


def test_start_frame_with_a_track_is_refused_first(small_still, short_track, tmp_path):
    done = monalisa("render", "--still", small_still, "--track", short_track, "--start-frame", 1001, "--frames", "0",
                    "--out", tmp_path / "o" / "m.####.exr")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and "a track already holds its frame numbers" in err[0]
    assert not (tmp_path / "o").exists()


def test_sequence_keeps_its_numbers_and_refuses_start_frame(small_still, tmp_path):
    import cv2

    from monalisa.nodes.media import iter_frames

    plate = tmp_path / "plate.####.png"
    for n, rgb in iter_frames(CLIP, end=1):
        cv2.imwrite(str(tmp_path / f"plate.{n + 1001:04d}.png"), rgb[..., ::-1])
    assert [n for n, _ in iter_frames(plate)] == [1001, 1002]
    done = monalisa("render", "--still", small_still, "--plate", plate, "--start-frame", 5, "--out",
                    tmp_path / "o" / "m.####.exr")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and "keeps its own frame numbers" in err[0], done.stderr
    assert not (tmp_path / "o").exists()


def test_smoothing_runs_at_the_tracks_fps(short_track, small_still):
    from monalisa.nodes.drive import drive
    from monalisa.nodes.media import read_still
    from monalisa.nodes.node import still_landmarks

    still_points = still_landmarks(read_still(small_still))
    track = trackfile.load(short_track)
    assert track.fps == 25.0  # tracked from the bundled 25 fps clip
    unknown = trackfile.load(short_track)
    unknown.fps = None
    at_track_rate = drive(track, still_points).points
    np.testing.assert_array_equal(at_track_rate, drive(unknown, still_points, fps=25.0).points)
    assert np.abs(at_track_rate - drive(unknown, still_points).points).max() > 0  # 24 fps: another filter
    slow = trackfile.load(short_track)
    slow.fps = 5.0  # every cutoff above Nyquist: the points pass unfiltered
    np.testing.assert_allclose(drive(slow, still_points).points, drive(slow, still_points, smooth=False).points,
                               atol=1e-3)


def test_exr_sequence_fps_from_its_header(tmp_path):
    """An EXR sequence has no container rate; the rate its frames' headers record (FramesPerSecond,
    as Nuke writes it) is the plate's fps, and the track records it."""
    import OpenImageIO as oiio

    from monalisa.nodes.media import iter_frames, probe
    from monalisa.nodes.track import track_plate

    for n, rgb in iter_frames(CLIP, end=1):
        spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.HALF)
        spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), (25, 1))
        out = oiio.ImageOutput.create("exr")
        path = str(tmp_path / f"plate.{n + 1001:04d}.exr")
        assert out.open(path, spec) and out.write_image((rgb / 255.0).astype(np.float32) ** 2.2)
        out.close()
    assert probe(tmp_path / "plate.####.exr").fps == 25.0
    assert track_plate(str(tmp_path / "plate.####.exr"), progress=False).fps == 25.0
    assert track_plate(str(tmp_path / "plate.####.exr"), progress=False, fps=24.0).fps == 24.0  # --fps wins
