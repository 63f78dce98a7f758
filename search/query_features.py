"""How a query image becomes a feature row: always with the settings and model stamped in the DB.

Query images from outside the collection are decoded and featurised exactly as the
extraction did it (same shared decoded copy, same functions, the DB's model and precision),
so an outside copy of a stored image lands at distance ~0. The network is loaded once per
process: loading it costs far more than a search.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

import config
from config import InvalidInputError
from db.errors import SettingsMismatchError
from features.decode import ImageDecodeError, TooManyPixelsError, decode
from features.extract import Settings
from features.framing import OLD_DBS_FRAMING
from features.hashes import packed_hashes
from features.histogram import rgb_histograms

_EMBEDDERS: dict = {}


class QueryImageError(InvalidInputError):
    """A query image that cannot be read or decoded; the message is one line."""


class QueryTooLargeError(QueryImageError):
    """A query image over the collection's decompression-bomb limit (the web app's 413)."""


def settings_for(stamp: dict) -> Settings:
    """Extraction settings equal to those the DB's features were made with."""
    if not stamp:
        raise SettingsMismatchError("the DB has no features yet: run `python main.py` first")
    return Settings(model=stamp["embedding_model"], hash_size=int(stamp["hash_size"]),
                    hist_bins=int(stamp["hist_bins"]), decode_side=int(stamp["decode_side"]),
                    max_pixels=config.MAX_IMAGE_PIXELS, framing=framing_of(stamp))


def framing_of(stamp: dict) -> str:
    """How the DB's network saw its pictures (a DB stamped before framings were recorded: centre crops)."""
    return stamp.get("embedding_framing", OLD_DBS_FRAMING)


def embedder_for(stamp: dict):
    """The DB's embedding model, with weights whose hash equals the stamped one."""
    # Imported here: the network runtime is heavy, and only embedding queries from outside
    # images need it.
    from features.network.loader import load_embedder

    name, precision = stamp["embedding_model"], stamp["embedding_precision"]
    runtime = stamp.get("embedding_runtime")
    key = (name, precision, runtime)
    if key not in _EMBEDDERS:  # queries embed as the DB did: its model, precision and runtime
        _EMBEDDERS[key] = load_embedder(name, precision, runtime=None if runtime == "unrecorded" else runtime)
    embedder = _EMBEDDERS[key]
    if embedder.weights_sha256 != stamp["embedding_weights_sha256"]:
        raise SettingsMismatchError(
            f"the DB's {name} features were made with weights {stamp['embedding_weights_sha256'][:12]}…, "
            f"this machine has {embedder.weights_sha256[:12]}…: re-extract with `python main.py --reset-features`"
        )
    return embedder


def decode_bytes(data: bytes, stamp: dict, name: str = "query image") -> Image.Image:
    """Bytes -> the shared decoded copy, as the extraction made it for this DB."""
    settings = settings_for(stamp)
    if not data:
        raise QueryImageError(f"{name}: empty file")
    try:
        return decode(data, settings.decode_side, settings.max_pixels)
    except TooManyPixelsError as exc:  # the collection's advice (raise the limit, retry errors) is not for a query
        raise QueryTooLargeError(f"{name}: more than {exc.limit} pixels, this collection's decompression-bomb "
                              f"limit: send a smaller copy") from None
    except ImageDecodeError as exc:
        raise QueryImageError(f"{name}: {exc}") from None


def embeddings_of(images: list, stamp: dict) -> np.ndarray:
    """Raw embeddings, framed as the DB's pictures were (search.transform makes search vectors of them)."""
    return embedder_for(stamp)(images, framing_of(stamp))


def histograms_of(images: list, stamp: dict) -> np.ndarray:
    return rgb_histograms(images, settings_for(stamp).hist_bins)


def hashes_of(kind: str):
    """A function (images, stamp) -> packed ``kind`` hashes, made as the extraction makes them."""
    def compute(images: list, stamp: dict) -> np.ndarray:
        return packed_hashes([image.convert("L") for image in images], kind, settings_for(stamp).hash_size)

    return compute
