"""Publishing with pyblish, for real: discovery, v001 then v002, a half-written version never
reused, and each bad render rejected by its own validator with a clear record."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from plugin_shot import FRAMES, MONALISA, env, frames_of

pyblish_api = pytest.importorskip("pyblish.api")

from monalisa.cli import main  # noqa: E402
from monalisa.nodes.writer import read_header  # noqa: E402
from monalisa.plugin import publish as lib  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugin" / "pyblish"
SHIPPED = {
    "CollectMonalisaRender", "CollectMonalisaModels", "ValidateFramesComplete", "ValidateFramesNonEmpty",
    "ValidateResolution", "ValidateMatte", "ValidateProvenance", "ValidateOnnxModel", "ExtractContactSheet",
    "ExtractPreviewMovie", "IntegrateVersion", "ValidateFramesReadable",
}


def publish(shot, render_dir, root, capsys, *extra):
    code = main(["publish", "--render", str(render_dir / "s.####.exr"), "--still", str(shot.still),
                 "--track", str(shot.track), "--to", str(root), "--name", "sh010", *map(str, extra)])
    out = capsys.readouterr()
    return code, out.out.strip().splitlines(), [ln for ln in out.err.strip().splitlines() if ln.strip()]


def test_discovery_through_pyblishpluginpath_finds_every_plugin(monkeypatch):
    monkeypatch.setenv("PYBLISHPLUGINPATH", str(PLUGIN_DIR))
    found = {p.__name__: p for p in pyblish_api.discover()}
    assert SHIPPED <= set(found)
    assert len(list(PLUGIN_DIR.glob("*.py"))) == len(SHIPPED)  # one plug-in per file
    orders = [found[n].order for n in ("CollectMonalisaRender", "ValidateFramesComplete", "ExtractContactSheet",
                                       "IntegrateVersion")]
    assert orders == sorted(orders) and orders[0] < 1 <= orders[1] < 2 <= orders[2] < 3 <= orders[3]
    monkeypatch.delenv("PYBLISHPLUGINPATH")
    assert SHIPPED <= {p.__name__ for p in lib.discover()}  # the driver finds them without the variable


def test_publish_v001_then_v002(shot, render_copy, tmp_path, capsys):
    import av

    root = tmp_path / "publish"
    (render_copy / "s.0002.exr").chmod(0o444)  # a read-only frame is hard-linked, its mode left alone
    code, out, err = publish(shot, render_copy, root, capsys)
    assert code == 0, err
    assert (render_copy / "s.0002.exr").stat().st_mode & 0o777 == 0o444
    v1 = root / "sh010" / "v001"
    assert out[-1] == str(v1)
    manifest = json.loads((v1 / "publish.json").read_text())
    assert manifest["version"] == 1 and manifest["frames"] == FRAMES
    assert manifest["provenance"]["monalisa:synthetic"] == 1
    for f in FRAMES:
        name = f"s.{f:04d}.exr"
        assert (v1 / "render" / name).read_bytes() == (shot.reference / name).read_bytes()
        assert f"render/{name}" in manifest["files"]
    assert {p.name for p in (v1 / "models").iterdir()} >= {"embedder.onnx", "warp_generator.onnx"}
    sheet, movie = v1 / "review" / "sh010.contact_sheet.png", v1 / "review" / "sh010.preview.mp4"
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with av.open(str(movie)) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(FRAMES)

    code, out, err = publish(shot, render_copy, root, capsys, "--comment", "second")
    assert code == 0, err
    assert out[-1] == str(root / "sh010" / "v002")
    assert json.loads((v1 / "publish.json").read_text()) == manifest  # v001 untouched
    assert sorted(p.name for p in (root / "sh010").iterdir()) == ["v001", "v002"]  # no temporaries left


def test_half_written_next_version_is_skipped_not_reused(shot, render_copy, tmp_path, capsys):
    root = tmp_path / "publish"
    half = root / "sh010" / "v001"
    (half / "render").mkdir(parents=True)
    (half / "render" / "s.0000.exr").write_bytes(b"partial")
    code, out, err = publish(shot, render_copy, root, capsys)
    assert code == 0, err
    assert out[-1] == str(root / "sh010" / "v002")
    assert (half / "render" / "s.0000.exr").read_bytes() == b"partial"  # left exactly as it was
    assert not (half / "publish.json").exists()


def _rewrite(path, drop_channel=None, attrs=None):
    """Rewrite an EXR frame in place, dropping a channel or changing header attributes."""
    import OpenImageIO as oiio

    buf = oiio.ImageBuf(str(path))
    spec = buf.spec()
    names = list(spec.channelnames)
    if drop_channel:
        keep = [n for n in names if n != drop_channel]
        buf = oiio.ImageBufAlgo.channels(buf, tuple(keep))
    for k, v in (attrs or {}).items():
        buf.specmod().attribute(k, v)
    assert buf.write(str(path), oiio.HALF), buf.geterror()


@pytest.mark.parametrize("defect,label,needle", [
    ("missing frame", "Frames complete", "1 of 6 frames missing: 3"),
    ("zero-byte frame", "Frames not empty", "zero-byte frame(s): 3"),
    ("missing matte", "Matte channel present", "have no 'matte' channel: 3"),
    ("mismatching provenance", "Provenance matches", "monalisa:model_sha256"),
    ("other resolution", "Resolution matches the still", "frame 3 is 64x"),
    ("truncated frame", "Frames read completely", "1 of 6 frame(s) cannot be read completely: 3 ("),
])
def test_bad_render_fails_its_own_validator(shot, render_copy, tmp_path, capsys, defect, label, needle):
    frame = render_copy / "s.0003.exr"
    if defect == "missing frame":
        frame.unlink()
    elif defect == "zero-byte frame":
        frame.write_bytes(b"")
    elif defect == "missing matte":
        _rewrite(frame, drop_channel="matte.A")
    elif defect == "mismatching provenance":
        _rewrite(frame, attrs={"monalisa:model_sha256": "0" * 64})
    elif defect == "truncated frame":  # a copy cut short: the header reads, the pixels do not
        frame.write_bytes(frame.read_bytes()[: frame.stat().st_size // 2])
    else:
        import OpenImageIO as oiio

        buf = oiio.ImageBuf(str(frame))
        small = oiio.ImageBufAlgo.resize(buf, roi=oiio.ROI(0, 64, 0, 64, 0, 1, 0, buf.nchannels))
        for a in buf.spec().extra_attribs:
            if a.name.startswith("monalisa:"):
                small.specmod().attribute(a.name, a.value)
        assert small.write(str(frame), oiio.HALF), small.geterror()
    root = tmp_path / "publish"
    code, out, err = publish(shot, render_copy, root, capsys)
    assert code == 2
    assert len(err) == 1, err  # exactly one validator failed: its own record, one line
    assert err[0].startswith(f"monalisa publish: validation failed: {label} [sh010]: ")
    assert needle in err[0]
    assert not (root / "sh010").exists() or not any((root / "sh010").glob("v*"))  # nothing published


def test_broken_onnx_model_fails_validation(shot, render_copy, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(lib.default_model_dir(), models)
    (models / "broken.onnx").write_bytes(b"not an onnx file")
    code, out, err = publish(shot, render_copy, tmp_path / "publish", capsys, "--model", models)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("monalisa publish: validation failed: ONNX model valid [model broken.onnx]")


def test_publish_bad_request_is_one_line(shot, tmp_path, capsys):
    code = main(["publish", "--render", str(tmp_path / "s.####.exr"), "--still", str(tmp_path / "nope.png"),
                 "--to", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope.png does not exist" in err[0]


def test_pick_spreads_frames():
    from monalisa.plugin.review import pick

    assert pick(range(100), 4) == [0, 33, 66, 99]
    assert pick([1, 2], 12) == [1, 2]
    assert np.all(np.diff(pick(range(1001, 1200), 12)) > 0)


def _publish_child(shot, render_dir, root, *extra, **environ) -> subprocess.CompletedProcess:
    cmd = [MONALISA, *[a for a in extra if a == "-v"], "publish", "--render", render_dir / "s.####.exr",
           "--still", shot.still, "--track", shot.track, "--to", root, "--name", "sh010",
           *[a for a in extra if a != "-v"]]
    return subprocess.run([str(a) for a in cmd], capture_output=True, text=True, env=env(**environ), timeout=300,
                          stdin=subprocess.DEVNULL)


def test_pyblish_chatter_only_with_verbose(shot, render_copy, tmp_path):
    quiet = _publish_child(shot, render_copy, tmp_path / "p")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""  # no pyblish INFO lines (nor anything else) on success
    assert quiet.stdout.splitlines()[-1] == str(tmp_path / "p" / "sh010" / "v001")
    verbose = _publish_child(shot, render_copy, tmp_path / "p", "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO pyblish.CollectMonalisaRender" in verbose.stderr


def test_collection_failure_ends_with_its_own_reason(shot, render_copy, tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    code, out, err = publish(shot, render_copy, tmp_path / "p", capsys, "--model", empty)
    assert code == 2
    # one line, the collector's own reason: no validator or integrator failing in its wake
    assert err == [f"monalisa publish: collection failed: Collect monalisa models: no .onnx files in {empty}; "
                   "give the exported model folder the render used (--model)"]
    assert not (tmp_path / "p" / "sh010").exists()


@pytest.mark.parametrize("fps", ["0", "-24", "nan", "inf", "1e9"])
def test_bad_fps_is_refused_with_exit_2(shot, render_copy, tmp_path, capsys, fps):
    code, out, err = publish(shot, render_copy, tmp_path / "p", capsys, "--fps", fps)
    assert code == 2 and len(err) == 1, err
    assert "frames per second" in err[0] and "--fps" in err[0]
    assert not (tmp_path / "p").exists()


def test_unwritable_root_is_refused_with_exit_2(shot, render_copy, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for root, needle in (("/proc/monalisa-publish", "cannot write in /proc"), (afile / "sub", "is a file")):
        code, out, err = publish(shot, render_copy, root, capsys)
        assert code == 2 and len(err) == 1, err
        assert needle in err[0] and "(--to)" in err[0]
    assert afile.read_text() == "x"


def test_multiline_oiio_error_is_one_line(shot, render_copy, tmp_path, capsys):
    still = tmp_path / "still.exr"  # an EXR cut inside its header: OpenImageIO reports four lines
    still.write_bytes((render_copy / "s.0000.exr").read_bytes()[:300])
    code = main(["publish", "--render", str(render_copy / "s.####.exr"), "--still", str(still),
                 "--to", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{still}: cannot be read as an image (EXR Error" in err[0] and err[0].count("EXR Error") >= 2


@pytest.mark.parametrize("fps,rate", [("25", Fraction(25)), ("23.976", Fraction(2997, 125)),
                                      ("23.976023976", Fraction(24000, 1001))])
def test_preview_movie_has_the_publish_fps_exactly(shot, render_copy, tmp_path, capsys, fps, rate):
    import av

    code, out, err = publish(shot, render_copy, tmp_path / "p", capsys, "--fps", fps)
    assert code == 0, err
    with av.open(str(Path(out[-1]) / "review" / "sh010.preview.mp4")) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == rate
        assert sum(1 for _ in c.decode(video=0)) == len(FRAMES)


KILL_POINTS = ("staged", "reserved", "filled", "renamed")


def _left(root, tmp) -> set:
    """What is left that a finished publish does not leave: hidden entries of ROOT/sh010, monalisa's in
    TMPDIR (other libraries keep their own files there)."""
    folder = root / "sh010"
    hidden = {p for p in folder.iterdir() if p.name.startswith(".")} if folder.is_dir() else set()
    return hidden | {p for p in tmp.iterdir() if "monalisa" in p.name}


def test_killed_publish_is_cleaned_up_by_the_rerun(shot, render_copy, tmp_path):
    """SIGKILL a real `monalisa publish` paused at each step of staging and integration; the next
    publish removes what it left (and says so), and every published version holds the render's bytes."""
    root, tmp = tmp_path / "publish", tmp_path / "tmp"
    tmp.mkdir()
    reference = frames_of(shot.reference)
    report = []
    for number, step in enumerate(KILL_POINTS, start=1):
        cmd = [str(a) for a in (MONALISA, "publish", "--render", render_copy / "s.####.exr", "--still", shot.still,
                                "--track", shot.track, "--to", root, "--name", "sh010")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=env(TMPDIR=str(tmp), MONALISA_PUBLISH_PAUSE=step), start_new_session=True)
        try:
            line = proc.stderr.readline()  # blocks until the publish pauses at the step
            assert line.strip() == f"monalisa publish: paused at {step}", line + proc.stderr.read()
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stderr.close()
        left = _left(root, tmp)
        names = sorted(p.name.split("~")[0] + ("~" if "~" in p.name else "") for p in left)
        v = f".v{number:03d}."
        expect = {"staged": [".monalisa-publish.~"],
                  "reserved": [".monalisa-publish.~", f"{v}reserved", f"{v}~"],
                  "filled": [".monalisa-publish.~", f"{v}reserved", f"{v}~"],
                  "renamed": [".monalisa-publish.~", f"{v}reserved"]}[step]
        assert names == sorted(expect), (step, names)
        r = _publish_child(shot, render_copy, root, TMPDIR=str(tmp))
        assert r.returncode == 0, r.stdout + r.stderr
        cleaned = {Path(ln.split("removed ", 1)[1].split(" (left by an interrupted publish)")[0])
                   for ln in r.stdout.splitlines() if ln.endswith("(left by an interrupted publish)")}
        assert cleaned == left, (step, cleaned, left)
        assert _left(root, tmp) == set()  # nothing hidden, nothing staged
        report.append((step, names, len(cleaned), r.stdout.splitlines()[-1]))
    versions = sorted(p.name for p in (root / "sh010").iterdir())
    # each re-run took the number its killed run had reserved, except after the rename: that kill
    # left a complete v004, so its re-run wrote v005
    assert versions == ["v001", "v002", "v003", "v004", "v005"], versions
    for name in versions:
        manifest = json.loads((root / "sh010" / name / "publish.json").read_text())
        assert manifest["frames"] == FRAMES
        assert frames_of(root / "sh010" / name / "render") == reference
    assert frames_of(render_copy) == reference  # the source frames (hard-linked into versions) untouched
    print("\nkill results:", *report, sep="\n  ")


