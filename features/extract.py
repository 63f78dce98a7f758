"""Every feature of a batch of files: paths in, one (n, d) array per feature out.

Split in two halves so a pipeline can overlap them: ``describe_file`` (read, content hash,
decode once, histogram, hashes, network crop; no network) runs in decode worker processes,
``finish_batch`` runs the network once over the whole batch. ``extract_batch`` chains the
two for callers that want one call (a Dask worker). Nothing here knows how features are
stored: the DB encodes the arrays (db/codec.py).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from features.decode import ImageDecodeError, decode, read_file
from features.exif import Exif, exif_of
from features.framing import DEFAULT_FRAMING, check_framing, frame
from features.hashes import HASH_FUNCTIONS, all_hashes
from features.histogram import rgb_histograms
from features.keypoints import of_image, to_bytes
from features.network.base import SPECS, Embedder, stamp_runtime

# The arrays a batch yields, by name: float32 vectors, then packed-bit uint8 hashes.
FEATURE_NAMES = ("embedding", "rgb", *HASH_FUNCTIONS)

# What the DB stamp records: a DB refuses features made with any other value of these.
# The one definition; db/meta.py stores whatever keys it is given.
STAMP_KEYS = (
    "embedding_model", "embedding_weights_sha256", "embedding_dim", "embedding_precision", "embedding_runtime",
    "vector_dtype", "rgb_dim", "hist_bins", "hash_size", "decode_side", "embedding_framing",
)


@dataclass(frozen=True)
class Settings:
    """Everything besides the network that changes feature values; stamped into the DB."""

    model: str  # a concrete model name, never "auto"
    hash_size: int = 8
    hist_bins: int = 8
    decode_side: int = 256
    max_pixels: int = 89_478_485
    framing: str = DEFAULT_FRAMING  # how the network sees the picture (features.framing)

    def __post_init__(self):
        check_framing(self.framing)

    @property
    def input_size(self) -> int:
        """The side of the network's input square (the model's; 224 for a model not known here)."""
        spec = SPECS.get(self.model)
        return spec.input_size if spec else 224


@dataclass
class Described:
    """One file after decoding: its features minus the embedding (picklable, ~150 kB).

    ``known``: the content hash already has features (a file seen before, e.g. moved out and
    back): nothing was decoded and the network skips it.
    """

    content_hash: bytes | None = None
    rgb: np.ndarray | None = None
    hashes: dict[str, np.ndarray] = field(default_factory=dict)
    crop: np.ndarray | None = None  # uint8 (size, size, 3) network input, framed as the settings say
    error: str | None = None
    known: bool = False
    exif: Exif | None = None  # read from the bytes already in memory (features.exif)
    keypoints: bytes | None = None  # features.keypoints.to_bytes of the shared copy (the duplicate finder's)


@dataclass(frozen=True)
class FileResult:
    """What extraction made of one file: its content hash, or why it cannot be used."""

    content_hash: bytes | None = None
    error: str | None = None  # one line, stored as the reason; None for a usable file
    known: bool = False  # features for content_hash exist already: none were computed
    exif: Exif | None = None  # the file's EXIF facts (None: not read)
    keypoints: bytes | None = None  # computed files: for db.keypoints

    @property
    def computed(self) -> bool:
        """True when this file has a row in the batch's feature arrays."""
        return self.error is None and not self.known


@dataclass
class BatchResult:
    """One result per file, in order, and the features of the files that were computed:
    ``features[name]`` is an (n, d) array whose rows follow the files with ``computed``."""

    files: list[FileResult]
    features: dict[str, np.ndarray]

    @property
    def computed_hashes(self) -> list[bytes]:
        return [f.content_hash for f in self.files if f.computed]

    @staticmethod
    def concat(parts: Sequence[BatchResult]) -> BatchResult:
        """Several batches as one (a Dask shard)."""
        if not parts:
            return BatchResult([], {})
        files = [f for part in parts for f in part.files]
        features = {name: np.concatenate([part.features[name] for part in parts]) for name in parts[0].features}
        return BatchResult(files, features)


def describe_image(image: Image.Image, settings: Settings, content_hash: bytes | None = None) -> Described:
    """Features of an already decoded shared copy (see features.decode)."""
    return Described(
        content_hash=content_hash,
        rgb=rgb_histograms([image], settings.hist_bins)[0],
        hashes={kind: packed[0] for kind, packed in all_hashes([image], settings.hash_size).items()},
        crop=frame(image, settings.framing, settings.input_size),
    )


def describe_file(path: str, settings: Settings, is_known: Callable[[bytes], bool] | None = None) -> Described:
    """Read and decode ``path`` once and compute everything but the embedding; never raises
    for a bad file: the reason is returned in ``error``. A file whose content hash
    ``is_known`` is read and hashed only."""
    try:
        data, digest = read_file(path)
        if is_known is not None and is_known(digest):
            return Described(content_hash=digest, known=True, exif=exif_of(data))
        image = decode(data, settings.decode_side, settings.max_pixels)
    except ImageDecodeError as exc:
        return Described(error=str(exc))
    described = describe_image(image, settings, digest)
    described.exif = exif_of(data)
    described.keypoints = to_bytes(of_image(image))
    return described


def finish_batch(described: Sequence[Described], embedder: Embedder, settings: Settings) -> BatchResult:
    """Run the network once over the batch's decoded files and gather every feature as arrays."""
    files = [FileResult(d.content_hash, d.error, d.known, d.exif, d.keypoints) for d in described]
    todo = [d for d, f in zip(described, files) if f.computed]
    empty = np.zeros((0, settings.input_size, settings.input_size, 3), np.uint8)
    crops = np.stack([d.crop for d in todo]) if todo else empty
    hash_bytes = -(-settings.hash_size ** 2 // 8)
    features = {
        "embedding": np.asarray(embedder.embed_crops(crops), dtype=np.float32).reshape(len(todo), embedder.spec.dim),
        "rgb": np.array([d.rgb for d in todo], dtype=np.float32).reshape(len(todo), settings.hist_bins ** 3),
    }
    for kind in HASH_FUNCTIONS:
        features[kind] = np.array([d.hashes[kind] for d in todo], dtype=np.uint8).reshape(len(todo), hash_bytes)
    return BatchResult(files, features)


def extract_batch(paths: Sequence[str], settings: Settings, embedder: Embedder,
                  is_known: Callable[[bytes], bool] | None = None) -> BatchResult:
    """Paths in, one result per path and the batch's feature arrays out."""
    return finish_batch([describe_file(p, settings, is_known) for p in paths], embedder, settings)


def stamp(settings: Settings, embedder: Embedder) -> dict[str, str]:
    """What the DB records so it never mixes features made differently (keys: STAMP_KEYS)."""
    runtime = getattr(embedder, "runtime", "torch")
    values = {
        "embedding_model": embedder.spec.name,
        "embedding_weights_sha256": embedder.weights_sha256,
        "embedding_dim": embedder.spec.dim,
        "embedding_precision": embedder.precision,  # bfloat16 and float32 vectors differ slightly: never mixed
        # Runtimes whose float32 features agree share one value (features.network.base.stamp_runtime).
        "embedding_runtime": stamp_runtime(runtime, embedder.precision),
        "vector_dtype": "float32-le",
        "rgb_dim": settings.hist_bins ** 3,
        "hist_bins": settings.hist_bins,
        "hash_size": settings.hash_size,
        "decode_side": settings.decode_side,
        "embedding_framing": settings.framing,
    }
    return {key: str(values[key]) for key in STAMP_KEYS}
