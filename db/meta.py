"""The meta table: schema version, dataset root, feature settings and the generation.

The generation is bumped by every write transaction, so anything derived from the DB
(matrices in memory, the Annoy index, caches on disk) can tell whether it is still current.
"""
from db.errors import DatasetRootError, SettingsMismatchError

# Keys a features stamp consists of; a DB refuses features made with different values.
STAMP_KEYS = (
    "embedding_model", "embedding_weights_sha256", "embedding_dim", "vector_dtype",
    "rgb_dim", "hist_bins", "hash_size", "decode_side", "embedding_precision",
)


def get_meta(conn):
    return dict(conn.execute("SELECT key, value FROM meta"))


def set_meta(conn, items):
    conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(k, str(v)) for k, v in items.items()])


def generation(conn):
    return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def version(conn):
    """(generation, write token): names the DB's exact content for caches on disk.

    The token is random per write, so two histories that reach the same generation (a
    restored backup written to again, a DB recreated at the same path) never share a name.
    It is None for a DB nothing has been written to since tokens were introduced.
    """
    values = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'write_token')"))
    return int(values["generation"]), values.get("write_token")


def bump_generation(conn):
    """Call inside every write transaction."""
    conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('write_token', lower(hex(randomblob(8))))")


def dataset_root(conn):
    row = conn.execute("SELECT value FROM meta WHERE key = 'dataset_root'").fetchone()
    return row[0] if row else None


def claim_dataset_root(conn, root):
    """Record ``root`` as the indexed folder, or refuse if the DB indexes another one."""
    current = dataset_root(conn)
    if current is None:
        with conn:
            set_meta(conn, {"dataset_root": root})
    elif current != root:
        raise DatasetRootError(f"this DB indexes {current}, not {root}: pass --db with another file for another folder")


def features_stamp(conn):
    """The stamp of the stored features, or None when nothing was extracted yet."""
    meta = get_meta(conn)
    if "embedding_model" not in meta:
        return None
    return {key: meta.get(key, "unrecorded") for key in STAMP_KEYS}


def check_or_write_stamp(conn, stamp):
    """Stamp an empty DB with ``stamp``; refuse a DB stamped with anything else."""
    stamp = {key: str(stamp[key]) for key in STAMP_KEYS}
    current = features_stamp(conn)
    if current is None:
        with conn:
            set_meta(conn, stamp)
        return
    diff = {k: (current[k], stamp[k]) for k in STAMP_KEYS if current[k] != stamp[k]}
    if diff:
        said = ", ".join(f"{k}: DB has {old}, asked for {new}" for k, (old, new) in diff.items())
        raise SettingsMismatchError(
            f"features in this DB were made with other settings ({said}); use the DB's settings, "
            f"or re-extract everything with `python main.py --reset-features`"
        )


def clear_stamp(conn):
    conn.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in STAMP_KEYS])