def _preview_rate(version) -> Fraction:
    import av

    with av.open(str(Path(version) / "review" / "sh010.preview.mp4")) as c:
        return c.streams.video[0].average_rate


def test_preview_movie_plays_at_the_renders_fps_unless_told(shot, render_copy, tmp_path, capsys):
    """The frames record the plate's rate (monalisa:fps, from the track); publish plays the preview at
    it, --fps still wins, and frames that do not say give 24."""
    track_fps = json.loads(shot.track.read_text())["fps"]
    assert track_fps == 25  # the bundled clip's rate, which the track recorded
    assert read_header(render_copy / "s.0000.exr")["monalisa:fps"] == track_fps
    code, out, err = publish(shot, render_copy, tmp_path / "p", capsys)
    assert code == 0, err
    assert _preview_rate(out[-1]) == Fraction(25)
    code, out, err = publish(shot, render_copy, tmp_path / "p", capsys, "--fps", "30")
    assert code == 0, err
    assert _preview_rate(out[-1]) == Fraction(30)
    oiiotool = str(Path(MONALISA).with_name("oiiotool"))
    for path in render_copy.glob("*.exr"):  # frames rendered before monalisa:fps existed
        r = subprocess.run([oiiotool, str(path), "--eraseattrib", "monalisa:fps", "-o", str(path)],
                           capture_output=True, text=True, env=env())
        assert r.returncode == 0, r.stderr
    assert "monalisa:fps" not in read_header(render_copy / "s.0000.exr")
    code, out, err = publish(shot, render_copy, tmp_path / "old", capsys)
    assert code == 0, err
    assert _preview_rate(out[-1]) == Fraction(24)
