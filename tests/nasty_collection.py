"""A "nasty collection": the broken and odd files real photo folders hold, one of each kind.

Why: the pipeline must finish on any folder, record every unusable file with a reason,
and give every usable one correct features. Each kind says what the DB must hold for it:
status "ok" (optionally with ``same_as``, a plain RGB PNG whose features must be
identical, or ``looks_like``, an image it must closely resemble), status "error" with a
piece of the reason, or None (no row at all).
"""
import io
import os
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

W, H = 64, 48  # small, and a multiple of the JPEG block size both ways
LOCKED = ("broken/secret.png", "locked")  # made unreadable (chmod 000)
REVOKED_AFTER_SCAN = "broken/revoked.png"  # the test makes it unreadable between the two scripts


@dataclass
class Kind:
    name: str
    path: str  # relative path as the DB stores it
    status: str = "ok"  # "ok", "error", or None for "no row"
    reason: str = None  # a piece of the stored one-line reason
    same_as: str = None  # features must equal this reference file's, exactly
    looks_like: str = None  # colours and embedding must be close to this file's


def picture(seed, width=W, height=H):
    """A smooth, structured RGB array (gradients plus a few blocks): stable hashes and crops."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                      (x + y) * 255 // max(width + height - 2, 1)], axis=-1).astype(np.int32)
    for _ in range(4):
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        image[y0:y0 + height // 3, x0:x0 + width // 3] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


# EXIF orientation -> how a viewer turns the stored pixels upright (numpy, independent of Pillow).
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
STORED = {k: UPRIGHT[{6: 8, 8: 6}.get(k, k)] for k in UPRIGHT}  # the inverse of each


def _save(root, rel, image, **options):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **options)
    return rel


def _write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return rel


def _encoded(image, fmt, **options):
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def _on_white(rgb, opaque):
    return np.where(opaque[..., None], rgb, 255).astype(np.uint8)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width, height):
    """A genuine 1-bit PNG of ``width`` x ``height`` black pixels: tiny on disk, huge decoded."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def make(root, outside):
    """Write the collection under ``root`` (and one target file under ``outside``); returns [Kind]."""
    base = picture(0)
    plain = _save(root, "plain.png", Image.fromarray(base))
    jpeg = _encoded(Image.fromarray(base), "JPEG", quality=90)
    kinds = _unusable(root, outside, base, jpeg) + _odd_places(root, base, plain)
    kinds += _modes(root, base, plain) + _formats_and_names(root, base, plain, jpeg) + _orientations(root, base)
    for rel in LOCKED:
        os.chmod(os.path.join(root, rel), 0)
    return kinds


