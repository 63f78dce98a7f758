"""The model and settings a query must use: always the ones stamped in the DB.

Loaded once per process, because loading a network costs far more than a search.
"""
import config
from db.errors import SettingsMismatchError
from features.extract import Settings

_EMBEDDERS = {}


def settings_for(stamp):
    """Extraction settings equal to those the DB's features were made with."""
    if not stamp:
        raise SettingsMismatchError("the DB has no features yet: run `python main.py` first")
    return Settings(model=stamp["embedding_model"], hash_size=int(stamp["hash_size"]),
                    hist_bins=int(stamp["hist_bins"]), decode_side=int(stamp["decode_side"]),
                    max_pixels=config.MAX_IMAGE_PIXELS)


def embedder_for(stamp):
    """The DB's embedding model, with weights whose hash equals the stamped one."""
    from features.embeddings import load_embedder

    name, precision = stamp["embedding_model"], stamp["embedding_precision"]
    if (name, precision) not in _EMBEDDERS:
        _EMBEDDERS[name, precision] = load_embedder(name, precision)  # queries embed as the DB did
    embedder = _EMBEDDERS[name, precision]
    if embedder.weights_sha256 != stamp["embedding_weights_sha256"]:
        raise SettingsMismatchError(
            f"the DB's {name} features were made with weights {stamp['embedding_weights_sha256'][:12]}…, "
            f"this machine has {embedder.weights_sha256[:12]}…: re-extract with `python main.py --reset-features`"
        )
    return embedder
