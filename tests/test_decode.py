"""The shared decoded copy: torchvision's preprocessing, upright, flattened on white."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from samples import random_photo
from features.decode import ImageDecodeError, decode, read_file, to_rgb
from features.embeddings import centre_crop


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(640, 480), (300, 500), (256, 256), (200, 150)])
def test_copy_and_crop_equal_torchvision_resize_and_centre_crop(size):
    image = random_photo(5, size=size)
    ours = centre_crop(decode(_png_bytes(image), 256))
    reference = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.PILToTensor()])(image)
    assert ours.shape == (224, 224, 3)
    assert torch.equal(torch.from_numpy(ours.copy()).permute(2, 0, 1), reference)


def test_transparency_is_flattened_on_white():
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 150, 300))
    flat = np.asarray(to_rgb(rgba))
    assert flat[10, 10].tolist() == [0, 0, 255] and flat[10, 290].tolist() == [255, 255, 255]


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    pixels = np.full((40, 40), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    image = Image.fromarray(pixels)
    assert image.mode.startswith("I")
    assert np.asarray(to_rgb(image))[0, 0].tolist() == [128, 128, 128]


def test_jpeg_draft_keeps_the_shorter_side_at_least_requested():
    buffer = io.BytesIO()
    random_photo(2, size=(1600, 1200)).save(buffer, format="JPEG", quality=90)
    copy = decode(buffer.getvalue(), 256)
    assert min(copy.size) == 256 and copy.size == (int(256 * 1600 / 1200), 256)


def test_absurd_aspect_ratio_is_capped():
    copy = decode(_png_bytes(Image.new("RGB", (20000, 1), (9, 9, 9))), 256)
    assert copy.size == (256 * 8, 256)


def test_bad_bytes_raise_a_one_line_reason(tmp_path):
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode(b"hello, I am not a JPEG", 256)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty file"):
        read_file(empty)
    with pytest.raises(ImageDecodeError, match="disappeared"):
        read_file(tmp_path / "missing.jpg")
