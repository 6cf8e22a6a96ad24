"""The crop convention and its inverse, on real OpenCV resizing."""

import cv2
import numpy as np
import pytest

from fkd.model.crop import (
    BOX_FRAMING,
    CONVENTION,
    CROP_SIZE,
    CropConvention,
    Square,
    apply_matrix,
    crop_face,
    flip_crop,
    similarity_to_mean,
    square_from_box,
    square_from_center,
    square_from_keypoints,
    square_from_landmarks,
    to_crop,
    to_frame,
    upright_crop,
)
from fkd.model.schema import DETECTOR_POINTS, FLIP_PAIRS, FLIP_PERMUTATION, INDEX, KAGGLE_MEAN, KEYPOINTS


@pytest.mark.parametrize("square", [Square(10, 20, 150), Square(-40, -7, 97), Square(300, 5, 61)])
def test_crop_inverse_round_trip_is_exact(square: Square) -> None:
    rng = np.random.default_rng(0)
    frame_pts = rng.uniform(-50, 500, size=(100, 2))
    back = to_frame(to_crop(frame_pts, square), square)
    assert np.abs(back - frame_pts).max() < 0.01


def test_crop_maps_a_marked_pixel_to_its_predicted_place() -> None:
    """A bright blob in the frame must appear in the crop where to_crop says it is."""
    frame = np.zeros((400, 500), np.uint8)
    cv2.circle(frame, (231, 187), 6, 255, -1)
    square = Square(150, 120, 192)  # 2x downscale
    crop = crop_face(frame, square)
    ys, xs = np.nonzero(crop > 0)
    w = crop[ys, xs].astype(float)
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    assert np.allclose(centroid, to_crop(np.array([231.0, 187.0]), square), atol=0.15)


def test_crop_pads_faces_at_the_frame_border_with_black() -> None:
    frame = np.full((100, 100), 200, np.uint8)
    crop = crop_face(frame, Square(-50, -50, 100))
    assert crop.shape == (CROP_SIZE, CROP_SIZE)
    assert crop[:40, :40].max() == 0 and crop[-40:, -40:].min() == 200


def test_a_caller_box_square_follows_the_calibrated_framing() -> None:
    sq = square_from_box((100, 100, 200, 200))
    assert abs(sq.side - BOX_FRAMING.side * 200) <= 1
    assert abs(sq.x0 + sq.side / 2 - (200 + BOX_FRAMING.shift_x * 200)) <= 1


def test_the_five_points_frame_a_face_as_its_keypoints_would() -> None:
    """The detector's five points at Kaggle's mean layout inside a square give that square back,
    moved and grown by the calibrated convention, exactly as written."""
    square = Square(37, 81, 240)
    five = to_frame(KAGGLE_MEAN[[INDEX[n] for n in DETECTOR_POINTS]], square)
    plain = square_from_landmarks(five, CropConvention(0.0, 0.0, 1.0))
    assert abs(plain.x0 - square.x0) <= 1 and abs(plain.y0 - square.y0) <= 1 and abs(plain.side - square.side) <= 1
    moved = square_from_landmarks(five, CropConvention(0.1, -0.2, 1.25))
    assert moved == square_from_center(plain.centre[0] + 0.1 * plain.side, plain.centre[1] - 0.2 * plain.side,
                                       1.25 * plain.side)
    shipped = square_from_landmarks(five)
    assert shipped.side == round(CONVENTION.side * plain.side) and shipped != plain


def test_square_from_keypoints_recovers_the_mean_layout() -> None:
    """Keypoints at Kaggle's mean layout, seen through some square, must give that square back."""
    square = Square(37, 81, 240)
    frame_pts = to_frame(KAGGLE_MEAN, square)
    got = square_from_keypoints(frame_pts)
    assert abs(got.x0 - square.x0) <= 1 and abs(got.y0 - square.y0) <= 1 and abs(got.side - square.side) <= 1


def test_flip_twice_is_identity_and_swaps_left_and_right() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (CROP_SIZE, CROP_SIZE), dtype=np.uint8)
    pts = KAGGLE_MEAN.copy()
    f_img, f_pts = flip_crop(image, pts)
    ff_img, ff_pts = flip_crop(f_img, f_pts)
    assert np.array_equal(ff_img, image) and np.allclose(ff_pts, pts)
    # after a flip the subject's left eye is where the right eye was, mirrored
    left, right = INDEX["left_eye_center"], INDEX["right_eye_center"]
    assert np.allclose(f_pts[left], [CROP_SIZE - 1 - pts[right, 0], pts[right, 1]])
    # mirrored mean layout is (nearly) the mean layout again: left points stay on the image's right
    assert (f_pts[[i for i, n in enumerate(KEYPOINTS) if n.startswith("left_")], 0] > 47.5).all()


