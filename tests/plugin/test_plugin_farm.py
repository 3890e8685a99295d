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
from monalisa.files import LEDGER
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


def _template(bundle_dir) -> dict:
    import yaml

    return yaml.safe_load((Path(bundle_dir) / "template.yaml").read_text())


def _step(doc, name) -> dict:
    return next(s for s in doc["steps"] if s["name"] == name)


def test_openjd_run_without_chunking_extension(shot, tmp_path):
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr", "--chunk-size", 2, "--no-chunking")
    plain = _template(b)
    assert "extensions" not in plain
    assert _step(plain, "Render")["parameterSpace"]["taskParameterDefinitions"] == [
        {"name": "Frame", "type": "STRING", "range": ["0-1", "2-3", "4-5"]}]
    # the same job as the chunked template, as data: only the extension and the task parameter differ
    chunked = _template(bundle(shot, tmp_path / "c", tmp_path / "r" / "s.####.exr", "--chunk-size", 2))
    assert chunked["extensions"] == ["TASK_CHUNKING"]
    for doc in (plain, chunked):
        doc.pop("extensions", None)
        del _step(doc, "Render")["parameterSpace"]
    assert plain == chunked
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
    assert sorted(p.name for p in out.iterdir()) == [LEDGER, "s.0001.exr", "s.0002.exr", "s.0003.exr", "s.0004.exr",
                                                     "s.track.json"]
    track = (out / "s.track.json").read_bytes()
    again = openjd_run(tmp_path / "b", "--step", "Track")  # the step re-queued: the plate is not tracked again
    assert again.returncode == 0, again.stdout[-3000:]
    assert "already tracks" in again.stdout and (out / "s.track.json").read_bytes() == track


def _child(*args, **environ) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env(**environ), timeout=300,
                          stdin=subprocess.DEVNULL)


def _one_fail_line(r) -> str:
    """The single openjd_fail line of a failed run-chunk; no traceback anywhere."""
    assert r.returncode != 0
    assert "Traceback" not in r.stdout + r.stderr and '  File "' not in r.stdout + r.stderr
    fails = [ln for ln in r.stdout.splitlines() if ln.startswith("openjd_fail: ")]
    assert len(fails) == 1, r.stdout
    return fails[0]


def test_run_chunk_bad_track_fails_in_one_openjd_fail_line(shot, tmp_path):
    """A track the render cannot use (image_size of one value): one openjd_fail line, no traceback."""
    data = json.loads(shot.track.read_text())
    data["image_size"] = [1]
    bad = tmp_path / "bad.track.json"
    bad.write_text(json.dumps(data))
    r = _child(MONALISA, "farm", "run-chunk", "--still", shot.still, "--track", bad,
               "--out", tmp_path / "r" / "s.####.exr", "--frames", "0-1")
    line = _one_fail_line(r)
    assert line.startswith("openjd_fail: frames 0-1: ") and len(line) > len("openjd_fail: frames 0-1: ") + 10
    assert not any((tmp_path / "r").glob("s.*.exr")) if (tmp_path / "r").exists() else True


def test_run_chunk_folds_a_crashing_render_into_its_fail_line(shot, tmp_path):
    """Whatever the render prints, a traceback reaches the task log as its last line only."""
    crash = tmp_path / "crashing-monalisa"
    crash.write_text("#!/bin/sh\necho 'monalisa render: starting'\n"
                     "exec python3 -c 'raise ValueError(\"not enough values to unpack\")'\n")
    crash.chmod(0o755)
    r = _child(MONALISA, "farm", "run-chunk", "--still", shot.still, "--track", shot.track,
               "--out", tmp_path / "r" / "s.####.exr", "--frames", "0-1", "--monalisa", crash)
    line = _one_fail_line(r)
    assert line == ("openjd_fail: frames 0-1: monalisa render crashed: ValueError: not enough values to unpack; "
                    "run the render command above for the traceback")
    assert "monalisa render: starting" in r.stdout  # the rest of the render's output still reaches the log


