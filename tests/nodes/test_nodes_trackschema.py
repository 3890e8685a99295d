"""The one track reader (monalisa.nodes.trackschema): every malformed shape a user's tools can write
is one TrackFileError line naming the file, the frame and the field; older versions still read."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monalisa.errors import TrackFileError
from monalisa.nodes import trackfile, trackschema
from monalisa.nodes.trackfile import Track

REPO = Path(__file__).resolve().parents[2]


def _track(n=3, fps=25.0):
    pts = np.random.default_rng(1).uniform(100, 300, (n, 68, 2)).astype(np.float32)
    return Track(np.arange(1001, 1001 + n), pts, (640, 480), provenance={"source": "plate.mov"}, fps=fps)


def _text(tmp_path, text, name="t.json"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _json(tmp_path, mutate):
    d = trackfile.to_dict(_track())
    mutate(d)
    return _text(tmp_path, json.dumps(d))


def _point(d, frame_index, value, axis=0):
    d["frames"][frame_index]["points"][5][axis] = value


@pytest.mark.parametrize("mutate, needles", [
    (lambda d: d.update(image_size=[640]), ['"image_size" is a list of 1 items', "[width, height]"]),
    (lambda d: d.update(image_size=[640, 480, 3]), ['"image_size" is a list of 3 items']),
    (lambda d: d.update(image_size=[640.5, 480]), ['"image_size"']),
    (lambda d: d.update(image_size="640x480"), ['"image_size" is str']),
    (lambda d: d.update(provenance=["a"]), ['"provenance" is a list of 1 items', "expected an object"]),
    (lambda d: d.update(provenance="plate.mov"), ['"provenance" is str']),
    (lambda d: d.update(provenance=True), ['"provenance" is bool True']),
    (lambda d: _point(d, 1, 10 ** 400), ["frame 1002 has a coordinate out of range", '"points"[5]']),
    (lambda d: d["frames"][1].update(confidence=10 ** 400), ['frame 1002: "confidence"']),
    (lambda d: d["frames"][2].update(frame=2 ** 63), ['frames[2]: "frame" is int 9223372036854775808']),
    (lambda d: d["frames"][2].update(frame=float("inf")), ['frames[2]: "frame" is float inf']),
    (lambda d: d["frames"][0].update(frame="1001"), ['frames[0]: "frame" is str']),
    (lambda d: d["frames"][0].update(filled="no"), ['frame 1001: "filled" is str']),
    (lambda d: d["frames"][0].update(confidence=float("nan")), ['frame 1001: "confidence" is float nan']),
    (lambda d: d["frames"][0].update(points={"x": 1}), ['frame 1001: "points" is an object']),
    (lambda d: d["frames"][0].pop("points"), ['frame 1001: no "points"']),
    (lambda d: d["frames"].__setitem__(1, [1, 2]), ["frames[1] is a list of 2 items"]),
    (lambda d: d.update(frames={"1001": []}), ['"frames" is an object']),
    (lambda d: d.update(fps=0), ['"fps" is int 0']),
    (lambda d: d.update(fps="25"), ['"fps" is str']),
    (lambda d: d.update(version=True), ["track version bool True is not supported"]),
])
def test_malformed_shapes_are_one_line(tmp_path, mutate, needles):
    path = _json(tmp_path, mutate)
    with pytest.raises(TrackFileError) as err:
        trackfile.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize("text, needle", [
    ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
    ('{"format": "monalisa.track", "version": 2, "frames": [' + "[" * 200_000, "nested too deeply"),
    ('{"format": "monalisa.track", "version": 2, "image_size": [' + "9" * 5000 + ", 1]}", "not valid JSON"),
    ('{"format": "monalisa.track", "version": 2, "image_size": [640, 480], "frames": [{"frame": 1001, "po',
     "not valid JSON"),
])
def test_deep_huge_and_truncated_json(tmp_path, text, needle):
    with pytest.raises(TrackFileError, match=needle):
        trackfile.load(_text(tmp_path, text))


def _csv(tmp_path, cells=None, frame="1001"):
    row = [frame] + [f"{100 + i % 50}.5" for i in range(136)]
    for i, v in (cells or {}).items():
        row[i] = v
    return _text(tmp_path, "frame," + ",".join(f"x{i},y{i}" for i in range(68)) + "\n" + ",".join(row) + "\n",
                 "t.csv")


@pytest.mark.parametrize("kwargs, needle", [
    ({"frame": "inf"}, "row 1: the frame cell str 'inf' is not a whole frame number"),
    ({"frame": "1e38"}, "row 1: the frame cell str '1e38'"),
    ({"frame": "1001.5"}, "row 1: the frame cell"),
    ({"cells": {3: "inf"}}, "row 1 point[1]"),
    ({"cells": {3: "1e38"}}, "frame 1001 has a coordinate out of range"),
    ({"cells": {7: "abc"}}, "row 1 (frame 1001): column 8 holds str 'abc', not a number"),
    ({"cells": {7: "9" * 401}}, "column 8 holds"),
])
def test_csv_cells(tmp_path, kwargs, needle):
    with pytest.raises(TrackFileError) as err:
        trackfile.import_csv(_csv(tmp_path, **kwargs), (640, 480))
    assert needle in str(err.value) and str(err.value).startswith(str(tmp_path / "t.csv"))


def test_csv_image_size_and_truncation(tmp_path):
    good = _csv(tmp_path)
    assert trackfile.import_csv(good, (640, 480)).frames.tolist() == [1001]
    with pytest.raises(TrackFileError, match=r"\(given size\): \"image_size\" is a list of 3 items"):
        trackfile.import_csv(good, [640, 480, 3])
    good.write_text(good.read_text()[:-200])  # cut inside the row
    with pytest.raises(TrackFileError, match="row 1 has"):
        trackfile.import_csv(good, (640, 480))


def test_version_1_track_still_reads(tmp_path):
    """A track written before the file recorded its plate's fps (format version 1)."""
    d = trackfile.to_dict(_track())
    d["version"] = 1
    del d["fps"]
    back = trackfile.load(_text(tmp_path, json.dumps(d)))
    assert back.fps is None and back.frames.tolist() == [1001, 1002, 1003]
    np.testing.assert_allclose(back.points, _track().points, atol=1e-4)


