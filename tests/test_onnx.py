"""The network on ONNX Runtime: agrees with torch on real photos, exported once and cached,
a damaged or foreign cache file is never trusted, and loading from the cache needs no torch."""
import hashlib
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import skimage
import torch
from PIL import Image

import config
from features.framing import DEFAULT_FRAMING, FRAMINGS, frame
from features.network import base, loader
from features.network import cache as onnx_cache
from features.network import export as onnx_export
from features.network import int8 as onnx_int8
from features.network.torch import build_network
from samples import cosines, jpeg_crops

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the project folder
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
NAME = "efficientnet_lite0"


def real_crops():
    """Centre crops of scikit-image's sample photos and of their top-left quarters, decoded as
    main.py decodes (JPEG, shorter side 256)."""
    photos = []
    for name in PHOTOS:
        with Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", name)) as source:
            photos.append(source.convert("RGB"))
    return jpeg_crops(photos)


class ExportCounter:
    """Wraps onnx_export.export_weights to count exports; with ``result``, an export writes
    those bytes instead of running torch's exporter (3 s each)."""

    def __init__(self, monkeypatch, result=None):
        self.calls = 0
        self._real = onnx_export.export_weights
        self._result = result
        monkeypatch.setattr(onnx_export, "export_weights", self)

    def __call__(self, name, spec, weights_path, path):
        self.calls += 1
        if self._result is None:
            return self._real(name, spec, weights_path, path)
        with open(path, "wb") as fh:
            fh.write(self._result)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One real export into a private cache folder: (folder, file name)."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ONNX_CACHE_DIR", str(folder))
        embedder = loader.load_embedder(NAME, "float32", "onnxruntime", threads=1)
    name = onnx_cache.file_name(NAME, embedder.weights_sha256, "float32")
    return folder, name


@pytest.fixture
def cache(exported, tmp_path, monkeypatch):
    """A private copy of the exported cache for one test: path of its .onnx file."""
    folder, name = exported
    for suffix in ("", ".json"):
        (tmp_path / (name + suffix)).write_bytes((folder / (name + suffix)).read_bytes())
    monkeypatch.setattr(config, "ONNX_CACHE_DIR", str(tmp_path))
    return tmp_path / name


@pytest.fixture(scope="module")
def both_runtimes(exported):
    folder, _ = exported
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ONNX_CACHE_DIR", str(folder))
        onnx = loader.load_embedder(NAME, "float32", "onnxruntime", threads=2)
    return onnx, loader.load_embedder(NAME, "float32", "torch")


def test_onnxruntime_and_torch_agree_on_real_photos(both_runtimes):
    onnx, torch_embedder = both_runtimes
    assert (onnx.runtime, torch_embedder.runtime) == ("onnxruntime", "torch")
    assert onnx.weights_sha256 == torch_embedder.weights_sha256 and onnx.spec == torch_embedder.spec
    crops = real_crops()
    a, b = onnx.embed_crops(crops), torch_embedder.embed_crops(crops)
    assert a.dtype == np.float32 and a.shape == b.shape == (len(crops), 1280)
    assert cosines(a, b).min() >= 0.9999
    # and the photos are told apart: the agreement is not that of constant outputs
    assert cosines(a[:1], a[2:3])[0] < 0.9


def test_onnx_embedding_of_one_image_does_not_depend_on_its_batch(both_runtimes):
    """A query is embedded alone, the collection in batches: the two must agree."""
    onnx, _ = both_runtimes
    crops = real_crops()[:5]
    batch = onnx.embed_crops(crops)
    alone = np.concatenate([onnx.embed_crops(crops[i:i + 1]) for i in range(len(crops))])
    assert cosines(batch, alone).min() >= 0.99999
    assert onnx.embed_crops(crops[:0]).shape == (0, 1280)


