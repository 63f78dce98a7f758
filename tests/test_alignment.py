"""Keypoint alignment (duplicates.alignment) on known answers: a real photo's edits are copies,
frames of a burst, a quarter and another photo are not, and a flat picture cannot be told.

The photos are scikit-image's samples; every edit is made here, so each answer is known."""
import os

import numpy as np
import pytest
from PIL import Image

from demo.build_demo import package_file
from demo.edits import brighten_30, crop_80, flip, greyscale, resize_25, rotate_5, rotate_90, text_overlay
from duplicates import alignment
from duplicates.alignment import APART, CONTAINED, COPY, COVERS, MAX_TURN, UNKNOWN, Aligner, fit, verdict
from features.decode import ImageDecodeError
from features.keypoints import Keypoints, from_bytes, of_image, to_bytes


def photo(name):
    with Image.open(package_file("skimage", f"data/{name}")) as image:
        return image.convert("RGB").resize((640, 480), Image.LANCZOS)


def keypoints(image, mirror=False):
    """What features.keypoints.of_file gives for the picture (its shorter side 256)."""
    return of_image(image.resize((round(256 * image.width / image.height), 256), Image.BILINEAR), mirror)


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


def gradient(turns=0, colours=((255, 40, 0), (0, 60, 255))):
    """A smooth picture with no keypoints: a blend of two colours, turned by 90 degrees ``turns`` times."""
    ramp = np.linspace(0, 1, 640, dtype=np.float32)[None, :, None]
    pixels = (1 - ramp) * np.array(colours[0]) + ramp * np.array(colours[1])
    pixels = np.rot90(np.broadcast_to(pixels, (640, 640, 3)), turns)
    return Image.fromarray(np.ascontiguousarray(pixels).astype(np.uint8))


def test_plain_pictures_are_told_apart_only_by_a_glance():
    """Too plain for keypoints: a resized, brightened or greyscale copy is left to the embeddings
    (UNKNOWN, never COPY); a blend the other way round, or in other colours, is apart; a mirrored
    blend is apart unless mirrored copies are asked for."""
    blend = gradient()
    assert len(keypoints(blend).keypoints) < 12
    for copy in (blend.resize((320, 320)), brighten_30(blend), greyscale(blend)):
        assert verdict(keypoints(blend), keypoints(copy)) == UNKNOWN
    assert verdict(keypoints(blend), keypoints(gradient(turns=1))) == APART
    assert verdict(keypoints(blend), keypoints(gradient(colours=((0, 200, 60), (200, 0, 160))))) == APART
    assert verdict(keypoints(blend), keypoints(flip(blend))) == APART
    assert verdict(keypoints(blend, True), keypoints(flip(blend), True), any_orientation=True) == UNKNOWN


def test_the_fit_measures_the_crop_and_the_turn(coffee):
    """Hand-checkable geometry: a centre crop to 80 % x 80 % lies wholly inside and covers 0.64;
    a 5-degree turn turns by 5 degrees."""
    inliers, inside, covered, turn = fit(keypoints(coffee).keypoints, keypoints(crop_80(coffee)).keypoints)
    assert inliers >= 50 and inside == pytest.approx(1.0, abs=0.02) and covered == pytest.approx(0.64, abs=0.03)
    assert abs(turn) < 1
    turn = fit(keypoints(coffee).keypoints, keypoints(rotate_5(coffee)).keypoints)[3]
    assert abs(abs(turn) - 5) < 1 and abs(turn) < MAX_TURN


