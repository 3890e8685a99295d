"""The host entry points: the host-agnostic core (tested for real, with a background render), the
Nuke files outside Nuke (one clear line), and the Blender add-on headless in the bpy venv."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from plugin_shot import CLIP, FRAMES, MONALISA, REPO, env, frames_of

from monalisa.plugin import core


class TestCore:
    def test_frames(self):
        assert core.parse_frames("1001-1003,1010") == [1001, 1002, 1003, 1010]
        assert core.parse_frames("5-5") == [5]
        assert core.format_frames([1003, 1001, 1002, 1010, 1011]) == "1001-1003,1010-1011"
        for bad in ("", "10-1", "a-b"):
            with pytest.raises(core.HostInputError):
                core.parse_frames(bad)

    def test_patterns(self):
        assert core.frame_path("/s/sh.####.exr", 7) == "/s/sh.0007.exr"
        assert core.frame_path("/s/sh.%05d.exr", 1001) == "/s/sh.01001.exr"
        assert core.frame_path("/s/sh.@@@@.exr", 1001) == "/s/sh.1001.exr"
        assert core.pattern_for("/s/sh.####.exr", "printf") == "/s/sh.%04d.exr"
        assert core.pattern_for("/s/sh.%04d.exr", "hash") == "/s/sh.####.exr"
        with pytest.raises(core.HostInputError, match="exactly one frame number token"):
            core.frame_path("/s/sh.exr", 1)

    def test_knobs_are_the_settings(self):
        assert [k[0] for k in core.KNOBS] == [f.name for f in fields(core.RenderSettings)]

    def test_check_settings_and_command(self, shot, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        s = core.RenderSettings.from_mapping({"still": str(shot.still), "track": str(shot.track), "out": "o/x.####.exr",
                                              "frames": "2-3", "device": "cpu", "unknown": 1})
        c = core.check_settings(s)
        assert c.out == str(tmp_path / "o" / "x.####.exr")
        cmd = core.render_command(c, executable=MONALISA)
        assert cmd[:2] == [MONALISA, "render"] and cmd[cmd.index("--frames") + 1] == "2-3"
        assert core.render_frames(c) == [2, 3]
        assert "--correction" not in cmd  # empty: the render's default weight
        half = core.render_command(core.check_settings(core.RenderSettings(**{**s.to_dict(), "correction": ".50"})))
        assert half[half.index("--correction") + 1] == "0.5"
        for change, message in (({"still": ""}, "no still"), ({"track": ""}, "neither"),
                                ({"correction": "2"}, "correction '2' must be a number from 0 to 1"),
                                ({"correction": "half"}, "correction 'half'"),
                                ({"device": "tpu"}, "device 'tpu'"), ({"out": "o/x.exr"}, "frame number token"),
                                ({"identity": "nope.onnx"}, "identity")):
            with pytest.raises(core.HostInputError, match=message):
                core.check_settings(core.RenderSettings(**{**s.to_dict(), **change}))

    def test_host_options_reach_the_command(self, shot, tmp_path):
        s = core.RenderSettings(still=str(shot.still), track=str(shot.track), out=str(tmp_path / "x.####.exr"),
                                still_landmarks=str(shot.track), colorspace="sRGB", retarget="absolute",
                                feather=".5", smooth_strength="2.0")
        cmd = core.render_command(core.check_settings(s), executable=MONALISA)
        for flag, value in (("--still-landmarks", str(shot.track)), ("--colorspace", "sRGB"),
                            ("--retarget", "absolute"), ("--feather", "0.5"), ("--smooth-strength", "2")):
            assert cmd[cmd.index(flag) + 1] == value
        off = core.render_command(core.check_settings(core.RenderSettings(**{**s.to_dict(), "smooth": "0"})),
                                  executable=MONALISA)
        assert "--no-smooth" in off and "--smooth-strength" not in off
        for change, message in (({"retarget": "sideways"}, "retarget 'sideways' is unknown"),
                                ({"feather": "-1"}, "matte feather '-1' must be"),
                                ({"smooth_strength": "0"}, "smoothing '0' must be"),
                                ({"fps": "fast"}, "fps 'fast' must be"),
                                ({"start_frame": "1.5"}, "movie start frame '1.5' must be a whole frame number"),
                                ({"still_landmarks": "nope.json"}, "still landmarks")):
            with pytest.raises(core.HostInputError, match=message):
                core.check_settings(core.RenderSettings(**{**s.to_dict(), **change}))
        # the farm bundle carries them all (and nothing unset): monalisa farm bundle spells them as render does
        more = core.check_settings(core.RenderSettings(**{**s.to_dict(), "neutral_frame": "3", "mouth": "off",
                                                          "mouth_model": str(shot.track), "precision": "fp16",
                                                          "feather": "0.1234567891"}))
        farm = core.bundle_command(more, tmp_path / "b", executable=MONALISA)
        local = core.render_command(more, executable=MONALISA)
        options = local[local.index("--still-landmarks"):local.index("--out")]
        assert options == farm[farm.index("--still-landmarks"):farm.index("--device")]
        assert options[options.index("--feather") + 1] == "0.1234567891"  # exact, not rounded
        for flag in ("--neutral-frame", "--mouth", "--mouth-model", "--precision"):
            assert flag in options
        plain = core.bundle_command(core.check_settings(core.RenderSettings(still=s.still, track=s.track, out=s.out)),
                                    tmp_path / "b", executable=MONALISA)
        assert plain[plain.index("--out") - 4:] == ["--device", "cpu", "--chunk-size", "10", "--out", str(tmp_path / "b")]
        assert not [a for a in plain if a in ("--feather", "--mouth", "--retarget", "--fps", "--start-frame",
                                              "--ocio-config")]
        hosts = core.bundle_command(more, tmp_path / "b", executable=MONALISA, ocio="/studio/config.ocio")
        assert hosts[hosts.index("--ocio-config") + 1] == "/studio/config.ocio"  # the host's colour space names

    def test_executable_is_never_the_host_binary(self, tmp_path, monkeypatch):
        host = tmp_path / "Nuke15.0"  # inside Nuke or Blender, sys.executable is the host's own binary
        host.write_text("")
        monkeypatch.setattr(sys, "executable", str(host))
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("MONALISA_EXECUTABLE", raising=False)
        with pytest.raises(core.HostInputError, match=r"no `monalisa` command found; set \$MONALISA_EXECUTABLE"):
            core.monalisa_command()
        monkeypatch.setenv("MONALISA_EXECUTABLE", MONALISA)
        assert core.monalisa_command() == [MONALISA]
        monkeypatch.setenv("MONALISA_EXECUTABLE", str(tmp_path / "missing"))
        with pytest.raises(core.HostInputError, match="missing' not found"):
            core.monalisa_command()

    def test_plate_job_tracks_with_the_hosts_fps_then_renders(self, shot, tmp_path, monkeypatch):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        s = core.RenderSettings(still=str(shot.still), plate=str(CLIP), out=str(tmp_path / "p" / "s.####.exr"),
                                frames="1001-1002", fps="25", start_frame="1000")
        job = core.RenderJob(s, executable=MONALISA)
        assert job.stage == "track" and job.track_command[-4:] == ["--fps", "25", "--start-frame", "1000"]
        assert job.poll()[2] is None
        assert job.wait(timeout=300) == 0, job.log_path.read_text()
        assert job.stage == "render" and job.poll() == (2, 2, 0)
        assert job.settings.track == str(tmp_path / "p" / "s.track.json") and not job.settings.plate
        track = json.loads(Path(job.settings.track).read_text())
        assert [f["frame"] for f in track["frames"]] == [1001, 1002]  # the movie numbered as the comp starts it
        assert track["fps"] == 25  # the host's rate, which smoothing uses

    def test_cancel_between_track_and_render_ends_the_job(self, shot, tmp_path, monkeypatch):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        s = core.RenderSettings(still=str(shot.still), plate=str(CLIP), out=str(tmp_path / "q" / "s.####.exr"),
                                frames="1-2")
        job = core.RenderJob(s, executable=MONALISA)
        assert job.process.wait(timeout=300) == 0  # the track step ended; the render has not started
        job.cancel()
        assert job.poll() == (0, 2, -15) and job.stage == "track" and job.wait(timeout=5) == -15

    def test_cancel_stops_the_render(self, shot, tmp_path, monkeypatch):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        s = core.RenderSettings(still=str(shot.still), track=str(shot.track), out=str(tmp_path / "c" / "s.####.exr"))
        job = core.RenderJob(s, executable=MONALISA)
        job.cancel()
        assert job.wait(timeout=60) != 0 and job.poll()[0] < job.poll()[1]

    def test_background_render_job(self, shot, tmp_path, monkeypatch):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        s = core.RenderSettings(still=str(shot.still), track=str(shot.track), out=str(tmp_path / "r" / "s.####.exr"),
                                frames="4-5")
        job = core.RenderJob(s, executable=MONALISA)
        assert job.wait(timeout=300) == 0, job.log_path.read_text()
        assert job.poll() == (2, 2, 0) and job.error() == ""
        rendered = frames_of(tmp_path / "r")
        for name in ("s.0004.exr", "s.0005.exr"):
            assert rendered[name] == (shot.reference / name).read_bytes()

    def test_run_bundle_reports_monalisa_error(self, shot, tmp_path):
        s = core.RenderSettings(still=str(shot.still), track=str(shot.track), frames="0-99")
        with pytest.raises(core.HostInputError, match="frame 6 is not in"):
            core.run_bundle(s, tmp_path / "b", executable=MONALISA)
        assert Path(core.run_bundle(core.RenderSettings(still=str(shot.still), track=str(shot.track)),
                                    tmp_path / "b", executable=MONALISA), "template.yaml").is_file()


def test_nuke_menu_outside_nuke_is_one_clear_line():
    r = subprocess.run([sys.executable, str(REPO / "plugin" / "nuke" / "menu.py")], capture_output=True, text=True,
                       env=env())
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "nuke module is not available" in lines[0] and "NUKE_PATH" in lines[0]


BPY_PYTHON = REPO / ".venv-bpy" / "bin" / "python"


def _blender_ext():
    """Blender's own extension tool (validate, install-files), shipped inside the bpy package."""
    found = sorted((REPO / ".venv-bpy").glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/"
                                             "blender_ext.py"))
    return found[-1] if found else None


