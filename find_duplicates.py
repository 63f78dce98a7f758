"""Find every group of near-duplicates in the collection; a keeper each; nothing deleted.

    python find_duplicates.py --db photos.db                  # summary and the largest groups
    python find_duplicates.py --db photos.db --json dups.json --csv dups.csv --out sheet.png
    python find_duplicates.py --db photos.db --move-to ~/copies   # moves the non-keepers (opt-in)
    python find_duplicates.py --undo ~/copies/undo-....json       # puts them back

The keeper of a group is the original: files under a --prefer folder first, then the most
pixels, then the oldest date taken (EXIF, else mtime), then a name without copy marks
("copy", "(1)", "-1", "edited", ...), then the largest file, then the first path. Groups have no
chains (--linkage star): every member is a copy of its keeper. --threshold is a cosine distance of
the embeddings (default 0.18; pHashes within 7 bits also join copies whose embeddings are within 0.5), or
bits in a hash mode (--mode phash: default 4). --move-to checks each file against the DB
first (a changed copy stays; a group whose keeper is gone or changed is skipped; symlinks are
never kept or moved) and tells the DB what moved: the next generator.py run reports them as
moved out, and --undo brings their rows back without extraction.
"""
import argparse
import csv
import json
import logging
import os
from datetime import datetime, timezone

import config
from cleanup.move import move_copies, read_manifest, undo_moves
from cli import UsageError, run, setup_logging
from db import ScanLock, connect
from db.decisions import KEEP, forget_decisions, list_decisions, paths_by_hash
from duplicates import find_duplicates
from duplicates.finder import LINKAGES, SIMILAR_THRESHOLD
from duplicates.report import COPY, EXACT, KINDS, SIMILAR
from fileio import atomic_write
from viz.duplicate_sheet import save_duplicate_sheet

log = logging.getLogger("find_duplicates")

CSV_COLUMNS = ("group", "group_kind", "path", "keep", "kind", "distance", "width", "height", "bytes", "date",
               "reason")
LARGEST_SHOWN = 10


def member_facts(member):
    """What a reviewer needs of one member: its kind, pixels, bytes, date and why it is (not) kept."""
    return {"path": member.path, "kind": member.kind, "distance": member.distance, "width": member.width,
            "height": member.height, "pixels": (member.width or 0) * (member.height or 0), "bytes": member.size,
            "date": _date(member), "date_source": "exif" if member.taken_ns is not None else "mtime",
            "reason": member.reason}


def _date(member):
    ns = member.taken_ns if member.taken_ns is not None else member.mtime_ns
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def write_json(report, path):
    data = {"groups": [{"paths": g.paths, "keep": g.keep, "distances": g.distances, "kind": g.kind,
                        "members": [member_facts(m) for m in g.members]}
                       for g in report.groups], "settings": report.settings}
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)


