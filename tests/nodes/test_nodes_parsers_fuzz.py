"""Fuzz the parsers that read what users and other tools write: the track readers (JSON, CSV, the
hosts' core), the frame-range parser and the pattern functions. Seeded inputs: mutated valid files,
type swaps, huge and non-finite numbers, deep nesting, truncation, byte flips. Only monalisa's own
error class may escape (a traceback of any other kind is a bug); what is accepted must be sane."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from monalisa.errors import MonalisaError
from monalisa.nodes import frames as F
from monalisa.nodes import trackfile, trackschema
from monalisa.plugin import core

N = 3000  # inputs per parser
SWAPS = [None, True, False, "x", "", "1001", 0, -1, 1.5, 2 ** 63, -(2 ** 63) - 1, 10 ** 401, 1e308, -1e308,
         float("inf"), float("-inf"), float("nan"), [], {}, [1, 2, 3], [[]], [640], [640, 480, 3], {"a": 1}]
CELLS = ["inf", "-inf", "nan", "NaN", "1e38", "-1e38", "1e400", "9" * 401, "", " ", "abc", "1,2", '"', "0x10",
         "1_000", "١٠٠١", "1e-400", "-0", "+5", "3.", ".5", "True"]


def _nodes(value, path=()):
    """Every (path, value) in a parsed JSON tree."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, path + (i,))


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


_BASES = []


def _base(rng):
    """A fresh copy of one of a few valid tracks (1 to 4 frames), parsed from its text (fast)."""
    if not _BASES:
        for n in range(1, 5):
            pts = np.random.default_rng(n).uniform(50, 400, (n, 68, 2)).astype(np.float32)
            t = trackfile.Track(np.arange(1001, 1001 + n), pts, (640, 480), provenance={"source": "p.mov"}, fps=25.0)
            text = json.dumps(trackfile.to_dict(t))
            _BASES.append((text, list(p for p, _ in _nodes(json.loads(text)))[1:]))
    text, paths = rng.choice(_BASES)
    return json.loads(text), paths


def _json_input(rng) -> str:
    d, paths = _base(rng)
    kind = rng.randrange(7)
    if kind <= 1:  # type swaps and odd numbers anywhere, one to three of them
        for path in sorted(rng.sample(paths, rng.randint(1, 3)), key=len, reverse=True):
            _set(d, path, rng.choice(SWAPS))
    elif kind == 2:  # a key removed
        dicts = [(p, v) for p, v in _nodes(d) if isinstance(v, dict) and v]
        p, v = rng.choice(dicts)
        v.pop(rng.choice(list(v)))
    elif kind == 3:  # deep nesting in place of a value
        _set(d, rng.choice(paths), "@DEEP@")
        depth = rng.choice([5, 900, 1100, 5000, 5000, 5000, 200_000])
        return json.dumps(d).replace('"@DEEP@"', "[" * depth + "]" * depth)
    elif kind == 4:  # list lengths changed
        lists = [(p, v) for p, v in _nodes(d) if isinstance(v, list) and v]
        p, v = rng.choice(lists)
        if rng.random() < 0.5:
            v.pop(rng.randrange(len(v)))
        else:
            v.append(rng.choice(v))
    text = json.dumps(d)
    if kind == 5:  # truncated
        return text[: rng.randrange(len(text))]
    if kind == 6:  # bytes flipped
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            chars[rng.randrange(len(chars))] = rng.choice('0123456789-.eE,[]{}":tnfalsuINxy ')
        return "".join(chars)
    return text


_HEADER = ["frame"] + [f"{a}{i}" for i in range(68) for a in "xy"]
_ROWS = [[str(1001 + f)] + [f"{50 + (37 * i + 11 * f) % 350}.{i % 10}" for i in range(136)] for f in range(3)]


def _csv_input(rng) -> str:
    rows = [list(_HEADER)] + [list(r) for r in _ROWS[: rng.randint(1, 3)]]
    kind = rng.randrange(5)
    if kind <= 1:
        for _ in range(rng.randint(1, 4)):
            r = rng.randrange(len(rows))
            rows[r][rng.randrange(len(rows[r]))] = rng.choice(CELLS)
    elif kind == 2:
        r = rng.randrange(len(rows))
        del rows[r][rng.randrange(len(rows[r])):]
    elif kind == 3:
        rows[rng.randrange(len(rows))][0] = "9" * rng.choice([10, 19, 20, 400, 400, 200_000])
    text = "\n".join(",".join(r) for r in rows) + "\n"
    if kind == 4:
        text = text[: rng.randrange(len(text))]
    return text


def _sizes(rng):
    return rng.choice([(640, 480), (640, 480), [640], (640, 480, 3), (0, 480), (10 ** 30, 5), (640.0, 480), "640",
                       None, (np.int64(640), np.int32(480))])


_MANY = ",".join(str(i) for i in range(0, 300_000, 2))  # 150,000 single frames