def test_pil_images_in_give_what_their_crops_give(both_runtimes):
    onnx, _ = both_runtimes
    photo = Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")).convert("RGB")
    copy = photo.resize((256 * photo.width // photo.height, 256))
    for framing in FRAMINGS:  # the DB's framing decides what the network sees (features.framing)
        np.testing.assert_array_equal(onnx([copy], framing), onnx.embed_crops(frame(copy, framing, 224)[None]))
    np.testing.assert_array_equal(onnx([copy]), onnx.embed_crops(frame(copy, DEFAULT_FRAMING, 224)[None]))


def test_the_cached_model_is_reused_not_exported_again(cache, monkeypatch):
    counter = ExportCounter(monkeypatch)
    before = cache.stat().st_mtime_ns
    embedder = loader.load_embedder(NAME, "float32", "onnxruntime", threads=1)
    assert counter.calls == 0 and cache.stat().st_mtime_ns == before
    assert embedder.runtime == "onnxruntime" and embedder.threads == 1


def test_the_sidecar_records_the_files_hash_and_what_it_was_made_from(cache):
    record = json.loads((cache.parent / (cache.name + ".json")).read_text())
    assert record["onnx_sha256"] == hashlib.sha256(cache.read_bytes()).hexdigest()
    assert record["weights_sha256"] == base.verified_weights(NAME)[1]
    assert record["weights_sha256"][:16] in cache.name and "float32" in cache.name
    assert (record["opset"], record["model"], record["precision"]) == (17, NAME, "float32")


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "no sidecar", "foreign weights", "other opset",
                                    "sidecar not json"])
