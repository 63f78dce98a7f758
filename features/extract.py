"""Extraction of every feature of a batch: a pure function of (paths, settings, model).

Split in two halves so the local pipeline can overlap them: ``describe_file`` (read, hash,
decode once, histogram, hashes, network crop; no torch) runs in decode worker processes,
``finish_batch`` runs the network on the whole batch at once. ``extract_batch`` chains the
two for callers that want one call (queries, a Dask worker).
"""
from dataclasses import dataclass, field

import numpy as np

from db.codec import vector_to_blob
from features.decode import ImageDecodeError, decode, read_file
from features.hashes import HASH_FUNCTIONS, all_hashes
from features.histogram import rgb_histograms


@dataclass(frozen=True)
class Settings:
    """Everything that changes feature values; stamped into the DB."""

    model: str  # a concrete model name, never "auto"
    hash_size: int = 8
    hist_bins: int = 8
    decode_side: int = 256
    max_pixels: int = 89_478_485


@dataclass
class Described:
    """One decoded file's features minus the embedding (picklable, small)."""

    content_hash: bytes = None
    rgb: np.ndarray = None
    hashes: dict = field(default_factory=dict)
    crop: np.ndarray = None  # uint8 (224, 224, 3) network input
    error: str = None


def describe_image(image, settings, content_hash=None):
    """Features of an already decoded shared copy (see features.decode)."""
    from features.embeddings import centre_crop  # torch-free helper, imported late on purpose

    return Described(
        content_hash=content_hash,
        rgb=rgb_histograms([image], settings.hist_bins)[0],
        hashes={kind: packed[0].tobytes() for kind, packed in all_hashes([image], settings.hash_size).items()},
        crop=centre_crop(image),
    )


def describe_file(path, settings):
    """Read and decode ``path`` once and compute everything but the embedding; never raises
    for a bad file: the reason is returned in ``error``."""
    try:
        data, digest = read_file(path)
        image = decode(data, settings.decode_side, settings.max_pixels)
    except ImageDecodeError as exc:
        return Described(error=str(exc))
    return describe_image(image, settings, digest)


def finish_batch(described, embedder):
    """Run the network once over the batch; returns [(content_hash, {column: blob}) or error str]."""
    good = [d for d in described if d.error is None]
    vectors = embedder.embed_crops(np.stack([d.crop for d in good])) if good else []
    vector_of = {id(d): v for d, v in zip(good, vectors)}
    results = []
    for d in described:
        if d.error is not None:
            results.append(d.error)
            continue
        blobs = {"embedding": vector_to_blob(vector_of[id(d)]), "rgb": vector_to_blob(d.rgb)}
        blobs.update({kind: d.hashes[kind] for kind in HASH_FUNCTIONS})
        results.append((d.content_hash, blobs))
    return results


def extract_batch(paths, settings, embedder):
    """Paths in, one result per path out: (content_hash, {column: blob}) or an error string."""
    return finish_batch([describe_file(p, settings) for p in paths], embedder)


def stamp(settings, embedder):
    """What the DB records so it never mixes features made differently."""
    return {
        "embedding_model": embedder.spec.name,
        "embedding_weights_sha256": embedder.weights_sha256,
        "embedding_dim": embedder.spec.dim,
        "embedding_precision": embedder.precision,  # bfloat16 and float32 vectors differ slightly: never mixed
        "vector_dtype": "float32-le",
        "rgb_dim": settings.hist_bins ** 3,
        "hist_bins": settings.hist_bins,
        "hash_size": settings.hash_size,
        "decode_side": settings.decode_side,
    }
