import numpy as np
import pytest

from monalisa.errors import MediaError
from monalisa.nodes.detect import create_detector
from monalisa.nodes.landmarks import inter_ocular
from monalisa.nodes.media import iter_frames, probe, read_image


def test_bad_image_is_media_error(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MediaError, match="bad.png"):
        read_image(bad)
    with pytest.raises(MediaError, match="not found"):
        read_image(tmp_path / "missing.png")


def test_sequence_probe_and_frames(tmp_path):
    import cv2
    for n in (1001, 1002, 1004):
        cv2.imwrite(str(tmp_path / f"plate.{n:04d}.png"), np.full((8, 10, 3), n % 256, np.uint8))
    info = probe(tmp_path / "plate.####.png")
    assert (info.width, info.height, info.first, info.last, info.count) == (10, 8, 1001, 1004, 3)
    frames = list(iter_frames(tmp_path / "plate.%04d.png", start=1002))
    assert [n for n, _ in frames] == [1002, 1004]
    assert frames[0][1].shape == (8, 10, 3) and frames[0][1][0, 0, 0] == 1002 % 256


def test_dlib_detects_real_portrait(shared_file):
    img = read_image(shared_file("portraits/liveportrait_s6.jpg"))
    faces = create_detector("dlib").detect(img)
    assert faces
    f = faces[0]
    assert f.points.shape == (68, 2)
    x0, y0, x1, y1 = f.box
    assert inter_ocular(f.points) > 0.3 * (x1 - x0)


def test_fan_without_weights_is_one_line_error(monkeypatch, tmp_path):
    import torch
    from monalisa.errors import BackendUnavailableError
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="place 2DFAN4-11f355bf06.pth.tar at"):
        create_detector("face-alignment")