def write_csv(report, path):
    """One row per image in a group, the keeper first in each group."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for number, group in enumerate(report.groups, 1):
            for k, m in enumerate(group.members):
                writer.writerow([number, group.kind, m.path, "yes" if k == 0 else "no", m.kind, f"{m.distance:.6g}",
                                 m.width or "", m.height or "", m.size, _date(m), m.reason])


def summary(report, largest=LARGEST_SHOWN):
    """Lines a person reads: totals, then the largest groups."""
    s = report.settings
    count = {kind: sum(g.kind == kind for g in report.groups) for kind in KINDS}
    copies = [g for g in report.groups if g.kind != SIMILAR]
    held = sum(len(g.members) for g in copies)
    lines = [f"{len(copies)} groups of copies ({count[EXACT]} of byte-identical files, {count[COPY]} of edited "
             f"copies) among {s['images']} images ({s['mode']}, {s['metric']} <= {s['threshold']}, {s['linkage']} "
             f"groups{', any orientation' if s['any_orientation'] else ''}; {s['seconds']:.1f} s)",
             f"{held} images in groups of copies; removing the {held - len(copies)} non-keepers would free "
             f"{_size(report.bytes_freed)}"]
    aligned = s.get("alignment")
    if aligned:
        lines.append(f"aligned {aligned['pairs']} close pairs by their keypoints (reading {aligned['pictures']} "
                     f"pictures, {aligned['unreadable']} unreadable; {aligned['seconds']:.1f} s): {aligned['copy']} "
                     f"copies, {aligned['apart']} apart, {aligned['unknown']} too plain to tell (left to the "
                     f"embeddings)")
    if s.get("similar_threshold") is not None:
        lines.append(f"{count[SIMILAR]} groups of similar shots (cosine <= {s['similar_threshold']}; different "
                     f"pictures: nothing to free)")
    for number, group in enumerate(report.groups[:largest], 1):
        lines.append(f"group {number} ({group.kind}, {len(group.members)} images): keep {group.keep}")
        lines += [f"    {m.distance:.4f}  {m.kind:7}  {m.path}  ({m.reason})" for m in group.members[1:]]
    if len(report.groups) > largest:
        lines.append(f"... and {len(report.groups) - largest} more groups (--json / --csv list them all)")
    return "\n".join(lines)


def _size(n):
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _threshold(text):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--threshold must be a number, got {text!r}") from None
    return int(value) if value.is_integer() and "." not in text else value


def _similar(value):
    if isinstance(value, bool):
        return value
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"--similar must be a cosine distance such as {SIMILAR_THRESHOLD}, got {value!r}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help=f"DB made by generator.py + main.py (default: {config.DB_PATH}; with --undo: "
                                     f"the manifest's)")
    parser.add_argument("--mode", default="embeddings", help="embeddings (default) or a hash: ahash, dhash, phash")
    parser.add_argument("--threshold", help="largest distance between copies (default: the measured one per mode)")
    parser.add_argument("--any-orientation", action="store_true", help="also mirrored and 90-degree turned copies")
    parser.add_argument("--no-align", action="store_true",
                        help="do not read the pictures to align close pairs (faster; the embeddings and pHashes alone "
                             "decide, so burst frames count as copies)")
    parser.add_argument("--linkage", default=LINKAGES[0], choices=LINKAGES,
                        help="star (default: every image a copy of its group's keeper), complete (a copy of every "
                             "other member) or chain (connected pairs: A~B, B~C join A and C)")
    parser.add_argument("--similar", nargs="?", const=True, default=False, metavar="T",
                        help=f"also groups of similar shots (bursts, the same scene twice), their own kind; T: the "
                             f"band's far end, a cosine distance (default {SIMILAR_THRESHOLD})")
    parser.add_argument("--prefer", action="append", default=[], metavar="FOLDER",
                        help="files under this folder are keepers first (repeatable: the first given wins)")
    parser.add_argument("--json", help="write every group as JSON")
    parser.add_argument("--csv", help="write one row per image in a group")
    parser.add_argument("--out", help="write a contact sheet PNG (one row per group; more pages past 50 groups)")
    parser.add_argument("--move-to", help="move every non-keeper under this folder (keeps relative paths; "
                                          "writes an undo manifest there; never overwrites)")
    parser.add_argument("--list-decisions", action="store_true",
                        help="list the reviewer's decisions stored in the DB (not duplicates, keep instead), then stop")
    parser.add_argument("--forget-decisions", action="store_true", help="delete every stored decision, then stop")
    parser.add_argument("--undo", metavar="MANIFEST", help="move the files of an undo manifest back, then stop")
    args = parser.parse_args(argv)
    setup_logging()
    if args.undo:
        return undo(args.undo, args.db)
    args.db = args.db or config.DB_PATH
    conn = connect(args.db)
    if args.list_decisions or args.forget_decisions:
        return decisions(conn, args.forget_decisions)
    report = find_duplicates(conn.cursor(), args.mode, _threshold(args.threshold), any_orientation=args.any_orientation,
                             linkage=args.linkage, prefer=args.prefer, similar=_similar(args.similar),
                             align=not args.no_align)
    print(summary(report))
    for option, write in ((args.json, write_json), (args.csv, write_csv)):
        if option:
            write(report, option)
            print(f"wrote {option}")
    if args.out:
        for page in save_duplicate_sheet(report.groups, args.out):
            print(f"wrote {page}")
    if args.move_to:
        with ScanLock(args.db):  # no rescan changes the rows while files leave
            # Similar shots are different pictures: never moved.
            copies = [g for g in report.groups if g.kind != SIMILAR]
            result = move_copies(conn, copies, report.settings["root"], args.move_to)
        for line in result.notes:
            print(line)
        print(f"moved {result.moved} files ({_size(result.bytes)}) under {args.move_to}; "
              f"undo with: python find_duplicates.py --undo {result.manifest}")
    return 0


def decisions(conn, forget):
    """--list-decisions / --forget-decisions: each decision with the files that have its pictures now."""
    if forget:
        print(f"forgot {forget_decisions(conn)} decisions")
        return 0
    stored = list_decisions(conn)
    paths = paths_by_hash(conn, [h for d in stored for h in (d.a, d.b) if h])
    name = lambda digest: ", ".join(paths.get(digest, [])) or f"(no file now: {digest.hex()[:12]})"  # noqa: E731
    print(f"{len(stored)} decisions")
    for d in stored:
        when = datetime.fromtimestamp(d.decided_ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M")
        if d.decision == KEEP:
            print(f"{when}  keep            {name(d.a)}")
        else:
            print(f"{when}  not duplicates  {name(d.a)}  |  {name(d.b)}")
    return 0


def undo(manifest, db_path=None):
    """Files back, and with the DB the manifest names (or --db) their rows as they were."""
    db_path = db_path or read_manifest(manifest).get("db")
    if not db_path or not os.path.exists(db_path):
        result = undo_moves(manifest)
        note = f"; no DB at {db_path}: run generator.py on the collection" if db_path else ""
    else:
        conn = connect(db_path)
        try:
            with ScanLock(db_path):
                result = undo_moves(manifest, conn)
        finally:
            conn.close()
        note = f"; {result.rows} DB rows back as ok (no extraction needed)" if result.rows else ""
    print(f"moved {result.restored} files back{note}" +
          (f"; {len(result.skipped)} left where they are:" if result.skipped else ""))
    for line in result.skipped:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    run(main)
