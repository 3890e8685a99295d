"""One face-choice rule (README): the largest detected box, for fine-tuning stills and for the still at
render alike, so both pick the same face on one still."""

from pathlib import Path

import cv2
import numpy as np

from monalisa.nodes.detect import Face, create_detector, largest_face

PORTRAIT = Path(__file__).resolve().parents[2] / "assets" / "portraits" / "liveportrait_s3.jpg"


def test_the_largest_box_wins_over_the_higher_score():
    small_sure = Face((0.0, 0.0, 50.0, 50.0), 3.0, np.zeros((68, 2), np.float32))
    large_unsure = Face((100.0, 0.0, 200.0, 120.0), 0.1, np.ones((68, 2), np.float32))
    assert largest_face([small_sure, large_unsure]) is large_unsure
    assert largest_face([large_unsure, small_sure]) is large_unsure
    assert largest_face([]) is None


def test_finetune_stills_and_render_pick_the_same_face(tmp_path):
    """A still with two people (the portrait out of focus, and a sharp copy at 0.6x that dlib scores
    higher): fine-tuning's crops and the render's still landmarks both take the larger face."""
    from monalisa.nodes.facecrop import CropGeometry
    from monalisa.nodes.media import read_still
    from monalisa.nodes.node import still_landmarks
    from monalisa.nodes.stills import prepare_stills

    sharp = cv2.imread(str(PORTRAIT))
    small = cv2.resize(sharp, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    big = cv2.GaussianBlur(sharp, (0, 0), 5)
    canvas = np.full((big.shape[0], big.shape[1] + small.shape[1], 3), 128, np.uint8)
    canvas[:, :big.shape[1]] = big
    canvas[:small.shape[0], big.shape[1]:] = small
    path = tmp_path / "two_people.png"
    cv2.imwrite(str(path), canvas)

    faces = create_detector("dlib").detect(cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB))
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda f: f.box[0])  # the full-size portrait, the small copy
    assert right.score > left.score and largest_face(faces) is left

    tuned = prepare_stills([path], CropGeometry()).frame_points[0]
    rendered = still_landmarks(read_still(path))
    np.testing.assert_allclose(tuned, left.points, atol=1e-4)
    np.testing.assert_allclose(rendered, left.points, atol=1e-4)
