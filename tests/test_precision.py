"""Network precisions (config.EMBED_PRECISION) per runtime (config.EMBED_RUNTIME): bfloat16 on
torch is close enough to float32 on real photos; what ``auto`` means on each runtime; bad names."""

import numpy as np
import pytest
from PIL import Image

import config
from demo.build_demo import SOURCES, package_file
from features.network import base, loader
from samples import cosines, jpeg_crops


def real_crops():
    """Centre crops of the packaged sample photos and their quarters, decoded as main.py does."""
    photos = []
    for package, relative in SOURCES.values():
        with Image.open(package_file(package, relative)) as source:
            photos.append(source.convert("RGB"))
    return jpeg_crops(photos)


@pytest.fixture(scope="module")
def lite0_both():
    float32 = loader.load_embedder("efficientnet_lite0", precision="float32", runtime="torch")
    bfloat16 = loader.load_embedder("efficientnet_lite0", precision="bfloat16", runtime="torch")
    return float32, bfloat16


@pytest.mark.slow
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


def test_auto_precision_follows_the_cpu_on_torch(monkeypatch):
    monkeypatch.setattr(base, "native_bfloat16", lambda: True)
    assert base.resolve_precision("auto", "torch") == "bfloat16"
    monkeypatch.setattr(base, "native_bfloat16", lambda: False)
    assert base.resolve_precision("auto", "torch") == "float32"
    assert base.resolve_precision("bfloat16", "torch") == "bfloat16"


def test_auto_precision_is_float32_on_onnxruntime(monkeypatch):
    monkeypatch.setattr(base, "native_bfloat16", lambda: True)
    assert base.resolve_precision("auto", "onnxruntime") == "float32"
    assert base.resolve_precision("int8", "onnxruntime") == "int8"


def test_unknown_or_unavailable_precision_is_a_value_error_listing_choices(monkeypatch):
    with pytest.raises(ValueError, match="valid: auto, float32, bfloat16, int8"):
        base.resolve_precision("float16", "torch")
    with pytest.raises(ValueError, match="IR_EMBED_RUNTIME=onnxruntime; valid on torch: auto, float32, bfloat16"):
        base.resolve_precision("int8", "torch")
    with pytest.raises(ValueError, match="IR_EMBED_RUNTIME=torch; valid on onnxruntime: auto, float32, int8"):
        loader.load_embedder("efficientnet_lite0", precision="bfloat16", runtime="onnxruntime")
    monkeypatch.setattr(config, "EMBED_PRECISION", "half")
    with pytest.raises(ValueError, match="'half'; valid: auto, float32, bfloat16, int8"):
        loader.load_embedder("efficientnet_lite0")


def test_unknown_runtime_is_a_value_error_listing_choices(monkeypatch):
    with pytest.raises(ValueError, match="unknown embedding runtime 'tensorflow'; valid: onnxruntime, torch"):
        loader.load_embedder("efficientnet_lite0", runtime="tensorflow")
    monkeypatch.setattr(config, "EMBED_RUNTIME", "openvino")
    with pytest.raises(ValueError, match=r"'openvino' \(IR_EMBED_RUNTIME\); valid: onnxruntime, torch"):
        loader.load_embedder("efficientnet_lite0")


def test_an_unnamed_runtime_with_bfloat16_is_torch(monkeypatch):
    """A DB stamped bfloat16 before runtimes were stamped still loads its model."""
    monkeypatch.setattr(config, "EMBED_RUNTIME", "onnxruntime")
    assert base.resolve_runtime(None, "bfloat16") == "torch"
    assert base.resolve_runtime(None, "float32") == "onnxruntime"


def test_stamp_runtime_joins_only_the_equivalent_runtimes():
    """float32 from torch and from ONNX Runtime agree to cosine >= 0.9999 (test_onnx.py): one stamp value."""
    assert base.stamp_runtime("torch", "float32") == base.stamp_runtime("onnxruntime", "float32")
    assert base.stamp_runtime("torch", "bfloat16") != base.stamp_runtime("onnxruntime", "float32")
    assert base.stamp_runtime("onnxruntime", "int8") == "onnxruntime"
    for precision in ("float32", "bfloat16", "int8"):  # the stamp value loads back as a runtime
        runtime = base.stamp_runtime("torch" if precision == "bfloat16" else "onnxruntime", precision)
        assert base.resolve_precision(precision, runtime) == precision
    with pytest.raises(ValueError, match="valid: onnxruntime, torch"):
        base.stamp_runtime("tf", "float32")