def test_flip_pairs_cover_every_left_and_right_point_once() -> None:
    paired = {i for pair in FLIP_PAIRS for i in pair}
    sided = {i for i, n in enumerate(KEYPOINTS) if "left" in n or "right" in n}
    assert paired == sided
    assert all(FLIP_PERMUTATION[FLIP_PERMUTATION[i]] == i for i in range(len(KEYPOINTS)))
    for i, j in FLIP_PAIRS:
        assert KEYPOINTS[i].replace("left", "right") == KEYPOINTS[j]


# -- the shift convention, exactly: a sign, an axis or a unit that changes moves these squares ------------
def test_square_from_box_applies_shift_and_side_exactly() -> None:
    """Shifts are in box widths on both axes (shift_y too), positive is right and down, and the
    side is a multiple of the width: (100, 50, 200, 160) -> centre (220, 90), side 250."""
    from fkd.model.crop import BoxFraming

    conv = BoxFraming(shift_x=0.1, shift_y=-0.2, side=1.25)
    assert square_from_box((100, 50, 200, 160), conv) == Square(95, -35, 250)
    assert square_from_box((100, 50, 200, 160), BoxFraming(0.0, 0.0, 1.0)) == Square(100, 30, 200)


def test_shipped_box_framing_moves_a_large_box_as_calibrated() -> None:
    """On a 1000-px box the shipped shift (-0.002, -0.019) is 2 and 19 px: visible, not rounded away."""
    sq = square_from_box((0, 0, 1000, 1000))
    cx, cy = 500 + BOX_FRAMING.shift_x * 1000, 500 + BOX_FRAMING.shift_y * 1000
    side = round(BOX_FRAMING.side * 1000)
    assert sq == Square(round(cx - side / 2), round(cy - side / 2), side)
    assert sq.centre != (500.0, 500.0)  # the convention is not the plain box centre


@pytest.mark.parametrize("side", [150, 181, 200, 250, 300])
def test_crop_is_exact_to_a_hundredth_of_a_pixel_at_any_scale(side: int) -> None:
    """A smooth blob at a sub-pixel place lands where to_crop says: any shift between the
    labels and the image (the 300-W offset, bench/label_offset.py --by-scale) is not the crop's."""
    ys, xs = np.mgrid[0:600, 0:600]
    centre = np.array([300.3, 280.7])
    frame = 255 * np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * 6.0**2))
    square = Square(200, 180, side)
    crop = crop_face(frame.astype(np.float32), square).astype(np.float64)
    cy, cx = np.mgrid[0:96, 0:96]
    centroid = np.array([(crop * cx).sum() / crop.sum(), (crop * cy).sum() / crop.sum()])
    assert np.abs(centroid - to_crop(centre, square)).max() < 0.01


def _turned(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    """``points`` turned about the crop centre, scaled, then shifted: a tilted face in a frame."""
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - (CROP_SIZE - 1) / 2) @ rot.T + shift


@pytest.mark.parametrize("angle", [-35.0, 0.0, 20.0])
def test_upright_crop_puts_a_tilted_face_back_on_the_mean_layout(angle: float) -> None:
    """Bright dots where a face tilted by ``angle`` has its keypoints, in a photo at 2.6x the
    crop's scale: the upright crop must show each dot where Kaggle's mean layout has it."""
    frame_pts = _turned(KAGGLE_MEAN, angle, 2.6, (330.0, 260.0))
    frame = np.zeros((600, 700), np.uint8)
    for x, y in frame_pts:
        cv2.circle(frame, (int(round(x * 4)), int(round(y * 4))), 20, 255, -1, lineType=cv2.LINE_AA, shift=2)
    crop, matrix = upright_crop(frame, frame_pts)
    assert crop.shape == (CROP_SIZE, CROP_SIZE)
    assert np.allclose(apply_matrix(matrix, frame_pts), KAGGLE_MEAN, atol=1e-6)
    for kx, ky in KAGGLE_MEAN:  # the dot's centroid in a window around where it should be
        x0, y0 = int(kx) - 3, int(ky) - 3
        win = crop[y0:y0 + 8, x0:x0 + 8].astype(float)
        ys, xs = np.mgrid[y0:y0 + 8, x0:x0 + 8]
        centroid = np.array([(xs * win).sum(), (ys * win).sum()]) / win.sum()
        assert np.abs(centroid - (kx, ky)).max() < 0.35
    back = apply_matrix(np.linalg.inv(matrix), KAGGLE_MEAN)
    assert np.abs(back - frame_pts).max() < 1e-6


def test_similarity_to_mean_refuses_keypoints_on_one_spot() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        similarity_to_mean(np.full((15, 2), 40.0))
