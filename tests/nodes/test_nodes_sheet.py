import cv2
import numpy as np
import pytest

from monalisa.errors import ShapeError
from monalisa.nodes.sheet import contact_sheet, sheet_image, write_contact_sheet


def test_sheet_places_tiles_in_rows_and_round_trips_as_png(tmp_path):
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((2, 6), 7, np.uint8)
    rows = [[red, red], [grey]]
    img = sheet_image(rows)
    assert img.shape == (6, 8, 3)
    assert (img[:4, :8, 0] == 255).all() and (img[:4, :8, 1:] == 0).all()
    assert (img[4:6, :6] == 7).all() and (img[4:6, 6:] == 0).all()
    path = tmp_path / "sheet.png"
    write_contact_sheet(path, rows)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, img)
    assert contact_sheet(rows) == path.read_bytes()


def test_sheet_refuses_bad_tiles():
    with pytest.raises(ShapeError):
        sheet_image([[np.zeros((4, 4, 4), np.uint8)]])
    with pytest.raises(ShapeError):
        sheet_image([])
    with pytest.raises(ShapeError, match="uint8"):
        sheet_image([[np.zeros((4, 4, 3), np.float32)]])
