"""Joint RGB histogram: known answers and a NumPy histogramdd reference."""
import numpy as np
from PIL import Image

from features.histogram import rgb_histograms
from samples import random_photo


def reference_histogram(image, bins):
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(np.float64)
    counts, _ = np.histogramdd(pixels, bins=(bins, bins, bins), range=((0, 256),) * 3)
    return (counts / counts.sum()).ravel()


def test_histograms_sum_to_one_and_match_histogramdd():
    images = [random_photo(seed, size=(50 + seed, 40 + 2 * seed)) for seed in range(6)]
    for bins in (4, 8):
        hist = rgb_histograms(images, bins)
        assert hist.shape == (6, bins ** 3) and hist.dtype == np.float32
        np.testing.assert_allclose(hist.sum(axis=1), 1.0, rtol=1e-6)
        for row, image in zip(hist, images):
            np.testing.assert_allclose(row, reference_histogram(image, bins), atol=1e-7)


def test_known_answer_solid_colours():
    red = Image.new("RGB", (10, 10), (255, 0, 0))
    half = Image.new("RGB", (10, 10), (0, 0, 0))
    half.paste((255, 255, 255), (0, 0, 5, 10))
    hist = rgb_histograms([red, half], 8)
    assert hist[0, 7 * 64] == 1.0 and hist[0].sum() == 1.0
    assert hist[1, 0] == 0.5 and hist[1, 511] == 0.5


def test_bin_edges():
    # 31 and 32 fall in different bins of 8 (width 32); 224 is the first value of the last bin
    image = Image.fromarray(np.array([[[31, 32, 224]]], dtype=np.uint8))
    assert np.flatnonzero(rgb_histograms([image], 8)[0]).tolist() == [0 * 64 + 1 * 8 + 7]
