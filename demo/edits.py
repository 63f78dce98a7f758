"""Deterministic edits that make near-duplicates of a photo (demo and quality benchmark).

Each edit takes and returns an RGB PIL image; none uses randomness, so a rebuilt
collection is byte-identical.
"""
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from fileio import atomic_write


def resize_25(image):
    return image.resize((max(1, image.width // 4), max(1, image.height // 4)), Image.LANCZOS)


def resize_50(image):
    return image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.LANCZOS)


def crop_80(image):
    dx, dy = image.width // 10, image.height // 10
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def rotate_5(image):
    return image.rotate(5, resample=Image.BICUBIC, expand=False, fillcolor=(255, 255, 255))


def rotate_90(image):
    return image.transpose(Image.ROTATE_90)


def flip(image):
    return ImageOps.mirror(image)


def brighten_30(image):
    return ImageEnhance.Brightness(image).enhance(1.3)


def greyscale(image):
    return ImageOps.grayscale(image).convert("RGB")


def text_overlay(image):
    """A caption band and a logo box, like a watermark or a meme caption."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    h, w = out.height, out.width
    draw.rectangle((0, int(h * 0.85), w, h), fill=(20, 20, 20))
    draw.text((w * 0.05, h * 0.88), "HOLIDAY 2026  (c) photo", fill=(255, 255, 0))
    draw.rectangle((int(w * 0.8), int(h * 0.05), int(w * 0.95), int(h * 0.15)), fill=(200, 30, 30))
    return out


# JPEG quality 20 is an edit of the encoding, not of the pixels: saved with quality=20.
JPEG_20 = "jpeg_20"

DEMO_EDITS = {"resized": resize_50, "recompressed": None, "cropped": crop_80, "flipped": flip,
              "brightened": brighten_30}
NEAR_DUPLICATE_EDITS = {"resize_25": resize_25, JPEG_20: None, "crop_80": crop_80, "rotate_5": rotate_5,
                        "rotate_90": rotate_90, "flip": flip, "brightness_30": brighten_30,
                        "greyscale": greyscale, "text_overlay": text_overlay}


def save_edit(image, edit, path, jpeg_quality=90):
    """Apply ``edit`` (None: re-encode only, at quality 20) and save as JPEG."""
    with atomic_write(path, "wb") as fh:
        if edit is None:
            image.save(fh, format="JPEG", quality=20)
        else:
            edit(image).save(fh, format="JPEG", quality=jpeg_quality)
