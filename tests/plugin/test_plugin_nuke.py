"""The Nuke node's entry functions (create, knobs, render, poll, cancel, bundle) against a stand-in of
the `nuke` module (tests/plugin/nuke_standin/nuke.py: exactly the calls the plug-in makes, signatures
as Nuke's Python API reference gives them). Renders are real: the monalisa command, real frames."""
from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

import cv2
import pytest

from plugin_shot import CLIP, MONALISA, REPO

STANDIN = Path(__file__).with_name("nuke_standin")


@pytest.fixture
def nk(monkeypatch):
    """(the stand-in nuke module, the plug-in module), both fresh."""
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.syspath_prepend(str(REPO / "plugin" / "nuke"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("nuke", "monalisa_nuke"):
        sys.modules.pop(name, None)
    nuke = importlib.import_module("nuke")
    plugin = importlib.import_module("monalisa_nuke")
    yield nuke, plugin
    for name in ("nuke", "monalisa_nuke"):
        sys.modules.pop(name, None)


def _comp(nuke, first, last, fps=25.0):
    root = nuke.root()
    root["first_frame"].setValue(first)
    root["last_frame"].setValue(last)
    root["fps"].setValue(fps)


def test_menu_and_node_layout(nk):
    nuke, plugin = nk
    plugin.install_menu()
    assert "create_node" in nuke.MENUS["Nodes"].items["monalisa"].items["Animate Portrait"]
    node = plugin.create_node()
    assert node.Class() == "Group" and node.name() == "MonalisaAnimate"
    assert isinstance(node["correction"], nuke.Double_Knob) and node["correction"].range == (0.0, 1.0)
    assert isinstance(node["use_correction"], nuke.Boolean_Knob) and node["use_correction"].value() is False
    assert node["device"].values() == ["cpu", "cuda"] and node["retarget"].values() == ["relative", "absolute"]
    assert node["colorspace"].values() == ["default", "scene_linear", "lin_rec709", "ACEScg", "srgb_tx"]
    assert isinstance(node["still_landmarks"], nuke.File_Knob) and node["smooth"].value() is True
    assert node["feather"].value() == 0.25 and node["smooth_strength"].value() == 1.0
    assert [n.name() for n in node._children if n.Class() == "Input"] == ["still", "plate"]
    with node:
        read = nuke.toNode(plugin.READ)
        assert read["on_error"].value() == "black"  # frames still to come are black, not an error
        assert nuke.toNode(plugin.WRITES["still"]).input(0).name() == "still"


def test_knobs_to_settings_take_the_comps_range_and_fps(nk):
    nuke, plugin = nk
    _comp(nuke, 1001, 1010, 25.0)
    node = plugin.create_node()
    s = plugin.settings(node)
    assert (s.frames, s.fps, s.correction, s.colorspace, s.smooth, s.retarget) == ("1001-1010", "25", "", "", "1",
                                                                                  "relative")
    assert s.start_frame == "1001"  # a movie in the plate knob starts where the comp starts
    node["use_correction"].setValue(True)
    node["correction"].setValue(0.5)
    node["colorspace"].setValue("ACEScg")
    node["use_frames"].setValue(True)
    node["frames"].setValue("1003-1004")
    node["use_fps"].setValue(True)
    node["fps"].setValue(30.0)
    node["smooth"].setValue(False)
    node["retarget"].setValue("absolute")
    node["use_start_frame"].setValue(True)
    node["start_frame"].setValue(1)
    s = plugin.settings(node)
    assert s.start_frame == "1"
    assert (s.frames, s.fps, s.correction, s.colorspace, s.smooth, s.retarget) == ("1003-1004", "30", "0.5", "ACEScg",
                                                                                  "0", "absolute")


def test_render_from_upstream_still_and_movie_plate(nk, shot, tmp_path):
    """A graded still and a movie plate from upstream: both written by the Group's Writes, the plate
    tracked at the comp's fps, the frames rendered in the background, progress and the Read live."""
    nuke, plugin = nk
    _comp(nuke, 1, 2, 25.0)
    node = plugin.create_node()
    grade = nuke.nodes.Grade(multiply=1.0)
    grade.setInput(0, nuke.nodes.Read(file=str(shot.still)))
    node.setInput(0, grade)
    node.setInput(1, nuke.nodes.Read(file=str(CLIP)))
    node["out"].setValue(str(tmp_path / "out" / "sh.####.exr"))
    node["executable"].setValue(MONALISA)
    job = plugin.render(node, wait=True)
    assert job is not None, nuke.STATE["messages"]
    assert job.poll()[2] == 0, job.log_path.read_text()
    assert nuke.pump() >= 2
    assert node["status"].value() == "done: 2 frames"
    assert sorted(p.name for p in (tmp_path / "out").glob("sh.*.exr")) == ["sh.0001.exr", "sh.0002.exr",
                                                                            "sh.still.exr"]
    assert sorted(p.name for p in (tmp_path / "out").glob("sh.plate.*.png")) == ["sh.plate.0001.png",
                                                                                 "sh.plate.0002.png"]
    assert job.settings.still == str(tmp_path / "out" / "sh.still.exr")
    assert job.settings.colorspace == "lin_rec709"  # the comp's working space, which the Write wrote
    assert job.settings.track == str(tmp_path / "out" / "sh.track.json")  # the plate, tracked first
    assert job.track_command[-2:] == ["--fps", "25"]  # the comp's rate
    task, = nuke.STATE["tasks"]
    assert task.progress[-1] == 100 and any("rendering" in m or "tracking" in m for m in task.messages)
    with node:
        read = nuke.toNode(plugin.READ)
        assert read["file"].value() == str(tmp_path / "out" / "sh.####.exr")
        assert (read["first"].value(), read["last"].value()) == (1, 2) and read["reload"].count >= 2


def test_an_upstream_read_is_used_by_its_file(nk, shot, tmp_path):
    nuke, plugin = nk
    _comp(nuke, 1, 2)
    frames = tmp_path / "plate"
    frames.mkdir()
    cap = cv2.VideoCapture(str(CLIP))
    for f in (1, 2):
        ok, bgr = cap.read()
        cv2.imwrite(str(frames / f"p.{f:04d}.png"), bgr)
    node = plugin.create_node()
    node.setInput(0, nuke.nodes.Read(file=str(shot.still)))
    node.setInput(1, nuke.nodes.Read(file=str(frames / "p.####.png")))
    node["out"].setValue(str(tmp_path / "out" / "sh.####.exr"))
    s = plugin.prepare_inputs(node, plugin.settings(node))
    assert s.still == str(shot.still) and s.plate == str(frames / "p.####.png")
    assert nuke.STATE["executed"] == []  # nothing written: the Reads' files are used as they are
    retimed = nuke.nodes.Read(file=str(frames / "p.####.png"), frame="frame+1")
    node.setInput(1, retimed)
    s = plugin.prepare_inputs(node, plugin.settings(node))
    assert s.plate == str(tmp_path / "out" / "sh.plate.####.png")  # a retimed Read is written as the comp sees it
    assert nuke.STATE["executed"] == [("MonalisaWritePlate", 1), ("MonalisaWritePlate", 2)]


def _wait(job, seconds=120):
    end = time.monotonic() + seconds
    while job.poll()[2] is None and time.monotonic() < end:
        time.sleep(0.1)
    return job.poll()[2]


def test_cancel_button_and_progress_cancel(nk, shot, tmp_path):
    nuke, plugin = nk
    _comp(nuke, 0, 5)
    node = plugin.create_node()
    node["still"].setValue(str(shot.still))
    node["track"].setValue(str(shot.track))
    node["executable"].setValue(MONALISA)
    node["out"].setValue(str(tmp_path / "a" / "s.####.exr"))
    job = plugin.render(node)
    node["cancel"].execute()  # the button, as Nuke runs it: nuke.thisNode() is the Group
    assert _wait(job) not in (None, 0) and job.cancelled
    time.sleep(1.0)
    nuke.pump()
    assert node["status"].value().startswith("cancelled at ") and job.poll()[0] < 6
    assert plugin._JOBS == {}
    node["out"].setValue(str(tmp_path / "b" / "s.####.exr"))
    nuke.STATE["cancel_progress"] = True  # the progress task's own cancel
    job = plugin.render(node)
    assert _wait(job) not in (None, 0) and job.cancelled


def test_bundle_and_bad_settings_are_one_message(nk, shot, tmp_path):
    nuke, plugin = nk
    _comp(nuke, 0, 5)
    node = plugin.create_node()
    node["executable"].setValue(MONALISA)
    node["render"].execute()
    assert nuke.STATE["messages"][-1].startswith("monalisa: no still given")
    node["still"].setValue(str(shot.still))
    node["track"].setValue(str(shot.track))
    nuke.STATE["filename"] = str(tmp_path / "bundle")
    node["bundle"].execute()
    assert nuke.STATE["messages"][-1] == f"monalisa: farm bundle written to {tmp_path / 'bundle'}"
    assert (tmp_path / "bundle" / "template.yaml").is_file()
    node["feather"].setValue(0.5)  # every knob reaches the job's parameters
    node["mouth"].setValue("off")
    node["bundle"].execute()
    assert nuke.STATE["messages"][-1] == f"monalisa: farm bundle written to {tmp_path / 'bundle'}"
    params = json.loads((tmp_path / "bundle" / "openjd_parameters.json").read_text())
    assert (params["Feather"], params["Mouth"], params["Retarget"]) == (0.5, "off", "relative")
    node["executable"].setValue(str(tmp_path / "nope" / "monalisa"))
    node["out"].setValue(str(tmp_path / "c" / "s.####.exr"))
    node["render"].execute()
    assert "monalisa executable" in nuke.STATE["messages"][-1] and "not found" in nuke.STATE["messages"][-1]
