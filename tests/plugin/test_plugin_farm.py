"""The OpenJD farm path, for real: openjd check / openjd run over chunks, determinism across
chunkings, a chunk killed mid-frame and re-run, a failing frame, and bad bundle input."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from plugin_shot import CLIP, FRAMES, MONALISA, env, frames_of, run

from monalisa.cli import main
from monalisa.nodes.writer import read_header

pytest.importorskip("openjd")
OPENJD = str(Path(MONALISA).with_name("openjd"))
TEMPLATE = Path(__file__).resolve().parents[2] / "plugin" / "farm" / "monalisa_render.yaml"


def bundle(shot, out, render, *extra) -> Path:
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out", str(out),
                 "--render", str(render), *map(str, extra)])
    assert code == 0
    return Path(out)


def openjd_run(bundle_dir, *extra) -> subprocess.CompletedProcess:
    return run(OPENJD, "run", bundle_dir / "template.yaml", "--job-param",
               f"file://{bundle_dir / 'openjd_parameters.json'}", *extra)


def test_template_passes_openjd_check():
    r = run(OPENJD, "check", TEMPLATE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passes validation" in r.stdout


def test_bundle_has_absolute_checked_paths(shot, tmp_path, monkeypatch):
    monkeypatch.chdir(shot.still.parent)
    b = bundle(shot, tmp_path / "b", "out/s.####.exr", "--chunk-size", 4)
    params = json.loads((b / "openjd_parameters.json").read_text())
    assert params["Still"] == str(shot.still) and params["Track"] == str(shot.track)
    assert params["Render"] == str(shot.still.parent / "out" / "s.####.exr")
    assert params["Frames"] == f"{FRAMES[0]}-{FRAMES[-1]}" and params["ChunkSize"] == 4
    values = json.loads((b / "parameter_values.yaml").read_text())  # JSON is YAML
    assert {v["name"]: v["value"] for v in values["parameterValues"]} == params
    r = run(OPENJD, "check", b / "template.yaml")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("case", ["missing still", "missing track", "range outside track", "both track and plate"])
def test_bundle_bad_input_is_one_line(shot, tmp_path, capsys, case):
    args = {"--still": str(shot.still), "--track": str(shot.track)}
    if case == "missing still":
        args["--still"] = str(tmp_path / "nope.png")
    elif case == "missing track":
        args["--track"] = str(tmp_path / "nope.json")
    elif case == "range outside track":
        args["--frames"] = f"{FRAMES[-1]}-{FRAMES[-1] + 3}"
    else:
        args["--plate"] = str(shot.still)
    code = main(["farm", "bundle", *[x for kv in args.items() for x in kv], "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("monalisa farm: error: ")
    expect = {"missing still": "nope.png does not exist", "missing track": "nope.json does not exist",
              "range outside track": f"frame {FRAMES[-1] + 1} is not in", "both track and plate": "not both"}[case]
    assert expect in err[0]
    assert not (tmp_path / "b").exists()


def test_openjd_run_in_three_chunks_is_byte_identical_to_one(shot, tmp_path):
    three = bundle(shot, tmp_path / "three", tmp_path / "r3" / "s.####.exr", "--chunk-size", 2)
    r3 = openjd_run(three)
    assert r3.returncode == 0, r3.stdout[-3000:]
    assert "Chunks run: 4" in r3.stdout  # the Track step's task (checks the track) + 3 chunks
    assert "openjd_status: using track" in r3.stdout
    # each chunk reported its frames and its progress to the worker
    for chunk in ("0-1", "2-3", "4-5"):
        assert f"openjd_status: rendering frames {chunk}" in r3.stdout
        assert f"openjd_status: frames {chunk} done" in r3.stdout
    assert len(re.findall(r"openjd_progress: 100\.0", r3.stdout)) >= 3
    chunked = frames_of(tmp_path / "r3")
    assert sorted(chunked) == [f"s.{f:04d}.exr" for f in FRAMES]
    # the same bytes as the whole range in one chunk (one `monalisa render` over all frames)
    assert chunked == frames_of(shot.reference)


def test_the_correction_weight_reaches_the_chunks(shot, tmp_path):
    """--correction goes through the bundle's parameters and the template to each chunk's render."""
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr", "--correction", "0.25")
    assert json.loads((b / "openjd_parameters.json").read_text())["Correction"] == "0.25"
    r = openjd_run(b, "--step", "Render", "--task-param", "Frame=4-5")
    assert r.returncode == 0, r.stdout[-3000:]
    header = read_header(tmp_path / "r" / "s.0005.exr")
    assert header["monalisa:correction"] == 0.25
    plain = read_header(shot.reference / "s.0005.exr")  # the default render: no identity, weight 0
    assert plain["monalisa:correction"] == 0.0


def test_openjd_run_without_chunking_extension(shot, tmp_path):
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr", "--chunk-size", 2, "--no-chunking")
    text = (b / "template.yaml").read_text()
    assert "TASK_CHUNKING" not in text.split("name:", 1)[1]
    assert all(f'- "{c}"' in text for c in ("0-1", "2-3", "4-5"))
    assert run(OPENJD, "check", b / "template.yaml").returncode == 0
    r = openjd_run(b, "--step", "Render", "--task-param", "Frame=4-5")
    assert r.returncode == 0, r.stdout[-3000:]
    assert sorted(frames_of(tmp_path / "r")) == ["s.0004.exr", "s.0005.exr"]
    assert frames_of(tmp_path / "r")["s.0004.exr"] == (shot.reference / "s.0004.exr").read_bytes()


def _kill_mid_write(cmd, out) -> list:
    """Start the chunk, SIGKILL its whole process group while a frame is being written; returns the
    temporaries seen at that moment ([] when the chunk finished first)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(),
                            start_new_session=True)
    seen, start = [], time.monotonic()
    try:
        while time.monotonic() - start < 120 and proc.poll() is None:
            seen = [n for n in os.listdir(out) if n.endswith(".tmp")]
            if seen:  # a frame is being written right now: kill the task as a farm would
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # the killed render was re-parented to init; wait until it is reaped (no longer a zombie), as it
    # is long before a farm re-queues the task (a zombie still counts as a live writer)
    for name in seen:
        pid = int(re.search(r"~(\d+)@", name).group(1))
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return seen


