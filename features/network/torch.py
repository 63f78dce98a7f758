"""The networks in PyTorch: the architectures, the torch runtime, and the module that is exported to ONNX.

Only imported when torch is really needed (the torch runtime, or exporting the ONNX file once):
a query or an extraction run with the ONNX model cached never loads this file.
"""
from __future__ import annotations

import numpy as np
import torch

from config import InvalidInputError
from features.network.base import LITE_PACKAGES, SPECS, Embedder, ModelSpec, resolve_precision

PRECISION_DTYPES = {"bfloat16": torch.bfloat16}  # precisions computed under CPU autocast


class _PooledEfficientNet(torch.nn.Module):
    """An EfficientNet-Lite without its classifier: global-average-pooled 1280-d features."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def build_network(name: str, state_dict: dict | None = None) -> torch.nn.Module:
    """The architecture with its classifier removed; random weights unless ``state_dict``."""
    if name == "resnet18":
        from torchvision.models import resnet18  # torchvision only for ResNet18, never for Lite0

        net = resnet18(weights=None)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        net.fc = torch.nn.Identity()
        return net
    if name in LITE_PACKAGES:
        from efficientnet_lite_pytorch import EfficientNet  # only where a Lite model is used

        net = EfficientNet.from_name(name.replace("_", "-"))
        if state_dict is not None:
            net.load_state_dict(state_dict)
        return _PooledEfficientNet(net)
    raise InvalidInputError(f"unknown embedding model {name!r}; valid: {', '.join(SPECS)}")


class Preprocessed(torch.nn.Module):
    """uint8 (n, size, size, 3) framed pictures in, embeddings out: ImageNet normalisation and the
    network in one module, so that the torch runtime and the exported ONNX graph compute the
    same thing from the same input (and ONNX Runtime gets 1 byte per input value, not 4)."""

    def __init__(self, spec: ModelSpec, network: torch.nn.Module):
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        x = crops.permute(0, 3, 1, 2).float()  # NHWC storage seen as NCHW: channels_last for free
        return self.network((x - self.mean) / self.std).float()


def load_network(name: str, weights_path: str) -> torch.nn.Module:
    """The verified weights (already checked by the caller) in their architecture, in eval mode."""
    state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
    return build_network(name, state_dict).eval()


class TorchEmbedder(Embedder):
    """The network in eager PyTorch: the fallback runtime, and the only one for bfloat16.

    ``precision="bfloat16"`` runs the network under autocast (inputs and outputs stay
    float32): about twice as fast on CPUs with native bfloat16, and embeddings keep cosine
    >= 0.99 to float32 ones on real photos (tests/test_precision.py).
    """

    runtime = "torch"

    def __init__(self, spec: ModelSpec, network: torch.nn.Module, weights_sha256: str, precision: str = "float32",
                 threads: int | None = None):
        super().__init__(spec, weights_sha256, resolve_precision(precision, "torch"), threads)
        self.network = network.eval().to(memory_format=torch.channels_last)
        self.module = Preprocessed(spec, self.network).eval()
        if threads:
            torch.set_num_threads(threads)  # process-wide in torch; the caller decides

    def embed_crops(self, crops) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        dtype = PRECISION_DTYPES.get(self.precision)
        with torch.inference_mode(), torch.autocast("cpu", dtype or torch.bfloat16, enabled=dtype is not None):
            return self.module(torch.from_numpy(np.ascontiguousarray(crops, dtype=np.uint8))).numpy()
