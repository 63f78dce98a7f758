"""Export a torch network (with its ImageNet normalisation) to an ONNX file, once.

Imports torch: only reached when no verified ONNX file is cached yet.
"""
from __future__ import annotations

import warnings

import torch

from features.network.base import ModelSpec
from features.network.cache import INPUT, OPSET, OUTPUT
from features.network.torch import Preprocessed, load_network


def export(spec: ModelSpec, network: torch.nn.Module, path: str) -> None:
    """Write ``network`` with uint8 NHWC (n, size, size, 3) inputs (size: ``spec.input_size``) in
    and float32 embeddings out, any batch size."""
    module = Preprocessed(spec, network.eval().to(memory_format=torch.contiguous_format)).eval()
    example = torch.zeros(2, spec.input_size, spec.input_size, 3, dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns about shape inference and constant folding it cannot
        # do on these graphs; the result is checked against torch by tests/test_onnx.py.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), path, opset_version=OPSET, dynamo=False,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "n"}, OUTPUT: {0: "n"}})


def export_weights(name: str, spec: ModelSpec, weights_path: str, path: str) -> None:
    """Export the verified weights at ``weights_path`` (checked by the caller) to ``path``."""
    export(spec, load_network(name, weights_path), path)


def torch_version() -> str:
    return torch.__version__