@pytest.mark.skipif(not BPY_PYTHON.is_file(), reason="no .venv-bpy (bpy 5.0.1, numpy<2): see docs/farm.md")
def test_blender_extension_validates_and_copies_whole(tmp_path):
    zip_path = tmp_path / "monalisa.zip"
    r = subprocess.run([sys.executable, str(REPO / "plugin" / "blender" / "package.py"), str(zip_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ext = [str(BPY_PYTHON), str(_blender_ext())]
    r = subprocess.run(ext + ["validate", str(zip_path)], capture_output=True, text=True)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr  # Blender's manifest rules
    for version, ok in (("4.2.0", True), ("4.1.0", False)):  # 4.2 LTS is the oldest it installs on
        repo = tmp_path / f"repo{version}"
        repo.mkdir()
        r = subprocess.run(ext + ["install-files", str(zip_path), "--local-dir", str(repo), "--blender-version",
                                  version, "--python-version", "3.11.0", "--temp-prefix-and-suffix", ".~/~"],
                           capture_output=True, text=True)
        assert (repo / "monalisa" / "core.py").is_file() == ok, r.stdout + r.stderr
    folder = tmp_path / "addons" / "monalisa"  # the copy install: a folder with everything it needs
    r = subprocess.run([sys.executable, str(REPO / "plugin" / "blender" / "package.py"), "--folder", str(folder)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (tmp_path / "repo4.2.0" / "monalisa")
                                                              .iterdir())
    assert (folder / "core.py").read_bytes() == (REPO / "plugin" / "core.py").read_bytes()
    r = subprocess.run([str(BPY_PYTHON), "-c", f"import sys; sys.path.insert(0, {str(folder.parent)!r}); import bpy; "
                        "import monalisa; monalisa.register(); print(monalisa.operators.core.__file__)"],
                       capture_output=True, text=True, env={**env(), "PYTHONPATH": ""}, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith(str(folder / "core.py")), r.stdout + r.stderr


@pytest.mark.skipif(not BPY_PYTHON.is_file(), reason="no .venv-bpy (bpy 5.0.1, numpy<2): see docs/farm.md")
def test_blender_extension_renders_headless(shot, tmp_path):
    zip_path = tmp_path / "monalisa.zip"
    subprocess.run([sys.executable, str(REPO / "plugin" / "blender" / "package.py"), str(zip_path)], check=True)
    out = tmp_path / "bl" / "s.####.exr"
    r = subprocess.run([str(BPY_PYTHON), str(Path(__file__).with_name("blender_check.py")), str(zip_path),
                        str(shot.still), str(shot.track), str(out), MONALISA, str(FRAMES[0]), str(FRAMES[-1])],
                       capture_output=True, text=True, timeout=600,
                       env={**env(), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": "",
                            "BLENDER_USER_RESOURCES": str(tmp_path / "user")})
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("MONALISA_JSON ")]
    assert r.returncode == 0 and line, r.stdout[-3000:] + r.stderr[-3000:]
    got = json.loads(line[0].split(" ", 1)[1])
    assert got["installed"] == ["FINISHED"] and got["result"] == ["FINISHED"] and got["panel"]
    assert got["core"] == "monalisa_plugin_core"  # Blender's Python loaded the core packed in the extension
    assert got["core_file"].startswith(str(tmp_path / "user" / "extensions" / "user_default" / "monalisa"))
    assert got["undo"] == ["REGISTER", "UNDO"] and got["correction"] == ["FLOAT", "FACTOR", 0.0, 1.0]
    assert got["fps"] == "25" and got["ocio"].endswith("config.ocio")  # the scene's rate, Blender's OCIO config
    assert got["start_frame"] == str(FRAMES[0])  # a movie plate would start at the scene's first frame
    assert got["poll_while_rendering"] is False and got["poll_after"] is True
    assert {("Vector", "VECTOR"), ("forward", "VECTOR"), ("matte", "VALUE")} <= {tuple(x) for x in got["sockets"]}
    assert got["modal_answers"] == [["PASS_THROUGH"], ["FINISHED"]] and got["modal_frames"] == [2, 2]
    assert any(s and "frames (Esc cancels)" in s for s in got["statuses"]) and got["statuses"][-1] is None
    assert got["escape"] == ["CANCELLED"] and got["cancelled_done"][0] < got["cancelled_done"][1]
    strip, = got["strips"]  # the scene's frame range (set to the track's)
    assert strip["start"] == FRAMES[0] and strip["duration"] == len(FRAMES)
    assert strip["elements"] == [f"s.{f:04d}.exr" for f in FRAMES]
    # the sequencer shows the rendered frame: Blender's picture of it matches ours
    import cv2
    import numpy as np

    from monalisa.plugin.review import read_srgb8

    seen = cv2.cvtColor(cv2.imread(got["sequencer_png"]), cv2.COLOR_BGR2RGB).astype(np.float32)
    ours = read_srgb8(shot.reference / f"s.{got['sequencer_frame']:04d}.exr").astype(np.float32)
    assert seen.shape == ours.shape and list(seen.shape[1::-1]) == got["still_size"]
    assert np.corrcoef(seen.ravel(), ours.ravel())[0, 1] > 0.95 and np.abs(seen - ours).mean() < 8
    assert got["images"][0]["path"] == str(out.parent / "s.0000.exr")
    assert any("still" in m and "does not exist" in m for m in got["bad_result"])
    import OpenImageIO as oiio

    for f in FRAMES:  # the extension's frames are the CLI's pixels, named in Blender's colour spaces
        mine, cli = oiio.ImageBuf(str(out.parent / f"s.{f:04d}.exr")), oiio.ImageBuf(str(shot.reference / f"s.{f:04d}.exr"))
        assert np.array_equal(mine.get_pixels(), cli.get_pixels())
        assert mine.spec().getattribute("monalisa:colorspace") == "Linear Rec.709"  # Blender's name for lin_rec709
    assert "MONALISA_UNREGISTERED True" in r.stdout


@pytest.mark.skipif(not BPY_PYTHON.is_file(), reason="no .venv-bpy (bpy 5.0.1, numpy<2): see docs/farm.md")
def test_blenders_vector_blur_smears_our_vectors_the_way_they_point(tmp_path):
    """A white square moving right and up (8 px per frame) as monalisa writes it: Blender's Vector
    Blur, fed the frame's Vector output, smears it along the up-right diagonal (a y-down reading
    would smear it down-right)."""
    import numpy as np
    import OpenImageIO as oiio

    from monalisa.nodes.writer import write_frame

    rgb = np.zeros((64, 64, 3), np.float32)
    rgb[28:36, 28:36] = 1.0
    motion = np.zeros((64, 64, 2), np.float32)
    motion[..., 0], motion[..., 1] = 8.0, -8.0  # the render path's arrays: x right, rows down (-8: up)
    frame = tmp_path / "f.0001.exr"
    write_frame(frame, rgb, None, np.zeros((64, 64), np.float32), motion, {"monalisa:synthetic": 1})
    out = tmp_path / "blurred.exr"
    r = subprocess.run([str(BPY_PYTHON), str(Path(__file__).with_name("blender_vector_blur.py")), str(frame), str(out),
                        "64", "64"],
                       capture_output=True, text=True, timeout=300,
                       env={**env(), "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""})
    assert r.returncode == 0 and out.is_file(), r.stdout[-2000:] + r.stderr[-2000:]
    lum = oiio.ImageBuf(str(out)).get_pixels(oiio.FLOAT)[..., 0]
    assert lum[28:36, 28:36].max() < 0.99  # it blurred
    rows, cols = np.nonzero(lum > 0.02)
    weights = lum[rows, cols]
    cov = np.average((cols - np.average(cols, weights=weights)) * (rows - np.average(rows, weights=weights)),
                     weights=weights)
    assert cov < -1.0, cov  # further right = higher up (smaller row): the up-right diagonal