def test_a_damaged_or_foreign_cache_file_is_exported_again(cache, monkeypatch, caplog, damage):
    sidecar = cache.parent / (cache.name + ".json")
    good = cache.read_bytes()
    if damage == "flipped byte":
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        cache.write_bytes(bytes(data))
    elif damage == "truncated":
        cache.write_bytes(good[: len(good) // 3])
    elif damage == "no sidecar":
        sidecar.unlink()
    elif damage == "sidecar not json":
        sidecar.write_text("{not json")
    else:
        record = json.loads(sidecar.read_text())
        record.update({"foreign weights": {"weights_sha256": "0" * 64}, "other opset": {"opset": 13}}[damage])
        sidecar.write_text(json.dumps(record))
    counter = ExportCounter(monkeypatch, result=None if damage == "flipped byte" else good)
    with caplog.at_level(logging.WARNING):
        embedder = loader.load_embedder(NAME, "float32", "onnxruntime", threads=1)
    assert counter.calls == 1
    if damage != "no sidecar":
        assert "exporting it again" in caplog.text
    record = json.loads(sidecar.read_text())  # repaired: the new pair verifies
    assert record["onnx_sha256"] == hashlib.sha256(cache.read_bytes()).hexdigest()
    assert onnx_cache.read_verified(str(cache), onnx_cache.expected_record(NAME, embedder.weights_sha256, "float32"))
    assert embedder.embed_crops(real_crops()[:1]).shape == (1, 1280)


def test_a_failed_export_leaves_no_file_and_keeps_nothing_half_written(tmp_path, monkeypatch):
    """The export writes under a temporary name: a crash mid-write leaves neither a model nor
    a temporary file, and the next load exports again."""
    monkeypatch.setattr(config, "ONNX_CACHE_DIR", str(tmp_path))

    def crash(name, spec, weights_path, path):
        with open(path, "wb") as fh:
            fh.write(b"half an ONNX file")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_export, "export_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        loader.load_embedder(NAME, "float32", "onnxruntime")
    assert os.listdir(tmp_path) == []


def test_the_first_writable_folder_gets_the_export(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    user = tmp_path / "user-cache"
    assert onnx_cache.writable_dir([str(blocked / "onnx"), str(user)]) == str(user)
    with pytest.raises(OSError, match="IR_ONNX_CACHE_DIR"):
        onnx_cache.writable_dir([str(blocked / "onnx")])
    monkeypatch.setattr(config, "ONNX_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache.cache_dirs("/some/where/weights.pth") == [
        "/some/where", str(tmp_path / "xdg" / "image-recommender" / "onnx")]


def test_loading_from_the_cache_imports_no_torch(cache):
    """A query process embeds with the cached model without importing torch or torchvision."""
    script = (
        "import sys, numpy as np\n"
        "from features.network.loader import load_embedder\n"
        "e = load_embedder('auto', threads=1)\n"
        "assert e.embed_crops(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 1280)\n"
        "print(e.runtime, e.precision, sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    env = {**os.environ, "IR_ONNX_CACHE_DIR": str(cache.parent), "IR_EMBED_RUNTIME": "onnxruntime",
           "IR_EMBED_PRECISION": "auto", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "onnxruntime float32 []"


def test_importing_the_network_base_and_loader_imports_no_runtime():
    """Decode workers and the stamp code import features.network.base for centre_crop and
    stamp_runtime: neither torch nor onnxruntime may come with it."""
    script = ("import sys, features.network.base, features.network.loader, features.extract\n"
              "print(sorted(m for m in ('torch', 'torchvision', 'onnxruntime', 'onnx') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_onnx_threads_are_the_callers_choice(exported, monkeypatch):
    monkeypatch.setattr(config, "ONNX_CACHE_DIR", str(exported[0]))
    assert loader.load_embedder(NAME, "float32", "onnxruntime", threads=3).threads == 3
    assert loader.load_embedder(NAME, "float32", "onnxruntime").threads == len(os.sched_getaffinity(0))


def test_a_network_without_weights_file_runs_on_both_runtimes():
    """Benchmarks use randomly initialised ResNet18: exported to a temporary file, not cached."""
    torch.manual_seed(0)
    network = build_network("resnet18")
    spec = base.SPECS["resnet18"]
    onnx = loader.embedder_from_network(spec, network, "random", runtime="onnxruntime", threads=1)
    eager = loader.embedder_from_network(spec, network, "random", runtime="torch")
    crops = real_crops()[:3]
    assert cosines(onnx.embed_crops(crops), eager.embed_crops(crops)).min() >= 0.9999


@pytest.fixture(scope="module")
def int8_cache(exported, tmp_path_factory):
    """The int8 model quantised from the exported float32 one, calibrated on 10 crops instead of
    100 to save time: (folder, embedder)."""
    folder = tmp_path_factory.mktemp("onnx-int8")
    name = exported[1]
    for suffix in ("", ".json"):
        (folder / (name + suffix)).write_bytes((exported[0] / (name + suffix)).read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "ONNX_CACHE_DIR", str(folder))
        patch.setattr(onnx_int8, "calibration_crops", lambda size=224: real_crops())
        return folder, loader.load_embedder(NAME, "int8", "onnxruntime", threads=2)


def test_int8_is_quantised_from_the_cached_float32_model_and_stays_close(int8_cache, both_runtimes):
    folder, int8 = int8_cache
    assert (int8.runtime, int8.precision) == ("onnxruntime", "int8")
    [int8_file] = folder.glob("*-int8-*.onnx")
    record = json.loads((folder / (int8_file.name + ".json")).read_text())
    assert record["precision"] == "int8" and record["int8_format"] == "QDQ"
    assert b"QuantizeLinear" in int8_file.read_bytes()
    crops = real_crops()
    exact, fast = both_runtimes[0].embed_crops(crops), int8.embed_crops(crops)
    assert not np.allclose(exact, fast)  # really another network
    assert cosines(exact, fast).mean() >= 0.95 and cosines(exact, fast).min() >= 0.85


def test_a_cached_int8_model_is_reused(int8_cache, monkeypatch):
    folder, _ = int8_cache
    monkeypatch.setattr(config, "ONNX_CACHE_DIR", str(folder))
    monkeypatch.setattr(onnx_int8, "quantize", lambda *args: pytest.fail("quantised again"))
    assert loader.load_embedder(NAME, "int8", "onnxruntime", threads=1).precision == "int8"
