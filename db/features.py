"""Feature rows: written per batch by main.py, read as whole columns by the search.

Features are keyed by the file's content hash, so identical files share one row and a
moved file keeps its features.
"""
from db.images import ERROR, OK, PENDING
from db.meta import bump_generation, clear_stamp

# The blob column of each search mode: a fixed whitelist, never user text in SQL.
FEATURE_COLUMNS = ("embedding", "rgb", "ahash", "dhash", "phash")


def write_batch(conn, extracted, failed):
    """Store one batch in one transaction.

    extracted: [(image_id, size, mtime_ns, content_hash, {column: blob})];
    failed: [(image_id, size, mtime_ns, reason)]. A row whose file changed since the scan
    (size or mtime differ) is left pending for the next rescan.
    """
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO features(content_hash, embedding, rgb, ahash, dhash, phash)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(h, *(blobs[c] for c in FEATURE_COLUMNS)) for _, _, _, h, blobs in extracted],
        )
        conn.executemany(
            "UPDATE images SET status = ?, reason = NULL, content_hash = ?"
            " WHERE id = ? AND size = ? AND mtime_ns = ? AND status = ?",
            [(OK, h, i, size, mtime, PENDING) for i, size, mtime, h, _ in extracted],
        )
        conn.executemany(
            "UPDATE images SET status = ?, reason = ?, content_hash = NULL"
            " WHERE id = ? AND size = ? AND mtime_ns = ? AND status = ?",
            [(ERROR, reason, i, size, mtime, PENDING) for i, size, mtime, reason in failed],
        )
        bump_generation(conn)


def delete_orphans(conn):
    """Drop features no image points at any more (deleted or changed files); returns the count."""
    with conn:
        cur = conn.execute(
            "DELETE FROM features WHERE content_hash NOT IN"
            " (SELECT content_hash FROM images WHERE content_hash IS NOT NULL)"
        )
        if cur.rowcount:
            bump_generation(conn)
    return cur.rowcount


def reset_features(conn):
    """Forget every feature and the stamp, in one transaction: all images go back to pending
    (``main.py --reset-features``)."""
    with conn:
        clear_stamp(conn)
        conn.execute("DELETE FROM features")
        conn.execute("UPDATE images SET status = ?, reason = NULL, content_hash = NULL", (PENDING,))
        bump_generation(conn)


def load_column(conn, column):
    """(ids, paths, blobs) of every usable image for one feature column, ordered by id."""
    rows = [row for chunk in column_chunks(conn, column) for row in chunk]
    if not rows:
        return [], [], []
    ids, paths, blobs = zip(*rows)
    return list(ids), list(paths), list(blobs)


def column_chunks(conn, column, size=16384):
    """Like load_column, streamed: lists of (id, path, blob) of at most ``size`` rows.

    One statement, so one consistent snapshot, with memory bounded by ``size`` rows.
    """
    if column not in FEATURE_COLUMNS:
        raise ValueError(f"unknown feature column {column!r}; valid: {', '.join(FEATURE_COLUMNS)}")
    cursor = conn.execute(
        f"SELECT i.id, i.path, f.{column} FROM images AS i JOIN features AS f"
        " ON f.content_hash = i.content_hash WHERE i.status = ? ORDER BY i.id",
        (OK,),
    )
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows

