"""Joint RGB colour histogram: images in, an (n, bins**3) L1-normalised float32 array out."""
import numpy as np


def rgb_histograms(images, bins=8):
    """Joint histogram over (R, G, B), each channel cut into ``bins`` equal ranges.

    Bin index = r_bin * bins**2 + g_bin * bins + b_bin; each row sums to 1.
    """
    out = np.empty((len(images), bins ** 3), dtype=np.float32)
    for row, image in enumerate(images):
        rgb = image if image.mode == "RGB" else image.convert("RGB")  # the shared copy is RGB: no copy made
        pixels = np.asarray(rgb, dtype=np.uint16).reshape(-1, 3)
        quantised = (pixels * bins) >> 8
        index = (quantised[:, 0] * bins + quantised[:, 1]) * bins + quantised[:, 2]
        counts = np.bincount(index, minlength=bins ** 3)
        out[row] = counts / counts.sum()
    return out
