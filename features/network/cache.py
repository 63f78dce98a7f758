"""Where the exported ONNX models live, and how a cached one is trusted.

A model is exported once per (weights, precision, export settings) and kept beside the
weights file, or, where that folder is not writable, in the user's cache folder
(``$XDG_CACHE_HOME/image-recommender/onnx``, by default ``~/.cache/image-recommender/onnx``).
``IR_ONNX_CACHE_DIR`` puts it somewhere else. Each ``<name>.onnx`` has a sidecar
``<name>.onnx.json`` with the SHA-256 of the ONNX file itself, the weights' SHA-256 and the
export settings. A file is used only if all of these match: a damaged, truncated, foreign or
stale file is exported again, never trusted. Both files are written atomically (fileio).

No torch here: this is the path every query and extraction run takes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable

import config
from fileio import atomic_write, write_with

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the exported graph changes (its input, output or preprocessing)
OPSET = 17
INPUT, OUTPUT = "crops", "embeddings"
# What the exported graph is; a cached file must have been made with exactly these.
EXPORT_SETTINGS = {"format": FORMAT, "opset": OPSET, "exporter": "torch.onnx.export(dynamo=False)",
                   "input": f"{INPUT}: uint8 (n, 224, 224, 3)", "output": f"{OUTPUT}: float32 (n, dim)"}


def export_settings(input_size: int = 224) -> dict:
    """EXPORT_SETTINGS for a network whose input square has side ``input_size``."""
    return {**EXPORT_SETTINGS, "input": f"{INPUT}: uint8 (n, {input_size}, {input_size}, 3)"}
# What an int8 file depends on besides the float32 model (features/network/int8.py does this).
INT8_SETTINGS = {"int8_format": "QDQ", "int8_activations": "QUInt8", "int8_weights": "QInt8 per channel",
                 "int8_calibration": "MinMax on 10 packaged photos x 5 crops x 2 mirrors", "int8_version": 1}


def user_cache_dir() -> str:
    base = os.getenv("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "image-recommender", "onnx")


def cache_dirs(weights_path: str) -> list[str]:
    """Folders to look in, in order; the first writable one receives a new export."""
    if config.ONNX_CACHE_DIR:
        return [config.ONNX_CACHE_DIR]
    return [os.path.dirname(os.path.abspath(weights_path)), user_cache_dir()]


def file_name(model: str, weights_sha256: str, precision: str, variant: str = "") -> str:
    """e.g. ``efficientnet_lite0-579344246f7ca7e8-float32-opset17-v1.onnx``."""
    extra = f"-{variant}" if variant else ""
    return f"{model}-{weights_sha256[:16]}-{precision}{extra}-opset{OPSET}-v{FORMAT}.onnx"


def expected_record(model: str, weights_sha256: str, precision: str, input_size: int = 224, **extra) -> dict:
    """What the sidecar of a usable file says (plus its own ``onnx_sha256``)."""
    return {"model": model, "weights_sha256": weights_sha256, "precision": precision, **export_settings(input_size),
            **extra}


def sidecar(path: str) -> str:
    return path + ".json"


def read_verified(path: str, expected: dict) -> bytes | None:
    """The bytes of the cached model at ``path`` if it and its sidecar match ``expected``, else
    None (with the reason logged). The bytes are hashed and then handed to ONNX Runtime as they
    are, so the file cannot change between the check and the use."""
    if not os.path.exists(path):
        return None
    try:
        with open(sidecar(path), encoding="utf-8") as fh:
            record = json.load(fh)
        with open(path, "rb") as fh:
            data = fh.read()
    except (OSError, ValueError) as exc:
        log.warning("cached ONNX model %s is unusable (%s); exporting it again", path, exc)
        return None
    if not isinstance(record, dict):
        log.warning("cached ONNX model %s has a malformed sidecar; exporting it again", path)
        return None
    differing = sorted(key for key, value in expected.items() if record.get(key) != value)
    if differing:
        log.warning("cached ONNX model %s was made with other settings (%s); exporting it again",
                    path, ", ".join(differing))
        return None
    if hashlib.sha256(data).hexdigest() != record.get("onnx_sha256"):
        log.warning("cached ONNX model %s is damaged (its SHA-256 differs from its sidecar's); "
                    "exporting it again", path)
        return None
    return data


def find(dirs: list[str], name: str, expected: dict) -> tuple[str, bytes] | None:
    """(path, verified bytes) of the first usable cached copy of ``name`` in ``dirs``."""
    for folder in dirs:
        path = os.path.join(folder, name)
        data = read_verified(path, expected)
        if data is not None:
            return path, data
    return None


def writable_dir(dirs: list[str]) -> str:
    """The first folder of ``dirs`` that exists (or can be made) and is writable."""
    for folder in dirs:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK | os.X_OK):
            return folder
    raise OSError(f"no writable folder for the exported ONNX model among {', '.join(dirs)} "
                  f"(set IR_ONNX_CACHE_DIR to one)")


def store(path: str, write: Callable[[str], object], expected: dict, **info) -> bytes:
    """Write the model with ``write(tmp_path)``, then its sidecar, both atomically; returns the
    model's bytes. A crash in between leaves a model without a sidecar: not trusted, redone."""
    write_with(path, write)
    with open(path, "rb") as fh:
        data = fh.read()
    record = {**expected, **info, "onnx_sha256": hashlib.sha256(data).hexdigest()}
    with atomic_write(sidecar(path), "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
    log.info("cached the ONNX model in %s", path)
    return data
