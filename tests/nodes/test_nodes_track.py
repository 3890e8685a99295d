import cv2
import numpy as np
import pytest

from monalisa.cli import main
from monalisa.nodes import trackfile
from monalisa.nodes.detect import create_detector
from monalisa.nodes.landmarks import inter_ocular
from monalisa.nodes.media import read_image
from monalisa.nodes.track import fill, track_plate

NME_BOUND = 0.08  # dlib backend, mean over landmarks_gt, normalised by inter-ocular distance


def read_pts(path):
    lines = path.read_text().split("{")[1].split("}")[0].split()
    return np.array(lines, np.float64).reshape(68, 2) - 1.0  # .pts is 1-based


def test_fill_hold_and_interpolate():
    frames = np.arange(4)
    pts = np.zeros((4, 68, 2), np.float32)
    pts[0], pts[3] = 0, 3
    found = np.array([True, False, False, True])
    assert fill(frames, pts, found, "interpolate")[1, 0, 0] == pytest.approx(1.0)
    assert fill(frames, pts, found, "hold")[2, 0, 0] == 0


def test_two_faces_side_by_side_picks_chosen(shared_file, tmp_path):
    a = read_image(shared_file("portraits/liveportrait_s6.jpg"))
    b = read_image(shared_file("portraits/liveportrait_s5.jpg"))
    h = 256
    a = cv2.resize(a, (h * a.shape[1] // a.shape[0], h))
    b = cv2.resize(b, (h * b.shape[1] // b.shape[0], h))
    both = np.concatenate([a, b], axis=1)
    cv2.imwrite(str(tmp_path / "two.0001.png"), both[..., ::-1])
    tr = track_plate(tmp_path / "two.####.png", face="1")
    assert tr.points[0, :, 0].min() > a.shape[1] - 5
    tr = track_plate(tmp_path / "two.####.png", face="0")
    assert tr.points[0, :, 0].max() < a.shape[1] + 5
    tr = track_plate(tmp_path / "two.####.png", face=f"{a.shape[1] + b.shape[1] // 2},{h // 2}")
    assert tr.points[0, :, 0].min() > a.shape[1] - 5


def test_cli_tracks_real_clip(shared_file, tmp_path, capsys):
    clip = shared_file("clips/liveportrait_d0.mp4")
    out = tmp_path / "track.json"
    assert main(["track", str(clip), "--out", str(out), "--end", "9", "--smooth"]) == 0
    tr = trackfile.load(out)
    assert len(tr.frames) == 10 and tr.points.shape == (10, 68, 2)
    assert "10 frames" in capsys.readouterr().out


def test_cli_bad_plate_is_clean_error(tmp_path, capsys):
    assert main(["track", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "t.json")]) == 2
    assert "not found" in capsys.readouterr().err


def test_dlib_nme_on_ground_truth(shared_data):
    gt_dir = shared_data / "landmarks_gt"
    det = create_detector("dlib", upsample=1, threshold=-0.5)  # low threshold: einstein's face scores -0.22
    errors = []
    for pts_file in sorted(gt_dir.glob("*.pts")):
        img_file = next(p for p in gt_dir.glob(pts_file.stem + ".*") if p.suffix in (".jpg", ".png"))
        gt = read_pts(pts_file)
        faces = det.detect(read_image(img_file))
        assert faces, img_file
        pts = min(faces, key=lambda f: np.linalg.norm(f.points.mean(0) - gt.mean(0))).points  # the annotated face
        errors.append(np.linalg.norm(pts - gt, axis=1).mean() / inter_ocular(gt))
    assert errors and float(np.mean(errors)) < NME_BOUND


def test_face_lost_and_reacquired(tmp_path):
    """Frames 3-4 of a sequence are blank: the face is lost there, found again on frame 5; the gap
    is flagged and filled between the detections on either side."""
    from pathlib import Path

    from monalisa.nodes.media import iter_frames

    clip = Path(__file__).resolve().parents[2] / "assets" / "clips" / "liveportrait_d0.mp4"
    for n, rgb in iter_frames(clip, end=6):
        if n in (3, 4):
            rgb = np.full_like(rgb, 128)
        cv2.imwrite(str(tmp_path / f"plate.{n + 1001:04d}.png"), rgb[..., ::-1])
    tr = track_plate(tmp_path / "plate.####.png", progress=False, upsample=0)
    assert tr.frames.tolist() == list(range(1001, 1008))
    assert tr.filled.tolist() == [False, False, False, True, True, False, False]
    assert np.isnan(tr.confidence[3:5]).all() and np.isfinite(tr.confidence[5:]).all()
    # re-acquired on the face itself: near where it was before the gap, not on a stray box
    assert np.linalg.norm(tr.points[5].mean(0) - tr.points[2].mean(0)) < 0.1 * inter_ocular(tr.points[2])
    w = np.array([1 / 3, 2 / 3])[:, None, None]  # linear fill between frames 1003 and 1006
    np.testing.assert_allclose(tr.points[3:5], (1 - w) * tr.points[2] + w * tr.points[5], atol=1e-3)