def test_chunk_killed_mid_frame_then_rerun(shot, tmp_path):
    out = tmp_path / "r"
    cmd = [MONALISA, "farm", "run-chunk", "--still", str(shot.still), "--track", str(shot.track),
           "--out", str(out / "s.####.exr"), "--frames", f"{FRAMES[0]}-{FRAMES[-1]}"]
    for _attempt in range(3):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        seen = _kill_mid_write(cmd, out)
        if seen:
            break
    assert seen, "the chunk finished three times before a frame write could be interrupted"
    reference = frames_of(shot.reference)
    left = frames_of(out)
    assert any(n.startswith(".") for n in left)  # the killed writer's temporary is still there
    for name, data in left.items():  # under a final name there is only ever a whole frame
        if not name.startswith("."):
            assert data == reference[name]
    r = run(*cmd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed" in r.stdout and "left by an interrupted render" in r.stdout
    assert "openjd_progress: 100.0" in r.stdout
    assert frames_of(out) == reference  # nothing partial or temporary left, identical frames


def test_failed_frame_fails_its_task(shot, tmp_path):
    out = tmp_path / "r"
    (out / "s.0001.exr").mkdir(parents=True)  # something monalisa did not write sits at frame 1
    b = bundle(shot, tmp_path / "b", out / "s.####.exr", "--chunk-size", 2)
    r = openjd_run(b)
    assert r.returncode != 0
    assert "Session ended with errors" in r.stdout
    fail = [ln for ln in r.stdout.splitlines() if "openjd_fail:" in ln]
    assert fail and "frames 0-1" in fail[0] and "s.0001.exr" in fail[0]
    assert "rendering frames 2-3" not in r.stdout  # the session stopped at the failing chunk


def test_plate_is_tracked_once_for_all_chunks(shot, tmp_path):
    import av
    import cv2

    plate = tmp_path / "plate"
    plate.mkdir()
    with av.open(str(CLIP)) as c:  # a short image-sequence plate: the clip's first frames as PNGs
        for i, frame in enumerate(c.decode(video=0)):
            cv2.imwrite(str(plate / f"p.{i + 1:04d}.png"), frame.to_ndarray(format="bgr24"))
            if i == 3:
                break
    out = tmp_path / "r"
    code = main(["farm", "bundle", "--still", str(shot.still), "--plate", str(plate / "p.####.png"),
                 "--out", str(tmp_path / "b"), "--render", str(out / "s.####.exr"), "--chunk-size", "2"])
    assert code == 0
    params = json.loads((tmp_path / "b" / "openjd_parameters.json").read_text())
    assert params["Frames"] == "1-4" and params["Track"] == str(out / "s.track.json")
    r = openjd_run(tmp_path / "b")
    assert r.returncode == 0, r.stdout[-3000:]
    assert r.stdout.count("openjd_status: tracking") == 1 and "Chunks run: 3" in r.stdout
    renders = [ln for ln in r.stdout.splitlines() if "monalisa farm: " in ln and " render " in ln]
    assert len(renders) == 2 and all(f"--track {out / 's.track.json'}" in ln and "--plate" not in ln for ln in renders)
    assert sorted(p.name for p in out.iterdir()) == ["s.0001.exr", "s.0002.exr", "s.0003.exr", "s.0004.exr",
                                                     "s.track.json"]
    track = (out / "s.track.json").read_bytes()
    again = openjd_run(tmp_path / "b", "--step", "Track")  # the step re-queued: the plate is not tracked again
    assert again.returncode == 0, again.stdout[-3000:]
    assert "already tracks" in again.stdout and (out / "s.track.json").read_bytes() == track
