"""Move the non-keepers of duplicate groups out of the collection, and back: never a deletion.

Why a move and not a delete: a threshold can be wrong for someone's photos, and a person
should look before anything is gone. Each file goes to ``DEST/<its path relative to the
collection root>``, so the folder structure says where it came from, and an undo manifest
(JSON, written before the first move and rewritten after the last) lists every move, so
``undo_moves`` can put each file back. Nothing is ever overwritten: a run whose target
already exists stops before moving anything, and an undo leaves a file where it is when
its original place is taken again.

The disk is checked before anything moves (cleanup.disk_check): a group whose keeper is gone
or changed since the scan is skipped, a changed copy stays, symlinks are never keepers and
never moved. The DB learns every move (db.moved_out): the rows leave the search at once, the
next generator.py run reports them as moved out, and an undo brings them back as they were.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import NamedTuple

from cleanup.disk_check import changed_since_scan, inside, through_symlink
from config import InvalidInputError
from db.connection import database_file
from db.lookup import images_by_ids
from db.moved_out import BackInPlace, MovedFile, record_moved_out, restore_moved_in
from fileio import atomic_write

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 2  # 2: "db", "finished", and per move "id", "moved" or "skipped"


class MoveError(InvalidInputError):
    """The move cannot be done safely (a target exists, the folder is or holds the collection),
    or it failed part-way (the message says how many files moved and how to undo them)."""


class MoveResult(NamedTuple):
    moved: int
    bytes: int
    manifest: str
    notes: list[str]  # one line per file or group left where it is, and why


class UndoResult(NamedTuple):
    restored: int
    skipped: list[str]  # why each other file stayed
    rows: int  # DB rows back as ok (no extraction needed)


class GroupPlan(NamedTuple):
    keeper: object  # duplicates.report.Member: a regular file
    moves: list[dict]  # {"from", "to", "size", "id"}


def plan_moves(conn, groups, root: str, dest: str) -> tuple[list[GroupPlan], list[str]]:
    """The moves of every group, and one note per member left alone; MoveError (nothing moved
    yet) if ``dest`` is inside the collection or holds it, if a destination would land inside
    it (through a symlink), if any target exists or a file lies outside ``root``."""
    root, dest = os.path.realpath(root), os.path.abspath(dest)
    if inside(os.path.realpath(dest), root):
        raise MoveError(f"--move-to {dest} is inside the collection {root}: the next scan would index the copies "
                        f"again; choose a folder outside it (nothing was moved)")
    if inside(root, os.path.realpath(dest)):
        raise MoveError(f"--move-to {dest} holds the collection {root}: copies could land inside it; choose a "
                        f"folder outside it (nothing was moved)")
    plans, notes = [], []
    for group in groups:
        linked = [m for m in group.members if through_symlink(m.path)]
        regular = [m for m in group.members if not through_symlink(m.path)]
        notes += [f"{m.path} is a symlink (or under one): left alone" for m in linked if m is not group.members[0]]
        if not regular:
            notes.append(f"skipped the group of {group.keep}: every member is a symlink (or under one)")
            continue
        keeper = min(regular, key=lambda m: m.rank)  # the next in the group's keeper order
        if keeper is not group.members[0]:
            notes.append(f"the keeper {group.keep} is a symlink (or under one): left alone, {keeper.path} is kept "
                         f"instead")
        pointed_at = {os.path.realpath(m.path) for m in linked}
        moves = []
        for member in regular:
            if member is keeper:
                continue
            if os.path.realpath(member.path) in pointed_at:
                notes.append(f"{member.path} stays: a symlink of its group points to it")
                continue
            moves.append({"from": member.path, "to": _target(member.path, root, dest), "size": member.size,
                          "id": member.id})
        plans.append(GroupPlan(keeper, moves))
    return plans, notes


def _target(source: str, root: str, dest: str) -> str:
    relative = os.path.relpath(source, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise MoveError(f"{source} is not under the collection root {root} (nothing was moved)")
    target = os.path.join(dest, relative)
    if inside(os.path.realpath(target), root):
        raise MoveError(f"{target} would land inside the collection {root} (a symlink under {dest} leads "
                        f"there); choose a folder outside it (nothing was moved)")
    if os.path.lexists(target):
        raise MoveError(f"{target} already exists: nothing was moved (choose an empty folder)")
    return target


def move_copies(conn, groups, root: str, dest: str) -> MoveResult:
    """Move every non-keeper that is still the file the DB describes under ``dest`` (see the
    module docstring), telling the DB each group's moves; returns the counts, the manifest's
    path and the notes. A failure part-way raises MoveError; the manifest then lists exactly
    what moved."""
    plans, notes = plan_moves(conn, groups, root, dest)
    root, dest = os.path.realpath(root), os.path.abspath(dest)
    moves = [move for plan in plans for move in plan.moves]
    manifest = _new_manifest_name(dest)
    db_file = database_file(conn)
    try:
        os.makedirs(dest, exist_ok=True)
        _write_manifest(manifest, root, db_file, moves, done=0, final=False)
    except OSError as exc:
        raise MoveError(f"cannot write the undo manifest in {dest} ({exc.strerror or exc}): "
                        f"nothing was moved") from None
    rows = images_by_ids(conn, [m["id"] for m in moves] + [plan.keeper.id for plan in plans])
    done = moved_bytes = 0
    try:
        for plan in plans:
            why = changed_since_scan(plan.keeper.path, rows.get(plan.keeper.id))
            if why:
                notes.append(f"skipped the group of {plan.keeper.path}: the keeper {why}; "
                             f"its {len(plan.moves)} copies stay")
                for move in plan.moves:
                    move["skipped"] = f"the keeper {why}"
                continue
            moved = []
            try:
                for move in plan.moves:
                    row = rows.get(move["id"])
                    why = changed_since_scan(move["from"], row)
                    if why:
                        notes.append(f"{move['from']} {why}: not moved")
                        move["skipped"] = why
                        continue
                    _move(move, done, manifest)
                    move["moved"] = True
                    moved.append(MovedFile(row.id, row.path, row.size, row.mtime_ns, row.width, row.height,
                                           row.content_hash))
                    done += 1
                    moved_bytes += move["size"]
            finally:
                record_moved_out(conn, moved, manifest)
    finally:
        _write_manifest(manifest, root, db_file, moves, done)
    return MoveResult(done, moved_bytes, manifest, notes)


def _new_manifest_name(dest: str) -> str:
    """undo-<time>-<pid>.json, with -2, -3... when a move of the same second (the web app's) has it."""
    stem = os.path.join(dest, f"undo-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    name, number = stem + ".json", 1
    while os.path.lexists(name):
        number += 1
        name = f"{stem}-{number}.json"
    return name


def _move(move: dict, done: int, manifest: str) -> None:
    """One file, never over another; a partial copy (across file systems) is removed."""
    try:
        os.makedirs(os.path.dirname(move["to"]), exist_ok=True)
        if os.path.lexists(move["to"]):  # appeared since the plan: never overwrite
            raise MoveError(f"{move['to']} appeared while moving; {done} files were moved before it; put them back "
                            f"with: python find_duplicates.py --undo {manifest}")
        shutil.move(move["from"], move["to"])
    except OSError as exc:
        if os.path.lexists(move["from"]) and os.path.lexists(move["to"]):
            os.remove(move["to"])  # ours: the target did not exist before shutil.move
        raise MoveError(f"cannot move {move['from']} to {move['to']} ({exc.strerror or exc}); {done} files were "
                        f"moved before it; put them back with: python find_duplicates.py --undo {manifest}") from None


def read_manifest(manifest: str) -> dict:
    try:
        with open(manifest, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise MoveError(f"cannot read the undo manifest {manifest} ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("moves"), list) or "root" not in data:
        raise MoveError(f"{manifest} is not an undo manifest of find_duplicates.py (no moves or root)")
    return data


def undo_moves(manifest: str, conn=None) -> UndoResult:
    """Move the files of ``manifest`` back and, with ``conn`` (its DB), their rows as they were.
    MoveError if a file cannot be moved back (the ones before it are back, with their rows)."""
    data = read_manifest(manifest)
    restored, skipped, back = 0, [], []
    try:
        for move in data["moves"]:
            if move.get("skipped") or data.get("finished") and not move.get("moved"):
                continue  # never moved (a finished run marks each move; a killed one is checked on disk)
            if not os.path.lexists(move["to"]):
                skipped.append(f"{move['to']} is not there (never moved, or moved since)")
            elif os.path.lexists(move["from"]):
                skipped.append(f"{move['from']} exists again: {move['to']} stays (not overwritten)")
            else:
                try:
                    os.makedirs(os.path.dirname(move["from"]), exist_ok=True)
                    shutil.move(move["to"], move["from"])
                except OSError as exc:
                    raise MoveError(f"cannot move {move['to']} back to {move['from']} ({exc.strerror or exc}); "
                                    f"{restored} files were moved back: fix it and run the same --undo again") from None
                restored += 1
                st = os.stat(move["from"])
                back.append(BackInPlace(os.path.relpath(move["from"], data["root"]).replace(os.sep, "/"),
                                        st.st_size, st.st_mtime_ns))
    finally:
        rows = restore_moved_in(conn, back)[0] if conn is not None and back else 0
    return UndoResult(restored, skipped, rows)


def _write_manifest(path, root, db_file, moves, done, final=True):
    try:
        with atomic_write(path, "w", encoding="utf-8") as fh:
            json.dump({"format": MANIFEST_FORMAT, "root": root, "db": db_file, "finished": final, "moved": done,
                       "moves": moves}, fh, indent=1)
    except OSError:
        if not final:
            raise
        # atomic_write left the first version: it lists every planned move, and --undo checks each on disk
        log.warning("could not rewrite the undo manifest %s; it still lists every planned move", path)
