"""A linear-light EXR plate sequence, as compositors render them, read and tracked."""
import json
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from monalisa.cli import main
from monalisa.nodes.detect import create_detector
from monalisa.nodes.media import iter_frames, probe, read_image

CLIP = Path(__file__).resolve().parents[2] / "assets" / "clips" / "liveportrait_d10.mp4"


def write_linear_exr(rgb, path):
    buf = oiio.ImageBuf(oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, oiio.FLOAT))
    buf.set_pixels(oiio.ROI(), (rgb / 255.0).astype(np.float32))
    lin = oiio.ImageBufAlgo.colorconvert(buf, "sRGB", "lin_rec709")
    assert lin.write(str(path), oiio.HALF), lin.geterror()


def test_exr_sequence_reads_back_as_srgb_and_tracks(tmp_path, capsys):
    frames = [rgb for n, rgb in iter_frames(CLIP, end=2)]
    for i, rgb in enumerate(frames):
        write_linear_exr(rgb, tmp_path / f"plate.{1001 + i:04d}.exr")
    pattern = str(tmp_path / "plate.####.exr")
    info = probe(pattern)
    assert (info.first, info.last, info.count, info.width) == (1001, 1003, 3, 256)
    back = read_image(tmp_path / "plate.1001.exr")
    # linear half-float EXR -> sRGB uint8: within 1 code value of the original frame
    assert np.abs(back.astype(int) - frames[0].astype(int)).max() <= 1

    assert main(["track", pattern, "--out", str(tmp_path / "track.json")]) == 0
    track = json.loads((tmp_path / "track.json").read_text())
    assert [f["frame"] for f in track["frames"]] == [1001, 1002, 1003]
    direct = create_detector("dlib").detect(frames[0])[0].points
    assert np.abs(np.array(track["frames"][0]["points"]) - direct).max() < 2.0
