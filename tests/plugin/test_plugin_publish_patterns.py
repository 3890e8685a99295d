"""Publish reads a render's frame pattern with the one frame grammar: a render written as
``s.%d.exr`` (unpadded numbers) publishes like ``s.####.exr``."""
from __future__ import annotations

import json
import shutil

import pytest

from plugin_shot import FRAMES

pytest.importorskip("pyblish.api")

from monalisa.cli import main  # noqa: E402


def test_publish_of_a_percent_d_render(shot, tmp_path, capsys):
    render = tmp_path / "render"
    render.mkdir()
    for f in FRAMES:  # the same frames, named as `monalisa render --out render/s.%d.exr` names them
        shutil.copy(shot.reference / f"s.{f:04d}.exr", render / f"s.{f}.exr")
    code = main(["publish", "--render", str(render / "s.%d.exr"), "--still", str(shot.still), "--track",
                 str(shot.track), "--to", str(tmp_path / "publish"), "--name", "sh010"])
    out = capsys.readouterr()
    assert code == 0, out.err  # was: "needs exactly one frame number token"
    v1 = tmp_path / "publish" / "sh010" / "v001"
    manifest = json.loads((v1 / "publish.json").read_text())
    assert manifest["frames"] == FRAMES
    for f in FRAMES:
        assert (v1 / "render" / f"s.{f}.exr").read_bytes() == (render / f"s.{f}.exr").read_bytes()
