"""The network on ONNX Runtime (CPUExecutionProvider): the default runtime.

``load`` finds the verified cached ONNX model (features/cache.py) or exports it once from
the verified torch weights; only that export imports torch. Threads are fixed per session and
chosen by the caller (extraction gives the network the cores the decode workers leave free).
"""
from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import onnxruntime as ort

from features.network import cache
from features.network.base import Embedder, ModelSpec, native_int8_dot

log = logging.getLogger(__name__)


def session_options(threads: int, spin: bool = False) -> ort.SessionOptions:
    """Sequential execution on ``threads`` intra-op threads. Idle threads sleep instead of
    spinning (``spin=False``), as torch's OpenMP threads do here (config.py): a spinning pool
    steals the cores that decode workers need."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initialisers are noise here
    return options


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxEmbedder(Embedder):
    """An InferenceSession over the exported graph (uint8 crops in, float32 embeddings out)."""

    runtime = "onnxruntime"

    def __init__(self, spec: ModelSpec, model: bytes | str, weights_sha256: str, precision: str = "float32",
                 threads: int | None = None, spin: bool = False):
        threads = threads or usable_cores()
        super().__init__(spec, weights_sha256, precision, threads)
        self.session = ort.InferenceSession(model, session_options(threads, spin), providers=["CPUExecutionProvider"])

    def embed_crops(self, crops) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.spec.dim), dtype=np.float32)
        batch = np.ascontiguousarray(crops, dtype=np.uint8)
        return self.session.run([cache.OUTPUT], {cache.INPUT: batch})[0]


def cached_model(spec: ModelSpec, weights_path: str, weights_sha256: str, precision: str) -> bytes:
    """The verified ONNX model for these weights and precision, exported (and for int8
    quantised) first if no usable copy is cached."""
    dirs = cache.cache_dirs(weights_path)
    extra = cache.INT8_SETTINGS if precision == "int8" else {}
    expected = cache.expected_record(spec.name, weights_sha256, precision, spec.input_size, **extra)
    name = cache.file_name(spec.name, weights_sha256, precision)
    found = cache.find(dirs, name, expected)
    if found is not None:
        return found[1]
    path = os.path.join(cache.writable_dir(dirs), name)
    if precision == "int8":
        from features.network import int8  # onnx and the quantiser: only for building an int8 model

        float32 = cached_model(spec, weights_path, weights_sha256, "float32")
        return cache.store(path, lambda tmp: int8.quantize(float32, tmp, size=spec.input_size), expected)
    log.info("exporting %s to ONNX (once; cached in %s)", spec.name, os.path.dirname(path))
    from features.network import export  # torch is heavy: only imported when nothing usable is cached

    return cache.store(path, lambda tmp: export.export_weights(spec.name, spec, weights_path, tmp),
                            expected, torch_version=export.torch_version(), onnxruntime_version=ort.__version__)


def load(spec: ModelSpec, weights_path: str, weights_sha256: str, precision: str,
         threads: int | None = None) -> OnnxEmbedder:
    if precision == "int8" and not native_int8_dot():
        log.warning("int8 on a CPU without VNNI: its quality was measured on CPUs with VNNI only, "
                    "and ONNX Runtime's int8 kernels may saturate here; float32 is the safe choice")
    return OnnxEmbedder(spec, cached_model(spec, weights_path, weights_sha256, precision), weights_sha256,
                        precision, threads)


def from_network(spec: ModelSpec, network, weights_sha256: str, precision: str = "float32",
                 threads: int | None = None) -> OnnxEmbedder:
    """A torch network without a weights file (random weights for benchmarks and tests),
    exported to a temporary file that is removed once the session holds the model."""
    if precision != "float32":
        raise ValueError(f"networks without a weights file run in float32 on onnxruntime, got {precision!r}")
    from features.network import export  # torch is heavy; the caller already has it, but keep it off load's path

    with tempfile.TemporaryDirectory(prefix="onnx-export-") as folder:
        path = os.path.join(folder, "network.onnx")
        export.export(spec, network, path)
        with open(path, "rb") as fh:
            return OnnxEmbedder(spec, fh.read(), weights_sha256, precision, threads)
