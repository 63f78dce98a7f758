"""The one place that chooses a runtime for the network and imports it.

features.network.base holds what every runtime shares and imports none of them; the
runtimes (features.network.torch, features.network.onnx) build on the base. Only this
module imports a runtime, inside the function that needs it, so there is no import circle
and a run that needs only one runtime never loads the other.
"""
from __future__ import annotations

import config
from features.network.base import (
    SPECS,
    Embedder,
    ModelSpec,
    resolve_model,
    resolve_precision,
    resolve_runtime,
    verified_weights,
)


def load_embedder(name: str, precision: str | None = None, runtime: str | None = None,
                  threads: int | None = None) -> Embedder:
    """The verified ImageNet model ``name`` (``auto`` resolved first), ready for inference.

    precision: default config.EMBED_PRECISION; runtime: default config.EMBED_RUNTIME (a stamp's
    ``embedding_runtime`` is accepted as is); threads: the network's intra-op threads (None: one
    per core on ONNX Runtime, torch's current setting on torch). On ONNX Runtime the model is
    exported once and cached (features/network/cache.py); loading it from the cache imports no torch.
    """
    precision = precision or config.EMBED_PRECISION
    runtime = resolve_runtime(runtime, precision)
    precision = resolve_precision(precision, runtime)
    name = resolve_model(name)
    path, digest = verified_weights(name)
    if runtime == "torch":
        from features.network import torch as torch_net  # torch is heavy: only imported for this runtime

        return torch_net.TorchEmbedder(SPECS[name], torch_net.load_network(name, path), digest, precision, threads)
    from features.network import onnx as onnx_net  # onnxruntime is heavy: only imported for this runtime

    return onnx_net.load(SPECS[name], path, digest, precision, threads)


def embedder_from_network(spec: ModelSpec, network, weights_sha256: str, precision: str = "float32",
                          runtime: str | None = None, threads: int | None = None) -> Embedder:
    """An Embedder for a torch network that has no weights file (random weights, for benchmarks
    and tests): on ONNX Runtime it is exported to a temporary file, never to the cache."""
    runtime = resolve_runtime(runtime, precision)
    precision = resolve_precision(precision, runtime)
    if runtime == "torch":
        from features.network import torch as torch_net  # torch is heavy: only imported for this runtime

        return torch_net.TorchEmbedder(spec, network, weights_sha256, precision, threads)
    from features.network import onnx as onnx_net  # onnxruntime is heavy: only imported for this runtime

    return onnx_net.from_network(spec, network, weights_sha256, precision, threads)

