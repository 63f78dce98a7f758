"""The bfloat16 network path (config.EMBED_PRECISION): close enough to float32 on real photos."""
import io

import numpy as np
import pytest
from PIL import Image

from demo.build_demo import SOURCES, package_file
from features import embeddings
from features.decode import decode


def real_crops():
    """Centre crops of the packaged sample photos and their quarters, decoded as main.py does."""
    crops = []
    for package, relative in SOURCES.values():
        with Image.open(package_file(package, relative)) as source:
            photo = source.convert("RGB")
        for box in (None, (0, 0, photo.width // 2, photo.height // 2)):
            data = io.BytesIO()
            (photo if box is None else photo.crop(box)).save(data, "JPEG", quality=90)
            crops.append(embeddings.centre_crop(decode(data.getvalue(), 256)))
    return np.stack(crops)


def cosines(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def lite0_both():
    float32 = embeddings.load_embedder("efficientnet_lite0", precision="float32")
    bfloat16 = embeddings.load_embedder("efficientnet_lite0", precision="bfloat16")
    return float32, bfloat16


def test_bfloat16_embeddings_keep_cosine_099_to_float32_on_real_photos(lite0_both):
    float32, bfloat16 = lite0_both
    assert (float32.precision, bfloat16.precision) == ("float32", "bfloat16")
    crops = real_crops()
    exact, fast = float32.embed_crops(crops), bfloat16.embed_crops(crops)
    assert fast.dtype == np.float32 and fast.shape == exact.shape == (len(crops), 1280)
    assert not np.array_equal(exact, fast)  # the bfloat16 path really ran
    assert cosines(exact, fast).min() >= 0.99


def test_bfloat16_embedding_of_one_image_does_not_depend_on_its_batch(lite0_both):
    """A query is embedded alone, the collection in batches: the two must agree."""
    _, bfloat16 = lite0_both
    crops = real_crops()[:6]
    batch = bfloat16.embed_crops(crops)
    alone = np.concatenate([bfloat16.embed_crops(crops[i:i + 1]) for i in range(len(crops))])
    assert 1.0 - cosines(batch, alone).min() < 1e-4


def test_auto_precision_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(embeddings, "native_bfloat16", lambda: True)
    assert embeddings.resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(embeddings, "native_bfloat16", lambda: False)
    assert embeddings.resolve_precision("auto") == "float32"
    assert embeddings.resolve_precision("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="valid: auto, float32, bfloat16"):
        embeddings.resolve_precision("int8")