@pytest.mark.parametrize("case", ["missing still", "no frames", "bad frames"])
def test_run_chunk_bad_settings_fail_in_one_openjd_fail_line(shot, tmp_path, case):
    still, frames = shot.still, "0-1"
    if case == "missing still":
        still = tmp_path / "nope.png"
    elif case == "no frames":
        frames = ""
    else:
        frames = "3-x"
    r = _child(MONALISA, "farm", "run-chunk", "--still", still, "--track", shot.track,
               "--out", tmp_path / "r" / "s.####.exr", "--frames", frames)
    line = _one_fail_line(r)
    assert r.returncode == 2 and r.stderr == "" and r.stdout.splitlines() == [line]
    assert {"missing still": "nope.png does not exist", "no frames": "needs --frames",
            "bad frames": "3-x"}[case] in line
    assert not (tmp_path / "r").exists()


def test_gpu_job_requires_a_gpu_worker_and_never_falls_back(shot, tmp_path):
    cpu = _template(bundle(shot, tmp_path / "cpu", tmp_path / "r" / "s.####.exr"))
    assert "hostRequirements" not in _step(cpu, "Render")
    assert "--strict-device" not in _step(cpu, "Render")["script"]["actions"]["onRun"]["args"]
    b = bundle(shot, tmp_path / "gpu", tmp_path / "r" / "s.####.exr", "--device", "cuda")
    gpu = _template(b)
    render = _step(gpu, "Render")
    assert render["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    assert "hostRequirements" not in _step(gpu, "Track")  # tracking runs on any worker
    assert render["script"]["actions"]["onRun"]["args"][-1] == "--strict-device"
    device = next(p for p in gpu["parameterDefinitions"] if p["name"] == "Device")
    assert device["allowedValues"] == ["cuda"]  # the job cannot be switched to a device it does not require
    assert run(OPENJD, "check", b / "template.yaml").returncode == 0
    plain = bundle(shot, tmp_path / "gpu-plain", tmp_path / "r" / "s.####.exr", "--device", "cuda", "--no-chunking")
    assert _step(_template(plain), "Render")["hostRequirements"] == render["hostRequirements"]
    # on this CPU-only box the GPU chunk fails with the reason instead of rendering on the CPU
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA: the no-fallback case needs a CPU-only worker")
    r = openjd_run(b, "--step", "Render", "--task-param", "Frame=0-1")
    assert r.returncode != 0
    fail = [ln for ln in r.stdout.splitlines() if "openjd_fail:" in ln]
    assert fail and "CUDAExecutionProvider" in fail[0]
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("s.*.exr"))


@pytest.mark.parametrize("size", ["0", "1001", "-3"])
def test_chunk_size_is_bounded(shot, tmp_path, capsys, size):
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out",
                 str(tmp_path / "b"), "--chunk-size", size])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "1 to 1000" in err[0], err
    assert not (tmp_path / "b").exists()


def test_template_bounds_chunk_size_for_openjd_too(shot, tmp_path):
    import yaml

    doc = yaml.safe_load(TEMPLATE.read_text())
    param = next(p for p in doc["parameterDefinitions"] if p["name"] == "ChunkSize")
    assert (param["minValue"], param["maxValue"]) == (1, 1000)
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr")
    r = openjd_run(b, "--job-param", "ChunkSize=1001", "--step", "Track")
    assert r.returncode != 0 and "ChunkSize must be at most 1000" in r.stdout + r.stderr


def _openjd_chunks(template_path, params, tmp_path) -> list:
    """The Render step's tasks as openjd-model itself makes them from a template and its values."""
    import yaml
    from openjd.model import StepParameterSpaceIterator, create_job, decode_job_template, preprocess_job_parameters

    template = decode_job_template(template=yaml.safe_load(Path(template_path).read_text()),
                                   supported_extensions=["TASK_CHUNKING"])
    values = preprocess_job_parameters(job_template=template, job_template_dir=tmp_path, current_working_dir=tmp_path,
                                       job_parameter_values={k: str(v) for k, v in params.items()})
    job = create_job(job_template=template, job_parameter_values=values)
    space = next(s for s in job.steps if s.name == "Render").parameterSpace
    return [task["Frame"].value for task in StepParameterSpaceIterator(space=space)]


