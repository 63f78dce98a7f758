"""The meta table: schema version, dataset root, feature settings and the generation.

The generation is bumped by every write transaction, so anything derived from the DB
(matrices in memory, the ann_cosine index, caches on disk) can tell whether it is still current.

The features stamp is whatever dict extraction passes in (its keys are defined once, in
features.extract.STAMP_KEYS); the DB records which keys it holds, so this module keeps no
copy of that list.
"""
import sqlite3
from collections.abc import Mapping

from db.errors import DatasetRootError, SettingsMismatchError

STAMP_KEYS_KEY = "stamp_keys"  # meta key listing the keys of the stored stamp, comma-separated
# A DB stamped before it recorded its stamp's keys holds exactly these: a fact about old files,
# not a definition of the stamp.
_KEYS_OF_UNLISTED_STAMPS = (
    "embedding_model", "embedding_weights_sha256", "embedding_dim", "vector_dtype",
    "rgb_dim", "hist_bins", "hash_size", "decode_side", "embedding_precision",
)


def get_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta"))


def set_meta(conn: sqlite3.Connection, items: Mapping[str, object]) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in items.items()])


def generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def version(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """(generation, write token): names the DB's exact content for caches on disk.

    The token is random per write, so two histories that reach the same generation (a
    restored backup written to again, a DB recreated at the same path) never share a name.
    It is None for a DB nothing has been written to since tokens were introduced.
    """
    values = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'write_token')"))
    return int(values["generation"]), values.get("write_token")


def bump_generation(conn: sqlite3.Connection) -> None:
    """Call inside every write transaction."""
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('write_token', lower(hex(randomblob(8))))")


def dataset_root(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'dataset_root'").fetchone()
    return row[0] if row else None


def claim_dataset_root(conn: sqlite3.Connection, root: str) -> None:
    """Record ``root`` as the indexed folder, or refuse if the DB indexes another one."""
    current = dataset_root(conn)
    if current is None:
        with conn:
            set_meta(conn, {"dataset_root": root})
    elif current != root:
        raise DatasetRootError(f"this DB indexes {current}, not {root}: pass --db with another file for another folder")


def _stored_stamp_keys(meta: Mapping[str, str]) -> tuple[str, ...] | None:
    if STAMP_KEYS_KEY in meta:
        return tuple(meta[STAMP_KEYS_KEY].split(","))
    return _KEYS_OF_UNLISTED_STAMPS if "embedding_model" in meta else None


def features_stamp(conn: sqlite3.Connection) -> dict[str, str] | None:
    """The stamp of the stored features, or None when nothing was extracted yet."""
    meta = get_meta(conn)
    keys = _stored_stamp_keys(meta)
    if keys is None:
        return None
    return {key: meta.get(key, "unrecorded") for key in keys}


def check_or_write_stamp(conn: sqlite3.Connection, stamp: Mapping[str, object]) -> None:
    """Stamp an empty DB with ``stamp``; refuse a DB stamped with anything else."""
    stamp = {key: str(value) for key, value in stamp.items()}
    current = features_stamp(conn)
    if current is None:
        with conn:
            set_meta(conn, {**stamp, STAMP_KEYS_KEY: ",".join(stamp)})
        return
    keys = list(stamp) + [key for key in current if key not in stamp]
    diff = {k: (current.get(k, "unrecorded"), stamp.get(k, "unrecorded")) for k in keys
            if current.get(k, "unrecorded") != stamp.get(k, "unrecorded")}
    if diff:
        said = ", ".join(f"{k}: DB has {old}, asked for {new}" for k, (old, new) in diff.items())
        raise SettingsMismatchError(
            f"features in this DB were made with other settings ({said}); use the DB's settings, "
            f"or re-extract everything with `python main.py --reset-features`"
        )


def add_to_stamp(conn: sqlite3.Connection, items: Mapping[str, object]) -> None:
    """Record keys a stamp gained after the DB was stamped (the values its features were made
    with); keys it holds already are left alone."""
    current = features_stamp(conn)
    if current is None:
        raise SettingsMismatchError("nothing extracted yet: there is no stamp to add to")
    new = {key: str(value) for key, value in items.items() if key not in current}
    if new:
        with conn:
            set_meta(conn, {**new, STAMP_KEYS_KEY: ",".join([*current, *new])})


def clear_stamp(conn: sqlite3.Connection) -> None:
    """Forget the stamp (inside the caller's transaction)."""
    keys = _stored_stamp_keys(get_meta(conn)) or ()
    conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in (*keys, STAMP_KEYS_KEY)])
