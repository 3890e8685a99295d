"""Publishing with pyblish, for real: discovery, v001 then v002, a half-written version never
reused, and each bad render rejected by its own validator with a clear record."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from plugin_shot import FRAMES

pyblish_api = pytest.importorskip("pyblish.api")

from monalisa.cli import main  # noqa: E402
from monalisa.plugin import publish as lib  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugin" / "pyblish"
SHIPPED = {
    "CollectMonalisaRender", "CollectMonalisaModels", "ValidateFramesComplete", "ValidateFramesNonEmpty",
    "ValidateResolution", "ValidateMatte", "ValidateProvenance", "ValidateOnnxModel", "ExtractContactSheet",
    "ExtractPreviewMovie", "IntegrateVersion",
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
    code, out, err = publish(shot, render_copy, root, capsys)
    assert code == 0, err
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
])
def test_bad_render_fails_its_own_validator(shot, render_copy, tmp_path, capsys, defect, label, needle):
    frame = render_copy / "s.0003.exr"
    if defect == "missing frame":
        frame.unlink()
    elif defect == "zero-byte frame":
        frame.write_bytes(b"")
    elif defect == "missing matte":
        _rewrite(frame, drop_channel="matte")
    elif defect == "mismatching provenance":
        _rewrite(frame, attrs={"monalisa:model_sha256": "0" * 64})
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
