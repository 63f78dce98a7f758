"""Model code paths: ResNet18 with random weights (never used for real extraction), the
weights hash check with fake files, the auto fallback to EfficientNet-Lite0, and naming
ResNet18's file without torchvision."""
import hashlib
import io
import logging
import os

import numpy as np
import pytest
import skimage
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import ResNet18_Weights, resnet18

import config
from features.decode import resize_shorter_side
from features.network import base, loader
from features.network.base import SPECS, WeightsError
from features.network.torch import TorchEmbedder, build_network
from samples import random_photo


@pytest.fixture
def random_resnet18():
    torch.manual_seed(0)
    return TorchEmbedder(SPECS["resnet18"], build_network("resnet18"), weights_sha256="random-init-for-tests")


def test_resnet18_path_shape_and_determinism(random_resnet18):
    images = [resize_shorter_side(random_photo(s, (300, 200)), 256) for s in range(3)]
    first = random_resnet18(images)
    assert first.shape == (3, 512) and first.dtype == np.float32
    assert np.array_equal(first, random_resnet18(images))
    # batching does not change an image's embedding
    np.testing.assert_allclose(random_resnet18(images[1:2])[0], first[1], rtol=1e-4, atol=1e-5)


def test_preprocessing_normalises_like_torchvision(random_resnet18):
    crop = base.centre_crop(resize_shorter_side(random_photo(9, (260, 300)), 256))
    reference = transforms.Normalize(SPECS["resnet18"].mean, SPECS["resnet18"].std)(
        torch.from_numpy(crop).permute(2, 0, 1).float() / 255.0)
    with torch.inference_mode():
        expected = random_resnet18.network(reference[None].contiguous(memory_format=torch.channels_last))
    np.testing.assert_allclose(random_resnet18.embed_crops(crop[None]), expected.numpy(), rtol=1e-4, atol=1e-4)


def _fake_weights(monkeypatch, tmp_path, content, claimed_prefix=None):
    path = tmp_path / "resnet18-fake.pth"
    path.write_bytes(content)
    prefix = claimed_prefix or hashlib.sha256(content).hexdigest()[:8]
    monkeypatch.setitem(base.WEIGHT_FILES, "resnet18", lambda: (str(path), prefix))
    return path


def test_the_model_and_runtime_choices_are_listed_once():
    """config lists the choices; every model named there has a spec and a weights file, and
    every precision runs on some runtime."""
    assert set(config.MODEL_CHOICES) == {"auto", *SPECS} == {"auto", *base.WEIGHT_FILES}
    assert set(base.RUNTIME_PRECISIONS) == set(config.RUNTIME_CHOICES)
    assert set(config.PRECISION_CHOICES) == {p for allowed in base.RUNTIME_PRECISIONS.values() for p in allowed}


def test_missing_resnet18_weights_name_the_file_and_hash(monkeypatch, tmp_path):
    monkeypatch.setitem(base.WEIGHT_FILES, "resnet18", lambda: (str(tmp_path / "resnet18-f37072fd.pth"), "f37072fd"))
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth.*f37072fd"):
        loader.load_embedder("resnet18", runtime="torch")
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth.*f37072fd"):
        loader.load_embedder("resnet18", runtime="onnxruntime")


def test_weights_with_the_wrong_hash_are_refused(monkeypatch, tmp_path):
    _fake_weights(monkeypatch, tmp_path, b"not really weights", claimed_prefix="f37072fd")
    for runtime in ("torch", "onnxruntime"):
        with pytest.raises(WeightsError, match="not the published weights"):
            loader.load_embedder("resnet18", runtime=runtime)


def test_auto_falls_back_to_efficientnet_with_a_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(base.WEIGHT_FILES, "resnet18", lambda: (str(tmp_path / "absent.pth"), "f37072fd"))
    with caplog.at_level(logging.WARNING):
        assert base.resolve_model("auto") == "efficientnet_lite0"
    assert "EfficientNet-Lite0" in caplog.text and "absent.pth" in caplog.text


def test_auto_uses_resnet18_when_its_weights_verify(monkeypatch, tmp_path):
    buffer = io.BytesIO()
    torch.manual_seed(1)
    torch.save(resnet18(weights=None).state_dict(), buffer)
    path = _fake_weights(monkeypatch, tmp_path, buffer.getvalue())
    assert base.resolve_model("auto") == "resnet18"
    embedder = loader.load_embedder("auto", runtime="torch")
    assert embedder.spec.name == "resnet18" and embedder.runtime == "torch"
    assert embedder.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unknown_model_is_a_value_error_listing_choices():
    with pytest.raises(ValueError, match="auto, resnet18, efficientnet_lite0"):
        base.resolve_model("vgg16")


def test_efficientnet_lite0_real_weights_recognise_a_cat():
    """The fallback model is really ImageNet-trained: the sample cat photo is a cat class."""
    embedder = loader.load_embedder("efficientnet_lite0", runtime="torch")
    with Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", "chelsea.png")) as image:
        crop = base.centre_crop(resize_shorter_side(image.convert("RGB"), 256))
    x = (torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0 - 0.5) / 0.5
    with torch.inference_mode():
        logits = embedder.network.net(x)
    assert int(logits.argmax()) in range(281, 286)  # ImageNet's domestic cat classes


def test_resnet18_file_name_is_torchvisions_without_importing_it():
    """The hard-coded name (so that ``auto`` needs no torchvision import) is torchvision's own."""
    assert ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1] == base.RESNET18_FILE
    path, prefix = base.resnet18_weights_file()
    assert path == os.path.join(torch.hub.get_dir(), "checkpoints", "resnet18-f37072fd.pth") and prefix == "f37072fd"


def test_torch_hub_dir_follows_torch_home_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert base.torch_hub_dir() == torch.hub.get_dir() == str(tmp_path / "th" / "hub")
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert base.torch_hub_dir() == torch.hub.get_dir() == str(tmp_path / "xdg" / "torch" / "hub")
