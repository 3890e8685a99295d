import json

import numpy as np
import pytest

from monalisa.errors import TrackFileError
from monalisa.nodes import trackfile
from monalisa.nodes.trackfile import Track


def _track(n=5):
    rng = np.random.default_rng(1)
    pts = rng.uniform(100, 300, (n, 68, 2)).astype(np.float32)
    return Track(np.arange(1001, 1001 + n), pts, (640, 480), provenance={"backend": "test"})


def test_json_round_trip(tmp_path):
    t = _track()
    t.confidence[2] = 0.75
    t.filled[3] = True
    trackfile.save(t, tmp_path / "t.json")
    back = trackfile.load(tmp_path / "t.json")
    np.testing.assert_array_equal(back.frames, t.frames)
    np.testing.assert_allclose(back.points, t.points, atol=1e-4)
    assert back.image_size == (640, 480) and back.filled[3] and back.confidence[2] == pytest.approx(0.75)
    assert np.isnan(back.confidence[0]) and back.provenance == {"backend": "test"}


def test_csv_import(tmp_path):
    t = _track(3)
    lines = ["frame," + ",".join(f"x{i},y{i}" for i in range(68))]
    for n, p in zip(t.frames, t.points):
        lines.append(f"{n}," + ",".join(f"{v:.4f}" for v in p.reshape(-1)))
    (tmp_path / "t.csv").write_text("\n".join(lines))
    back = trackfile.import_csv(tmp_path / "t.csv", (640, 480))
    np.testing.assert_allclose(back.points, t.points, atol=1e-3)
    (tmp_path / "bad.csv").write_text("1001,1,2,3\n")
    with pytest.raises(TrackFileError, match="row 1 has 3 coordinate columns, expected 136"):
        trackfile.import_csv(tmp_path / "bad.csv", (640, 480))


def _write(tmp_path, mutate):
    d = trackfile.to_dict(_track())
    mutate(d)
    p = tmp_path / "t.json"
    p.write_text(json.dumps(d))  # NaN / Infinity written as JSON's NaN / Infinity tokens
    return p


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["frames"][1].update(points=d["frames"][1]["points"][:67]), "frame 1002 has 67 points of 2 values"),
    (lambda d: d["frames"][1].update(points=[[1.0, 2.0, 3.0]] * 68), "frame 1002 has 68 points of 3 values"),
    (lambda d: d["frames"][1].update(points=5), r"frame 1002: \"points\" is int 5"),
    (lambda d: d["frames"][1].update(points=[["a", "b"]] * 68), "frame 1002 has a coordinate that is not a number"),
    (lambda d: d["frames"][1]["points"][3].__setitem__(1, None), "frame 1002 has a coordinate that is not a number"),
    (lambda d: d["frames"][2]["points"][0].__setitem__(0, float("nan")), "frame 1003 has NaN/inf"),
    (lambda d: d["frames"][3]["points"][0].__setitem__(0, float("inf")), "frame 1004 has NaN/inf"),
    (lambda d: [e.update(frame=e["frame"] - 1003) for e in d["frames"]], "frame -2 is negative"),
    (lambda d: d["frames"][2].update(frame=1002), "frame 1002 appears twice"),
    (lambda d: d["frames"][2].update(frame=1000), "not in increasing order"),
    (lambda d: d["frames"][4]["points"][0].__setitem__(0, 5000.0), "frame 1005 has points far outside the 640x480"),
    (lambda d: d.update(version=9), "version 9 is not supported"),
    (lambda d: d.pop("format"), "not a monalisa track file"),
])
def test_malformed_track_errors(tmp_path, mutate, message):
    with pytest.raises(TrackFileError, match=message):
        trackfile.load(_write(tmp_path, mutate))


def test_frames_outside_plate_range(tmp_path):
    p = _write(tmp_path, lambda d: None)
    with pytest.raises(TrackFileError, match="frame 1005 is outside the plate's range 1001-1004"):
        trackfile.load(p, frame_range=(1001, 1004))


def test_not_json(tmp_path):
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(TrackFileError, match="not valid JSON"):
        trackfile.load(tmp_path / "x.json")
    (tmp_path / "bin.json").write_bytes(bytes(range(256)))
    with pytest.raises(TrackFileError, match="not valid JSON"):
        trackfile.load(tmp_path / "bin.json")
    with pytest.raises(TrackFileError, match="is a folder"):
        trackfile.load(tmp_path)


def test_csv_that_is_not_text_or_a_file(tmp_path):
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TrackFileError, match="not a text CSV"):
        trackfile.import_csv(tmp_path / "bin.csv", (640, 480))
    with pytest.raises(TrackFileError, match="is a folder"):
        trackfile.import_csv(tmp_path, (640, 480))
