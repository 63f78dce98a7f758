"""Keypoint alignment (duplicates.alignment) on known answers: a real photo's edits are copies,
frames of a burst, a quarter and another photo are not, and a flat picture cannot be told.

The photos are scikit-image's samples; every edit is made here, so each answer is known."""
import numpy as np
import pytest
from PIL import Image

from demo.build_demo import package_file
from demo.edits import brighten_30, crop_80, flip, greyscale, resize_25, rotate_5, rotate_90, text_overlay
from duplicates.alignment import APART, COPY, MAX_TURN, UNKNOWN, Aligner, fit, verdict
from features.keypoints import of_pixels


def photo(name):
    with Image.open(package_file("skimage", f"data/{name}")) as image:
        return image.convert("RGB").resize((640, 480), Image.LANCZOS)


def keypoints(image, mirror=False):
    """What features.keypoints.of_file gives for the picture saved and read back (grey, 320 x 240)."""
    grey = np.asarray(image.convert("L").resize((round(240 * image.width / image.height), 240), Image.BILINEAR))
    return of_pixels(grey), of_pixels(grey[:, ::-1]) if mirror else None


@pytest.fixture(scope="module")
def coffee():
    return photo("coffee.png")


def frame(image, box):
    w, h = image.size
    left, top, right, bottom = box
    return image.crop((int(left * w), int(top * h), int(right * w), int(bottom * h)))


@pytest.mark.parametrize("edit", [resize_25, crop_80, rotate_5, brighten_30, greyscale, text_overlay])
def test_an_edited_photo_is_a_copy(coffee, edit):
    assert verdict(keypoints(coffee), keypoints(edit(coffee))) == COPY


@pytest.mark.parametrize("boxes", [((0.0, 0.0, 0.8, 0.9), (0.07, 0.03, 0.87, 0.93)),  # 7 % of the width apart
                                   ((0.0, 0.0, 0.8, 0.9), (0.2, 0.1, 1.0, 1.0))])
def test_two_frames_of_a_burst_are_apart(coffee, boxes):
    a, b = (frame(coffee, box) for box in boxes)
    assert verdict(keypoints(a), keypoints(b)) == APART


def test_a_quarter_of_a_photo_is_not_a_copy_of_it(coffee):
    assert verdict(keypoints(coffee), keypoints(frame(coffee, (0.5, 0.5, 1.0, 1.0)))) == APART


def test_two_different_photos_are_apart(coffee):
    assert verdict(keypoints(coffee), keypoints(photo("astronaut.png"))) == APART


@pytest.mark.parametrize("edit", [flip, rotate_90])
def test_mirrored_and_turned_copies_count_only_in_any_orientation(coffee, edit):
    assert verdict(keypoints(coffee), keypoints(edit(coffee))) == APART
    assert verdict(keypoints(coffee, True), keypoints(edit(coffee), True), any_orientation=True) == COPY


def test_flat_pictures_cannot_be_told():
    grey = Image.new("RGB", (640, 480), (120, 130, 140))
    assert verdict(keypoints(grey), keypoints(grey)) == UNKNOWN
    assert verdict(None, keypoints(grey)) == UNKNOWN  # an unreadable file


def test_the_fit_measures_the_crop_and_the_turn(coffee):
    """Hand-checkable geometry: a centre crop to 80 % x 80 % lies wholly inside and covers 0.64;
    a 5-degree turn turns by 5 degrees."""
    inliers, inside, covered, turn = fit(keypoints(coffee)[0], keypoints(crop_80(coffee))[0])
    assert inliers >= 50 and inside == pytest.approx(1.0, abs=0.02) and covered == pytest.approx(0.64, abs=0.03)
    assert abs(turn) < 1
    turn = fit(keypoints(coffee)[0], keypoints(rotate_5(coffee))[0])[3]
    assert abs(abs(turn) - 5) < 1 and abs(turn) < MAX_TURN


def test_the_aligner_reads_files_once_and_gives_unknown_for_missing_ones(coffee, tmp_path):
    paths = [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg", tmp_path / "gone.jpg"]
    coffee.save(paths[0], quality=92)
    crop_80(coffee).save(paths[1], quality=92)
    frame(coffee, (0.5, 0.5, 1.0, 1.0)).save(paths[2], quality=92)
    aligner = Aligner(lambda row: str(paths[row]))
    assert aligner.verdicts(0, np.array([1, 2, 3])).tolist() == [COPY, APART, UNKNOWN]
    assert aligner.stats["pictures"] == 4 and aligner.stats["unreadable"] == 1 and aligner.stats["pairs"] == 3
    again = Aligner(lambda row: str(paths[row]))  # another run: the process keeps keypoints and verdicts
    assert again.verdicts(1, np.array([0])).tolist() == [COPY] and again.stats["pictures"] == 0
    brighten_30(crop_80(coffee)).save(paths[1], quality=92)  # the file changed: the next run reads it again
    later = Aligner(lambda row: str(paths[row]))
    assert later.verdicts(1, np.array([0])).tolist() == [COPY] and later.stats["pictures"] == 1