def test_chunk_ranges_are_the_chunks_openjd_makes(tmp_path):
    """The no-chunking variant's ranges are exactly OpenJD's CONTIGUOUS chunks (openjd-model's own iterator)."""
    import random

    from monalisa.plugin.farm.bundle import chunk_ranges, openjd_range

    rng = random.Random(17)
    cases = [(list(range(1001, 1011)), 4), (list(range(1, 101)), 7), ([1, 2, 3, 5, 6, 7, 8, 9, 20], 3)]
    cases += [(sorted(rng.sample(range(1, 200), rng.randint(1, 60))), rng.randint(1, 25)) for _ in range(60)]
    for frames, size in cases:
        params = {"Still": "/s.png", "Render": "/r/s.####.exr", "Frames": openjd_range(frames), "ChunkSize": size}
        assert chunk_ranges(frames, size) == _openjd_chunks(TEMPLATE, params, tmp_path), (frames, size)


def test_stepped_frames_reach_openjd_in_its_own_syntax(shot, tmp_path):
    """monalisa's "0-4x2" is not OpenJD's range syntax: the job's Frames lists the frames ("0,2,4")."""
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr", "--frames", "0-4x2", "--chunk-size", 2)
    params = json.loads((b / "openjd_parameters.json").read_text())
    assert params["Frames"] == "0,2,4"
    assert _openjd_chunks(b / "template.yaml", params, tmp_path) == ["0-0", "2-2", "4-4"]


def test_ten_frames_in_chunks_of_four_run_as_4_3_3(shot, tmp_path):
    """docs/farm.md's claim, run for real: openjd run over 10 frames in chunks of 4."""
    track = tmp_path / "ten.track.json"
    r = run(MONALISA, "track", CLIP, "--out", track, "--start", 0, "--end", 9)
    assert r.returncode == 0, r.stderr
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(track), "--out", str(tmp_path / "b"),
                 "--render", str(tmp_path / "r" / "s.####.exr"), "--chunk-size", "4"])
    assert code == 0
    r = openjd_run(tmp_path / "b", "--step", "Render")
    assert r.returncode == 0, r.stdout[-3000:]
    ran = re.findall(r"openjd_status: rendering frames (\d+-\d+)", r.stdout)
    assert ran == ["0-3", "4-6", "7-9"]  # balanced 4/3/3, not 4/4/2
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [f"s.{f:04d}.exr" for f in range(10)]
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(track), "--out", str(tmp_path / "p"),
                 "--render", str(tmp_path / "r" / "s.####.exr"), "--chunk-size", "4", "--no-chunking"])
    assert code == 0
    assert _step(_template(tmp_path / "p"), "Render")["parameterSpace"]["taskParameterDefinitions"][0]["range"] == ran


@pytest.mark.parametrize("case", ["a file", "under /proc", "read-only folder"])
def test_bundle_out_unwritable_is_one_line(shot, tmp_path, capsys, case):
    out = {"a file": tmp_path / "afile", "under /proc": Path("/proc/monalisa-bundle"),
           "read-only folder": tmp_path / "ro" / "b"}[case]
    if case == "a file":
        out.write_text("mine")
    if case == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder; the permission check needs another user")
        out.parent.mkdir()
        out.parent.chmod(0o555)
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("monalisa farm: error: ") and "--out" in err[0], err
    if case == "a file":
        assert out.read_text() == "mine"


def _users_folder(folder, with_template=True) -> dict:
    (folder / "renders").mkdir(parents=True)
    files = {"comp.nk": b"set cut_paste_input [stack 0]\n", "notes.txt": b"notes\n", "photo.jpg": b"\xff\xd8\xff",
             "renders/r.0001.exr": b"not really"}
    if with_template:
        files["template.yaml"] = b"my own template\n"
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