def _range_input(rng) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(rng.choice("0123456789-,:x \t") for _ in range(rng.randint(0, 24)))
    if kind == 1:
        a = rng.choice([0, 1, 1001, -5, 10 ** 8, 10 ** 9 - 1, 10 ** 9, 10 ** 14])
        b = a + rng.choice([0, 1, 99, 99_999, 100_000, 10 ** 9, -3])
        sep = rng.choice(["-", " - ", "--", ":", "x"])
        tail = rng.choice(["", "x2", ":3", "x0", ":-1", "x99999999999", ",1", " 5", ",,", "x"])
        return f"{a}{sep}{b}{tail}"
    if kind == 2:
        return rng.choice(["", " ", "nan", "inf", "1e3", "0x10", "١٠٠١", "1_000", "+5", "9" * 401, "1-" * 5000,
                           _MANY if rng.random() < 0.02 else "1,3,5"])
    text = ",".join(rng.choice(["1001-1100", "5", "7-9x2", "-3--1", "0-3 99999999"]) for _ in range(rng.randint(1, 4)))
    chars = list(text)
    for _ in range(rng.randint(0, 3)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice("0-9x: ,a"))
    return "".join(chars)


def _pattern_input(rng) -> str:
    token = rng.choice(["####", "#", "@@@@", "@", "%04d", "%d", "%4d", "%0d", "%010d", "%011d", "%99999999999d",
                        "%0100d", "#" * 17, "%", "%%d", "##.%d", ""])
    head = rng.choice(["", "/s/", "out/", "a#b/", "%d/"])
    name = rng.choice(["mona", "sh.010", "", "x@y", "v%"])
    tail = rng.choice([".exr", "", ".####.exr", ".%d", "_@"])
    return f"{head}{name}.{token}{tail}"


FRAMES = [0, 7, -5, 1001, 10 ** 9 - 1, 10 ** 9, 10 ** 14, 1.0, 1.5, float("nan"), float("inf"), "7", None, True,
          np.int64(12), np.float32(3.0), 10 ** 401]


def _run(call, counts):
    try:
        call()
        counts["accepted"] += 1
    except MonalisaError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        counts["refused"] += 1


def test_only_monalisa_errors_escape_the_parsers(tmp_path, capsys):
    rng = random.Random(20261202)
    counts = {name: {"accepted": 0, "refused": 0} for name in ("track JSON", "host core track", "track CSV",
                                                               "frame ranges", "patterns")}
    for i in range(N):
        path = tmp_path / f"t{i % 7}.json"
        path.write_text(_json_input(rng))
        _run(lambda: trackfile.load(path), counts["track JSON"])
        _run(lambda: core.track_frames(path), counts["host core track"])

        csv_path = tmp_path / f"t{i % 7}.csv"
        csv_path.write_text(_csv_input(rng), encoding="utf-8")
        size = _sizes(rng)
        _run(lambda: trackfile.import_csv(csv_path, size), counts["track CSV"])

        spec = _range_input(rng)

        def ranges():
            frames = F.parse_frames(spec)
            assert 0 < len(frames) <= F.MAX_FRAMES and all(isinstance(f, int) for f in frames)
            assert F.parse_frames(F.format_frames(frames)) == frames

        _run(ranges, counts["frame ranges"])

        pattern, frame = _pattern_input(rng), rng.choice(FRAMES)

        def patterns():
            F.has_pattern(pattern)
            F.sequence_stem(pattern)
            p = F.parse_pattern(pattern)
            assert 1 <= p.padding <= F.MAX_PADDING
            for style in ("printf", "hash"):
                assert F.parse_pattern(F.pattern_for(pattern, style)) == p
            name = F.frame_path(pattern, frame)
            assert p.frame_of(name.rsplit("/", 1)[-1]) == int(frame) and len(name) < len(pattern) + 20

        _run(patterns, counts["patterns"])
    for part in counts.values():
        assert part["accepted"] + part["refused"] == N
    assert min(c["refused"] for c in counts.values()) > N // 10  # the fuzz reaches the refusals
    assert counts["track JSON"]["accepted"] > 0 and counts["frame ranges"]["accepted"] > 0
    with capsys.disabled():
        print("\nfuzz (seeded):", ", ".join(f"{k}: {v['accepted'] + v['refused']} inputs, {v['refused']} refused "
                                             f"cleanly, {v['accepted']} accepted" for k, v in counts.items()))


@pytest.mark.parametrize("size", [(640, 480)])
def test_fuzzed_track_that_is_accepted_is_sane(tmp_path, size):
    """What the reader accepts, the arrays hold exactly: finite, in float32, frames as int64."""
    rng = random.Random(7)
    for i in range(300):
        path = tmp_path / "t.json"
        path.write_text(_json_input(rng))
        try:
            t = trackfile.load(path)
        except MonalisaError:
            continue
        assert t.points.dtype == np.float32 and np.isfinite(t.points).all() and t.frames.dtype == np.int64
        assert t.fps is None or (math.isfinite(t.fps) and t.fps > 0)
        assert trackschema.read(path).frames == t.frames.tolist()
