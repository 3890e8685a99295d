"""Numeric options are checked at parse time (issue 17 item 2): finite, in range, the range in the
message; one line, exit 2, no usage block, nothing written."""

from __future__ import annotations

import argparse

import pytest

from monalisa.cli import build_parser, main
from monalisa.cli.common import integer, number


def parsers():
    """(prog, parser) of every command and farm verb."""
    def walk(p):
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield p.prog, p
        for s in subs:
            for child in dict.fromkeys(s.choices.values()):
                yield from walk(child)
    return list(walk(build_parser()))


def test_every_numeric_option_has_a_ranged_type():
    plain = [(prog, a.option_strings) for prog, p in parsers() for a in p._actions if a.type in (int, float)]
    assert plain == []
    ranged = {a.type.__name__ for _, p in parsers() for a in p._actions if a.type is not None}
    assert {"integer", "number", "frame_number"} <= ranged


@pytest.mark.parametrize("argv, words", [
    (["render", "--threads", "-1"], ["--threads: -1 is out of range", "from 0 to 4096"]),
    (["render", "--threads", "2147483648"], ["--threads: 2147483648 is out of range"]),
    (["render", "--feather", "inf"], ["--feather: inf is not a finite number", "above 0 and at most 10"]),
    (["render", "--feather", "1e308"], ["--feather: 1e308 is out of range"]),
    (["render", "--feather", "nan"], ["--feather: nan is not a finite number"]),
    (["render", "--smooth-strength", "inf"], ["--smooth-strength: inf"]),
    (["render", "--batch", "nan"], ["--batch: 'nan' is not a whole number", "from 1 to 256"]),
    (["render", "--correction", "1.5"], ["--correction: 1.5 is out of range", "from 0 to 1"]),
    (["render", "--plate", "p.mov"], ["not allowed with argument --"]),
    (["train", "--threads", "2147483648"], ["--threads"]),
    (["train", "--device", "tpu"], ["--device: 'tpu'", "auto, cpu, cuda or cuda:N"]),
    (["train", "--seed", "-1"], ["--seed: -1 is out of range", "from 0 to 4294967295"]),
    (["train", "--batch", "nan"], ["--batch: 'nan'"]),
    (["finetune", "--threads", "0"], ["--threads: 0 is out of range", "from 1 to 4096"]),
    (["finetune", "--steady", "nan"], ["--steady: nan is not a finite number"]),
    (["finetune", "--steady", "inf"], ["--steady: inf"]),
    (["finetune", "--steps", "nan"], ["--steps: 'nan'"]),
    (["finetune", "--jitter", "nan"], ["--jitter: 'nan'", "from 0 to 64"]),
    (["evaluate", "--finetune-steady", "nan"], ["--finetune-steady: nan"]),
    (["evaluate", "--k", "0"], ["--k: 0 is out of range", "from 1 to 32"]),
    (["track", "--fps", "inf"], ["--fps: inf"]),
    (["track", "--start", "99999999999999"], ["--start: 99999999999999 is out of range", "to 999999999"]),
    (["render", "--neutral-frame", "1e3"], ["--neutral-frame: '1e3' is not a whole number"]),
    (["prepare", "--size", "100000"], ["--size: 100000 is out of range", "from 16 to 4096"]),
    (["prepare", "--size", "nan"], ["--size: 'nan'"]),
    (["export", "--opset", "nan"], ["--opset: 'nan'", "from 17"]),
    (["publish", "--fps", "0"], ["--fps: 0 is out of range", "above 0"]),
    (["farm", "bundle", "--chunk-size", "nan"], ["--chunk-size: 'nan'"]),
])
def test_a_bad_number_is_one_line(argv, words, tmp_path, capsys):
    base = {"render": ["--still", "s.png", "--track", "t.json", "--out", str(tmp_path / "o" / "m.####.exr")],
            "train": ["--data", str(tmp_path / "d"), "--out", str(tmp_path / "run")],
            "finetune": ["ckpt", "--out", str(tmp_path / "pack")],
            "evaluate": ["clip.mp4", "--out", str(tmp_path / "eval")],
            "track": ["plate.mov", "--out", str(tmp_path / "t.json"), "--smooth"],
            "prepare": ["clip.mp4", "--out", str(tmp_path / "data")],
            "export": ["ckpt", "--out", str(tmp_path / "onnx")],
            "publish": ["--render", "r.####.exr", "--still", "s.png", "--to", str(tmp_path / "pub")],
            "farm": ["--out", str(tmp_path / "bundle")]}[argv[0]]
    assert main([*argv, *base]) == 2
    err = capsys.readouterr().err
    command = " ".join(argv[:2] if argv[0] == "farm" else argv[:1])
    assert err.count("\n") == 1 and err.startswith(f"monalisa {command}: error: argument "), err
    assert "usage:" not in err and f"(see monalisa {command} --help)" in err
    for w in words:
        assert w in err, err
    assert list(tmp_path.iterdir()) == []


def test_the_types_accept_their_range():
    assert integer(0, 4)("4") == 4 and integer(1)(" 7 ") == 7
    assert number(0.0, 1.0)("0") == 0.0 and number(0.0, 10.0, lo_open=True)("1e-3") == 0.001
    for parse, bad in ((integer(0, 4), "5"), (integer(0, 4), "1.5"), (number(0.0, 1.0), "-inf"),
                       (number(0.0, 10.0, lo_open=True), "0")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)