def _unusable(root, outside, base, jpeg):
    rgb = Image.fromarray(base)
    png = _encoded(rgb, "PNG")
    bad = [  # (kind, path, content, piece of the reason)
        ("zero-byte file", "empty.jpg", b"", "empty"),
        ("text file named .jpg", "notes.jpg", b"shopping list\n" * 20, "not a readable image"),
        ("truncated JPEG", "cut.jpg", jpeg[: len(jpeg) // 2], "truncated"),
        ("truncated PNG", "cut.png", png[:300], "cannot decode"),
        ("JPEG with corrupt Huffman data", "huffman.jpg", _corrupt_entropy(jpeg), "cannot decode"),
        ("PNG with a bad CRC", "crc.png", _bad_crc(png), "not a readable image"),
        ("decompression bomb (> 2x limit)", "bomb_big.png", bomb_png(20000, 20000), "decompression-bomb"),
        ("decompression bomb (1x-2x limit)", "bomb.png", bomb_png(12000, 12000), "decompression-bomb"),
        ("file without read permission", "secret.png", png, "permission"),
        ("read permission removed after the scan", "revoked.png", _encoded(rgb, "TIFF"), "permission"),
        ("file deleted between scan and extraction", "vanishing.png", _encoded(rgb, "BMP"), "disappeared"),
    ]
    kinds = [Kind(name, _write(root, f"broken/{rel}", data), "error", reason) for name, rel, data, reason in bad]
    return kinds + [
        Kind("symlink loop", _symlink(root, "broken/loop.jpg", "loop.jpg"), "error", "broken symlink"),
        Kind("dangling symlink", _symlink(root, "broken/dangling.jpg", "nowhere.jpg"), "error", "broken symlink"),
        Kind("symlink out of the dataset", _symlink(root, "broken/escape.png", _outside_file(outside, rgb)),
             "error", "outside the dataset"),
        Kind("named pipe called .jpg", _fifo(root, "broken/pipe.jpg"), "error", "not a regular file"),
        Kind("non-UTF-8 file name", _non_utf8(root, "broken", png), "error", "UTF-8"),
    ]


def _odd_places(root, base, plain):
    """Things that are not image files, or hide where a scan must not go."""
    os.symlink("..", os.path.join(root, "broken", "up"))  # a folder loop: must not be followed
    png = _encoded(Image.fromarray(base), "PNG")
    return [
        Kind("folder symlink loop", "broken/up", None),
        Kind("directory named like an image", _dir_like_image(root, Image.fromarray(base)), None),
        Kind("file inside a directory named like an image", "album.jpg/inside.png", same_as=plain),
        Kind("folder without read permission (file inside)", _write(root, "locked/inside.png", png), None),
        Kind("not an image extension", _write(root, "readme.txt", b"hello"), None),
    ]


def _modes(root, base, plain):
    """Pillow modes other than RGB, each against the RGB pixels it must turn into."""
    rgb = Image.fromarray(base)
    grey = np.asarray(rgb.convert("L"))
    grey_rgb = np.repeat(grey[..., None], 3, 2)
    palette = rgb.quantize(32)
    index = np.asarray(palette)
    opaque = (np.indices((H, W)).sum(axis=0) // 8) % 2 == 0  # checkerboard of fully on/off alpha
    alpha = Image.fromarray((opaque * 255).astype(np.uint8))
    made = [  # (kind, path, image, save options, reference pixels)
        ("greyscale PNG", "grey.png", Image.fromarray(grey, "L"), {}, grey_rgb),
        ("16-bit greyscale PNG", "grey16.png", Image.fromarray(grey.astype(np.uint16) * 257), {}, grey_rgb),
        ("1-bit PNG", "bilevel.png", rgb.convert("1"), {}, np.asarray(rgb.convert("1").convert("RGB"))),
        ("palette PNG", "palette.png", palette, {}, np.asarray(palette.convert("RGB"))),
        ("palette PNG with transparency", "palette_alpha.png", palette, {"transparency": int(index[0, 0])},
         _on_white(np.asarray(palette.convert("RGB")), index != index[0, 0])),
        ("RGBA PNG", "rgba.png", Image.merge("RGBA", (*rgb.split(), alpha)), {}, _on_white(base, opaque)),
        ("LA PNG", "la.png", Image.merge("LA", (Image.fromarray(grey), alpha)), {}, _on_white(grey_rgb, opaque)),
    ]
    kinds = [Kind(name, _save(root, f"modes/{rel}", image, **options), same_as=_ref(root, rel, pixels))
             for name, rel, image, options, pixels in made]
    cmyk = _save(root, "modes/cmyk.jpg", rgb.convert("CMYK"), quality=100)
    return kinds + [Kind("CMYK JPEG", cmyk, looks_like=plain)]


def _formats_and_names(root, base, plain, jpeg):
    rgb, other = Image.fromarray(base), Image.fromarray(255 - base)
    frames = [rgb.quantize(64), other.quantize(64)]
    with open(os.path.join(root, plain), "rb") as fh:
        plain_bytes = fh.read()
    sql_name = "names/it's \"x\"; DROP TABLE images; --.bmp"
    kinds = [
        Kind("animated GIF (first frame used)",
             _save(root, "formats/anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0),
             same_as=_ref(root, "anim.png", np.asarray(frames[0].convert("RGB")))),
        Kind("multi-page TIFF (first page used)",
             _save(root, "formats/pages.tif", rgb, save_all=True, append_images=[other]), same_as=plain),
        Kind("lossless WebP", _save(root, "formats/photo.webp", rgb, lossless=True), same_as=plain),
        Kind("BMP", _save(root, "formats/photo.bmp", rgb), same_as=plain),
        Kind("JPEG with trailing garbage", _write(root, "formats/trailing.jpg", jpeg + b"\x00garbage" * 50),
             same_as=_write(root, "refs/clean.jpg", jpeg)),
        Kind("identical copy of another file", _write(root, "formats/copy_of_plain.png", plain_bytes), same_as=plain),
        Kind("PNG bytes named .jpg", _write(root, "formats/png.jpg", _encoded(Image.fromarray(picture(2)), "PNG")),
             same_as=_ref(root, "png.png", picture(2))),
        Kind("1x1 image", _save(root, "sizes/dot.png", Image.new("RGB", (1, 1), (200, 30, 30)))),
        Kind("20000x1 image", _save(root, "sizes/strip.png", Image.fromarray(np.tile(base, (1, 313, 1))[:1, :20000]))),
    ]
    named = [  # (kind, path): BMPs of distinct pictures, each against a plain PNG of its pixels
        ("upper-case extension", "formats/PHOTO.BMP"),
        ("unicode file name", "names/café_日本_😀.bmp"),
        ("quotes, semicolons and -- in the name", sql_name),
        ("line break in the name", "names/two\nlines.bmp"),
    ]
    for seed, (name, rel) in enumerate(named, start=3):
        kinds.append(Kind(name, _save(root, rel, Image.fromarray(picture(seed))),
                          same_as=_ref(root, f"named_{seed}.png", picture(seed))))
    return kinds


def _orientations(root, base):
    """All 8 EXIF orientations; each must give the features of the upright pixels."""
    kinds = []
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](base)))
        rel = _save(root, f"exif/orientation_{orientation}.jpg", stored, quality=95, exif=exif)
        with Image.open(os.path.join(root, rel)) as decoded:
            upright = np.ascontiguousarray(UPRIGHT[orientation](np.asarray(decoded.convert("RGB"))))
        assert np.abs(upright.astype(int) - base).mean() < 4, "the fixture's orientation table is wrong"
        kinds.append(Kind(f"EXIF orientation {orientation}", rel,
                          same_as=_ref(root, f"orientation_{orientation}.png", upright)))
    return kinds


def _ref(root, rel, pixels):
    """A plain 8-bit RGB PNG of ``pixels``: what a decodable odd file must match exactly."""
    return _save(root, f"refs/{rel}", Image.fromarray(pixels))


def unlock(root):
    """Give the locked files their permissions back, so the folder can be deleted."""
    for rel in LOCKED + (REVOKED_AFTER_SCAN,):
        path = os.path.join(root, rel)
        if os.path.exists(path):
            os.chmod(path, 0o755)


def _corrupt_entropy(jpeg):
    """Overwrite the middle of the entropy-coded data with a marker that cannot occur there."""
    start = jpeg.index(b"\xff\xda") + 20
    middle = (start + len(jpeg)) // 2
    return jpeg[:middle] + b"\xff\xc0\xff\xc4" * 8 + jpeg[middle + 32:]


def _bad_crc(png):
    """Flip one byte of the IHDR checksum."""
    at = 8 + 8 + 13  # signature, IHDR length+type, IHDR data
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1:]


def _symlink(root, rel, target):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return rel


def _outside_file(outside, image):
    os.makedirs(outside, exist_ok=True)
    path = os.path.join(outside, "private.png")
    image.save(path)
    return path


def _fifo(root, rel):
    os.mkfifo(os.path.join(root, rel))
    return rel


def _non_utf8(root, folder, data):
    name = b"latin1_caf\xe9.png"
    with open(os.path.join(os.fsencode(root), os.fsencode(folder), name), "wb") as fh:
        fh.write(data)
    return f"{folder}/" + name.decode("utf-8", "backslashreplace")


def _dir_like_image(root, image):
    _save(root, "album.jpg/inside.png", image)
    return "album.jpg"
