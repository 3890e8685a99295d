"""The one frame grammar (monalisa.nodes.frames): ranges and patterns read and written the same way
by render, media, the writer, the hosts' core and publish."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monalisa.errors import FrameError, InputError
from monalisa.nodes import frames as F
from monalisa.nodes.media import iter_frames, probe
from monalisa.nodes.writer import check_output, frame_path

REPO = Path(__file__).resolve().parents[2]


def test_ranges_read_and_written_back():
    assert F.parse_frames("1001-1004,1010") == [1001, 1002, 1003, 1004, 1010]
    assert F.parse_frames("1001-1010x2") == F.parse_frames("1001-1010:2") == [1001, 1003, 1005, 1007, 1009]
    assert F.parse_frames(" 7, 3 5-5 ") == [3, 5, 7]
    assert F.parse_frames("-3--1") == [-3, -2, -1]
    assert F.format_frames([1003, 1001, 1002, 1010, 1011]) == "1001-1003,1010-1011"
    assert F.format_frames(range(1001, 1101, 2)) == "1001-1099x2"
    assert F.format_frames([1, 3, 10]) == "1,3,10"
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames = sorted(set(rng.integers(-50, 200, rng.integers(1, 40)).tolist()))
        assert F.parse_frames(F.format_frames(frames)) == frames


def test_spaces_separate_ranges_and_never_join_numbers():
    assert F.parse_frames("0-3 99999999") == [0, 1, 2, 3, 99999999]  # was 0-399999999 (spaces deleted)
    with pytest.raises(FrameError, match="no spaces inside a range"):
        F.parse_frames("1001 - 1100")


@pytest.mark.parametrize("spec, needle", [
    ("0-99999999999999", "more than 9 digits"),
    ("0-99999999", "holds more than 100,000 frames"),
    ("1-60000,100001-160000", "holds more than 100,000 frames"),
    ("", "is empty"), ("10-1", "runs backwards"), ("a-b", "cannot read 'a-b'"), ("1-9x0", "step 0"),
    ("1" * 401, "more than 9 digits"), ("1-5x", "cannot read"), ("nan", "cannot read"),
])
def test_bad_ranges_are_one_line_before_allocating(spec, needle):
    with pytest.raises(FrameError, match=needle) as err:
        F.parse_frames(spec)
    assert "\n" not in str(err.value) and isinstance(err.value, InputError)


def test_patterns():
    assert F.frame_path("/s/sh.####.exr", 7) == "/s/sh.0007.exr"
    assert F.frame_path("/s/sh.%05d.exr", 1001) == "/s/sh.01001.exr"
    assert F.frame_path("/s/sh.@@@@.exr", 1001) == "/s/sh.1001.exr"
    assert F.frame_path("sh.%d.exr", 7) == "sh.7.exr"
    assert F.frame_path("sh.####.exr", -3) == "sh.-0003.exr"
    assert F.pattern_for("/s/sh.%d.exr", "hash") == "/s/sh.#.exr"
    assert F.pattern_for("/s/sh.####.exr", "printf") == "/s/sh.%04d.exr"
    assert F.pattern_for("/s/sh.#.exr", "printf") == "/s/sh.%d.exr"
    assert F.sequence_stem("/s/mona.####.exr") == "/s/mona"
    p = F.parse_pattern("sh.####.exr")
    assert [p.frame_of(n) for n in ("sh.0007.exr", "sh.12345.exr", "sh.-0003.exr", "sh.7.exr", "sh.00007.exr")] == \
        [7, 12345, -3, None, None]


@pytest.mark.parametrize("pattern, needle", [
    ("mona.%99999999999d.exr", "pad to at most 10"), ("mona.%0100d.exr", "padding of 100 digits"),
    ("mona.#################.exr", "padding of 17 digits"), ("mona.exr", "found 0"), ("m.%d.####.exr", "found 2"),
    ("m.%4d.exr", "pads with spaces"),
])
def test_bad_patterns(pattern, needle):
    with pytest.raises(FrameError, match=needle):
        F.parse_pattern(pattern)


def test_render_output_padding_is_bounded(tmp_path):
    with pytest.raises(FrameError, match="pad to at most 10"):
        check_output(tmp_path / "mona.%99999999999d.exr", [1, 2])  # was a MemoryError at the first frame


def test_percent_d_sequence_reads_as_it_is_written(tmp_path):
    """`%d` was accepted by the writer and refused by the plate reader."""
    import cv2

    pattern = tmp_path / "plate.%d.png"
    for n in (8, 9, 10, 11):
        cv2.imwrite(str(frame_path(pattern, n)), np.full((4, 6, 3), n, np.uint8))
    cv2.imwrite(str(tmp_path / "plate.0012.png"), np.zeros((4, 6, 3), np.uint8))  # another padding: not this sequence
    info = probe(pattern)
    assert (info.first, info.last, info.count) == (8, 11, 4)
    assert [(n, int(rgb[0, 0, 0])) for n, rgb in iter_frames(pattern)] == [(8, 8), (9, 9), (10, 10), (11, 11)]


def test_render_reads_host_stepped_ranges(tmp_path, capsys):
    """`1001-1100:2` was accepted by the hosts' core and refused by `monalisa render --frames`."""
    from monalisa.cli import main
    from monalisa.plugin import core

    assert core.parse_frames("1001-1100:2") == F.parse_frames("1001-1100:2")
    code = main(["render", "--still", str(tmp_path / "none.png"), "--track", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "o.####.exr"), "--frames", "1001-1100:2"])
    err = capsys.readouterr().err
    assert code == 2 and "--frames" not in err and "frame range" not in err  # the range read; the still is missing
    assert main(["render", "--still", str(tmp_path / "none.png"), "--track", str(tmp_path / "none.json"),
                 "--out", str(tmp_path / "o.####.exr"), "--frames", "0-3 99999999999"]) == 2
    assert "more than 9 digits" in capsys.readouterr().err


def test_host_core_loaded_by_path_runs_this_grammar(host_core):
    """Nuke/Blender load plugin/core.py by path in a Python without monalisa or numpy: it must run
    nodes/frames.py itself (not a copy)."""
    lines = host_core(
        "for name in ('numpy', 'monalisa'):\n"
        "    assert importlib.util.find_spec(name) is None, name\n"
        "print(core._frames.__file__)\n"
        "print(core.parse_frames('1001-1010:2 1020'))\n"
        "print(core.frame_path('/s/sh.%d.exr', 7))\n"
        "try:\n"
        "    core.parse_frames('0-99999999')\n"
        "except core.HostInputError as exc:\n"
        "    print(exc)\n")
    assert Path(lines[0]).resolve() == (REPO / "nodes" / "frames.py").resolve()
    assert lines[1:3] == ["[1001, 1003, 1005, 1007, 1009, 1020]", "/s/sh.7.exr"]
    assert "more than 100,000 frames" in lines[3]