@pytest.mark.parametrize("overwrite", [False, True])
def test_bundle_never_swaps_a_users_folder_with_a_template_yaml(shot, tmp_path, capsys, overwrite):
    folder = tmp_path / "shot"
    files = _users_folder(folder)
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out", str(folder),
                 *(["--overwrite"] if overwrite else [])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "template.yaml" in err[0] and "not written by monalisa" in err[0]
    assert {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files


def test_bundle_overwrite_keeps_a_users_files(shot, tmp_path, capsys):
    folder = tmp_path / "shot"
    files = _users_folder(folder, with_template=False)
    args = ["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out", str(folder)]
    assert main(args) == 2  # other files there: refused without --overwrite
    assert main([*args, "--overwrite"]) == 0
    assert main([*args, "--overwrite", "--chunk-size", "2"]) == 0  # again: only the bundle's files replaced
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert json.loads((folder / "openjd_parameters.json").read_text())["ChunkSize"] == 2
    assert run(OPENJD, "check", folder / "template.yaml").returncode == 0


def test_bundle_rewrites_its_own_bundle(shot, tmp_path):
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr", "--chunk-size", 2)
    b = bundle(shot, tmp_path / "b", tmp_path / "r" / "s.####.exr", "--chunk-size", 3)  # no --overwrite needed
    assert json.loads((b / "openjd_parameters.json").read_text())["ChunkSize"] == 3


# ---------------------------------------------------------------- every render option on the farm

#: `monalisa render`'s options (argparse dests) that do not change the pixels, or are the job's own
#: (inputs, output, range, device: the bundle's other parameters)
NOT_PIXELS = {"still", "track", "plate", "out", "frames", "device", "strict_device", "batch", "threads",
              "overwrite", "preview", "run", "command"}
#: the render option -> its job parameter (start_frame: the Track step's, it numbers a movie plate)
PARAMETERS = {"identity": "Identity", "model": "Model", "correction": "Correction", "mouth": "Mouth",
              "mouth_model": "MouthModel", "precision": "Precision", "still_landmarks": "StillLandmarks",
              "colorspace": "Colorspace", "retarget": "Retarget", "neutral_frame": "NeutralFrame",
              "smooth": "Smooth", "smooth_strength": "SmoothStrength", "feather": "Feather",
              "start_frame": "StartFrame"}


def _render_parser():
    import argparse

    from monalisa.cli import render as render_cli

    sub = argparse.ArgumentParser().add_subparsers()
    render_cli.add_parser(sub)
    return next(iter(sub.choices.values()))


def test_every_pixel_option_of_render_is_a_typed_job_parameter():
    """A render option added without its job parameter fails here; defaults are the render's."""
    import yaml

    parser = _render_parser()
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert dests - NOT_PIXELS == set(PARAMETERS)
    doc = yaml.safe_load(TEMPLATE.read_text())
    params = {p["name"]: p for p in doc["parameterDefinitions"]}
    render_args = " ".join(_step(doc, "Render")["script"]["actions"]["onRun"]["args"])
    track_args = " ".join(_step(doc, "Track")["script"]["actions"]["onRun"]["args"])
    for dest, name in PARAMETERS.items():
        assert name in params, name
        flag = "--" + dest.replace("_", "-")
        used = f"{flag} {{{{Param.{name}}}}}"
        assert used in (track_args if dest == "start_frame" else render_args), used
    for name in ("Identity", "Model", "StillLandmarks", "MouthModel"):
        assert params[name]["type"] == "PATH" and params[name]["dataFlow"] == "IN"
    for name, choices in (("Retarget", ["relative", "absolute"]), ("Mouth", ["on", "off"]),
                          ("Smooth", ["on", "off"]), ("Precision", ["fp32", "fp16"])):
        assert params[name]["type"] == "STRING" and params[name]["allowedValues"] == choices, name
    for name, kind, lo, hi in (("SmoothStrength", "FLOAT", 0, 100), ("Feather", "FLOAT", 0, 10),
                               ("StartFrame", "INT", 0, 10 ** 9 - 1), ("Fps", "FLOAT", 0, 1000)):
        assert (params[name]["type"], params[name]["minValue"], params[name]["maxValue"]) == (kind, lo, hi), name
    defaults = parser.parse_args(["--still", "s", "--track", "t", "--out", "o.####.exr"])
    for dest in ("retarget", "smooth_strength", "feather", "mouth", "precision"):
        assert params[PARAMETERS[dest]]["default"] == getattr(defaults, dest), dest
    assert params["Smooth"]["default"] == ("on" if defaults.smooth else "off")


@pytest.fixture(scope="module")
def still_landmarks(shot, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("still") / "still.track.json"
    r = run(MONALISA, "track", shot.still, "--out", path)
    assert r.returncode == 0, r.stdout + r.stderr
    return path


def _headers(folder) -> dict:
    return {p.name: read_header(p) for p in sorted(Path(folder).glob("*.exr"))}


@pytest.mark.parametrize("case", ["plain warp", "mouth model"])
def test_farm_render_with_non_default_options_is_byte_identical_to_local(shot, still_landmarks, tmp_path, case):
    """The same options, as `monalisa render` here and as the bundle's job parameters through `openjd run`
    in two chunks: the same EXR bytes (pixels and monalisa:* headers)."""
    from monalisa.nodes.mouthmodel import bundled_path as default_mouth_model

    options = {"plain warp": ["--no-smooth", "--feather", "0.4", "--retarget", "absolute", "--neutral-frame", "2",
                              "--mouth", "off", "--still-landmarks", still_landmarks],
               "mouth model": ["--smooth-strength", "3.5", "--feather", "0.1", "--mouth-model",
                               default_mouth_model(), "--colorspace", "lin_rec709", "--neutral-frame", "4"]}[case]
    local = run(MONALISA, "render", "--still", shot.still, "--track", shot.track, "--frames", "1-4",
                "--out", tmp_path / "local" / "s.####.exr", *options)
    assert local.returncode == 0, local.stdout + local.stderr
    b = bundle(shot, tmp_path / "b", tmp_path / "farm" / "s.####.exr", "--frames", "1-4", "--chunk-size", 2, *options)
    params = json.loads((b / "openjd_parameters.json").read_text())
    if case == "plain warp":
        assert (params["Smooth"], params["Feather"], params["Retarget"], params["NeutralFrame"], params["Mouth"],
                params["StillLandmarks"]) == ("off", 0.4, "absolute", "2", "off", str(still_landmarks))
    else:
        assert (params["SmoothStrength"], params["MouthModel"], params["Colorspace"]) == (
            3.5, str(default_mouth_model()), "lin_rec709")
    r = openjd_run(b)
    assert r.returncode == 0, r.stdout[-3000:]
    assert re.findall(r"openjd_status: rendering frames (\d+-\d+)", r.stdout) == ["1-2", "3-4"]
    farm = {k: v for k, v in frames_of(tmp_path / "farm").items() if k.endswith(".exr")}
    assert sorted(farm) == [f"s.{f:04d}.exr" for f in range(1, 5)]
    assert farm == frames_of(tmp_path / "local")
    headers = _headers(tmp_path / "farm")
    assert headers == _headers(tmp_path / "local")
    first = headers["s.0001.exr"]
    if case == "plain warp":
        assert (first["monalisa:retarget"], first["monalisa:neutral_frame"], first["monalisa:mouth"]) == (
            "absolute", 2, 0.0)
    else:
        assert first["monalisa:mouth"] == 1.0 and first["monalisa:neutral_frame"] == 4
    # and they are not the default render's pixels: the options did reach the chunks
    assert farm["s.0001.exr"] != (shot.reference / "s.0001.exr").read_bytes()


@pytest.mark.parametrize("flag,value,message", [("--feather", "0", "matte feather '0' must be"),
                                                ("--mouth", "maybe", "mouth 'maybe' is unknown"),
                                                ("--precision", "int8", "precision 'int8' is unknown"),
                                                ("--neutral-frame", "9", "neutral frame 9 is not in"),
                                                ("--neutral-frame", "two", "neutral frame 'two' must be"),
                                                ("--smooth-strength", "0", "smoothing '0' must be"),
                                                ("--retarget", "sideways", "retarget 'sideways' is unknown"),
                                                ("--start-frame", "1001", "a track already holds its frame numbers"),
                                                ("--fps", "0", "fps '0' must be")])
def test_bundle_refuses_a_bad_render_option_in_one_line(shot, tmp_path, capsys, flag, value, message):
    code = main(["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out",
                 str(tmp_path / "b"), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "b").exists()


def test_movie_plate_with_start_frame_and_fps_renders_on_the_farm_as_here(shot, tmp_path):
    """A movie plate numbered from the comp's 1001 at 25 fps: the job's Track step tracks it as
    `monalisa track --start-frame 1001 --fps 25` does here, and the chunks render the same bytes."""
    import av

    plate = tmp_path / "plate.mp4"
    with av.open(str(CLIP)) as src, av.open(str(plate), "w") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "10"}
        for i, frame in enumerate(src.decode(video=0)):
            if i == 0:
                stream.width, stream.height = frame.width, frame.height
            image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            for packet in stream.encode(image):
                dst.mux(packet)
            if i == 3:
                break
        for packet in stream.encode():
            dst.mux(packet)
    options = ["--start-frame", "1001", "--fps", "25"]
    here = tmp_path / "here"
    r = run(MONALISA, "track", plate, "--out", here / "s.track.json", *options)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(MONALISA, "render", "--still", shot.still, "--track", here / "s.track.json", "--out", here / "s.####.exr")
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "farm"
    code = main(["farm", "bundle", "--still", str(shot.still), "--plate", str(plate), "--out", str(tmp_path / "b"),
                 "--render", str(out / "s.####.exr"), "--chunk-size", "2", *options])
    assert code == 0
    params = json.loads((tmp_path / "b" / "openjd_parameters.json").read_text())
    assert (params["Frames"], params["StartFrame"], params["Fps"]) == ("1001-1004", 1001, 25.0)
    r = openjd_run(tmp_path / "b")
    assert r.returncode == 0, r.stdout[-3000:]
    track = json.loads((out / "s.track.json").read_text())
    assert track["fps"] == 25 and track["frames"][0]["frame"] == 1001
    farm = {k: v for k, v in frames_of(out).items() if k.endswith(".exr")}
    assert sorted(farm) == [f"s.{f}.exr" for f in range(1001, 1005)]
    assert farm == {k: v for k, v in frames_of(here).items() if k.endswith(".exr")}
    again = openjd_run(tmp_path / "b", "--step", "Track")  # re-queued with the same numbers and rate: kept
    assert "already tracks" in again.stdout
    r = openjd_run(tmp_path / "b", "--step", "Track", "--job-param", "Fps=30")  # another rate: tracked again
    assert r.returncode == 0 and "openjd_status: tracking" in r.stdout, r.stdout[-3000:]
    assert json.loads((out / "s.track.json").read_text())["fps"] == 30


@pytest.fixture(scope="module")
def studio_ocio(tmp_path_factory) -> Path:
    """An OCIO config of its own: OCIO's built-in default with one more name, `studio plate` (sRGB)."""
    import PyOpenColorIO as OCIO

    config = OCIO.Config.CreateFromFile("ocio://default")
    space = config.getColorSpace("srgb_tx")
    space.addAlias("studio plate")
    config.addColorSpace(space)
    path = tmp_path_factory.mktemp("ocio") / "studio.ocio"
    path.write_text(config.serialize())
    return path


def test_the_bundles_ocio_config_is_the_chunks(shot, studio_ocio, tmp_path, monkeypatch):
    """A colour space named in the host's (here $OCIO's) config: the bundle carries the config as the
    job's OcioConfig and the chunks render with it, as a local render with that $OCIO does."""
    options = ["--colorspace", "studio plate", "--frames", "0-1"]
    local = subprocess.run([MONALISA, "render", "--still", str(shot.still), "--track", str(shot.track),
                            "--out", str(tmp_path / "local" / "s.####.exr"), *options], capture_output=True,
                           text=True, env=env(OCIO=str(studio_ocio)), stdin=subprocess.DEVNULL, timeout=300)
    assert local.returncode == 0, local.stdout + local.stderr
    monkeypatch.setenv("OCIO", str(studio_ocio))  # the environment the bundle is written in
    b = bundle(shot, tmp_path / "b", tmp_path / "farm" / "s.####.exr", *options)
    monkeypatch.delenv("OCIO")
    assert json.loads((b / "openjd_parameters.json").read_text())["OcioConfig"] == str(studio_ocio)
    r = openjd_run(b)  # the worker has no $OCIO
    assert r.returncode == 0, r.stdout[-3000:]
    assert frames_of(tmp_path / "farm") == frames_of(tmp_path / "local")
    # without the config the name means nothing on the worker: the chunk fails and says so
    r = openjd_run(b, "--job-param", "OcioConfig=", "--step", "Render", "--task-param", "Frame=0-1")
    fail = [ln for ln in r.stdout.splitlines() if "openjd_fail: " in ln]
    assert r.returncode != 0 and fail and "colour space 'studio plate' is not in the OCIO config" in fail[0]
    missing = main(["farm", "bundle", "--still", str(shot.still), "--track", str(shot.track), "--out",
                    str(tmp_path / "c"), "--ocio-config", str(tmp_path / "nope.ocio")])
    assert missing == 2 and not (tmp_path / "c").exists()