def test_the_aligner_reads_files_once_and_gives_unknown_for_missing_ones(coffee, tmp_path):
    alignment._PICTURES.items.clear()  # as a new process
    alignment._VERDICTS.items.clear()
    paths = [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg", tmp_path / "gone.jpg"]
    coffee.save(paths[0], quality=92)
    crop_80(coffee).save(paths[1], quality=92)
    frame(coffee, (0.5, 0.5, 1.0, 1.0)).save(paths[2], quality=92)
    with Aligner(lambda row: str(paths[row])) as aligner:
        assert aligner.verdicts(0, np.array([1, 2, 3])).tolist() == [COPY, APART, UNKNOWN]
        assert aligner.stats["pictures"] == 4 and aligner.stats["unreadable"] == 1 and aligner.stats["pairs"] == 3
    with Aligner(lambda row: str(paths[row])) as again:  # another run: the process keeps pictures and verdicts
        assert again.verdicts(1, np.array([0])).tolist() == [COPY] and again.stats["pictures"] == 0
    brighten_30(crop_80(coffee)).save(paths[1], quality=92)  # the file changed: the next run reads it again
    with Aligner(lambda row: str(paths[row])) as later:
        assert later.verdicts(1, np.array([0])).tolist() == [COPY] and later.stats["pictures"] == 1


def test_stored_keypoints_read_back_as_they_were(coffee):
    """features.keypoints.to_bytes / from_bytes: the same verdicts from the stored form (positions to
    a sixteenth of a pixel), about 6 KB a picture, and a record of another format is refused."""
    picture, copy = keypoints(coffee), keypoints(crop_80(coffee))
    stored = to_bytes(picture)
    back = from_bytes(stored)
    assert len(stored) < 7000 and back.mirrored is None
    assert np.abs(back.keypoints.points - picture.keypoints.points).max() <= 1 / 32
    assert np.array_equal(back.keypoints.descriptors, picture.keypoints.descriptors)
    assert np.array_equal(back.tiny, picture.tiny) and (back.keypoints.width, back.keypoints.height) == (341, 256)
    assert verdict(back, from_bytes(to_bytes(copy))) == verdict(picture, copy) == COPY
    with pytest.raises(ValueError, match="does not parse"):
        from_bytes(stored[:-1])


def test_a_fit_that_squeezes_every_match_into_a_corner_says_nothing(coffee):
    """The same keypoints at a tenth of the size: a transform scaling by 10 is no evidence of a copy
    (or of two different pictures), so fit gives None."""
    k = keypoints(coffee).keypoints
    squeezed = Keypoints(k.points / 10, k.descriptors, k.width, k.height)
    assert fit(k, k)[0] >= 50 and fit(k, squeezed) is None and fit(squeezed, k) is None


def test_the_numbers_behind_the_cuts(coffee):
    """The measured figures in duplicates.alignment's comments: a 5-degree turn keeps >= 0.95 inside,
    burst frames 7 % of the width apart about 0.88 (below CONTAINED), a quarter covers 0.25 (below COVERS)."""
    def shares(a, b):
        inliers, inside, covered, _ = max((f for f in (fit(a.keypoints, b.keypoints), fit(b.keypoints, a.keypoints))
                                           if f), key=lambda f: f[0])
        return max(inside, covered), min(inside, covered)
    assert shares(keypoints(coffee), keypoints(rotate_5(coffee)))[0] >= 0.95 > CONTAINED
    first, second = (keypoints(frame(coffee, box)) for box in ((0.0, 0.0, 0.8, 0.9), (0.07, 0.03, 0.87, 0.93)))
    assert 0.85 <= shares(first, second)[0] <= 0.91 and shares(first, second)[0] < CONTAINED
    assert shares(keypoints(coffee), keypoints(frame(coffee, (0.5, 0.5, 1.0, 1.0))))[1] == pytest.approx(0.25, abs=0.03)
    assert 0.25 < COVERS < 0.64


def test_keypoints_come_from_a_256_pixel_copy_whatever_size_is_given(coffee):
    """Extraction's copy follows IR_DECODE_SIDE; stored and file-read pictures must still match."""
    big = of_image(coffee.resize((1024, 768)))
    assert (big.keypoints.width, big.keypoints.height) == (341, 256)
    assert verdict(big, keypoints(crop_80(coffee))) == COPY


@pytest.fixture
def two_files(coffee, tmp_path):
    alignment._PICTURES.items.clear()  # as a new process
    alignment._VERDICTS.items.clear()
    paths = [tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"]
    coffee.save(paths[0], quality=92)
    crop_80(coffee).save(paths[1], quality=92)
    frame(coffee, (0.5, 0.5, 1.0, 1.0)).save(paths[2], quality=92)
    return [str(p) for p in paths]


def test_a_read_that_failed_once_is_tried_again_next_run(two_files, monkeypatch):
    real, failed = alignment.of_file, []

    def flaky(path, **kwargs):
        if path.endswith("b.jpg") and not failed:
            failed.append(path)
            raise ImageDecodeError("cannot read the file: Input/output error")
        return real(path, **kwargs)
    monkeypatch.setattr(alignment, "of_file", flaky)
    with Aligner(two_files.__getitem__) as first:
        assert first.verdicts(0, np.array([1])).tolist() == [UNKNOWN]
    with Aligner(two_files.__getitem__) as second:
        assert second.verdicts(0, np.array([1])).tolist() == [COPY] and second.stats["pictures"] == 1


def test_a_file_replaced_with_the_same_size_and_mtime_is_read_again(two_files, coffee, tmp_path):
    """cp -p or rsync -t keep size and mtime; the inode and ctime tell the new file from the old."""
    with Aligner(two_files.__getitem__) as first:
        assert first.verdicts(0, np.array([1])).tolist() == [COPY]
    old = os.stat(two_files[1])
    other = tmp_path / "other.jpg"
    photo("astronaut.png").save(other, quality=60)  # smaller than the crop it replaces
    data = other.read_bytes()
    assert len(data) < old.st_size
    other.write_bytes(data + bytes(old.st_size - len(data)))  # padded to its size: JPEG ignores what follows the end
    os.utime(other, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(other, two_files[1])
    assert (os.stat(two_files[1]).st_size, os.stat(two_files[1]).st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    with Aligner(two_files.__getitem__) as second:
        assert second.verdicts(0, np.array([1])).tolist() == [APART] and second.stats["pictures"] == 1


def test_verdicts_are_answered_as_computed_even_when_the_memo_forgets_them(two_files, monkeypatch):
    monkeypatch.setattr(alignment, "_VERDICTS", alignment._Memo(1))  # keeps only the last verdict
    with Aligner(two_files.__getitem__) as aligner:
        assert aligner.verdicts(0, np.array([1, 2])).tolist() == [COPY, APART]