def test_version_2_records_fps(tmp_path):
    trackfile.save(_track(fps=25.0), tmp_path / "t.json")
    d = json.loads((tmp_path / "t.json").read_text())
    assert d["version"] == 2 and d["fps"] == 25.0
    assert trackfile.load(tmp_path / "t.json").fps == 25.0


def test_is_track_is_the_reader(tmp_path):
    """`monalisa track --out` replaces a file only when the one reader reads it as a track (it was a
    substring search of the first 4 kB)."""
    trackfile.save(_track(), tmp_path / "good.json")
    assert trackschema.is_track(tmp_path / "good.json")
    lookalike = _text(tmp_path, '{"format": "monalisa.track", "notes": "my own file"}', "notes.json")
    assert not trackschema.is_track(lookalike) and not trackschema.is_track(tmp_path / "missing.json")


def test_host_core_reads_tracks_with_this_reader(tmp_path, host_core):
    """plugin/core.py, loaded by path in a Python without monalisa, reads tracks with nodes/trackschema.py."""
    trackfile.save(_track(), tmp_path / "good.json")
    bad = _json(tmp_path, lambda d: d.update(image_size=[640]))
    lines = host_core(
        "print(core._tracks.__file__)\n"
        f"print(core.track_frames({str(tmp_path / 'good.json')!r}))\n"
        "try:\n"
        f"    core.track_frames({str(bad)!r})\n"
        "except core.HostInputError as exc:\n"
        "    print(exc)\n")
    assert Path(lines[0]).resolve() == (REPO / "nodes" / "trackschema.py").resolve()
    assert lines[1] == "[1001, 1002, 1003]"
    assert '"image_size" is a list of 1 items' in lines[2]
