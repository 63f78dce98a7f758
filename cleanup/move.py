"""Move the non-keepers of duplicate groups out of the collection, and back: never a deletion.

Why a move and not a delete: a threshold can be wrong for someone's photos, and a person
should look before anything is gone. Each file goes to ``DEST/<its path relative to the
collection root>``, so the folder structure says where it came from, and an undo manifest
(JSON, written before the first move and rewritten after the last) lists every move, so
``undo_moves`` can put each file back. Nothing is ever overwritten: a run whose target
already exists stops before moving anything, and an undo leaves a file where it is when
its original place is taken again.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import NamedTuple

from fileio import atomic_write

log = logging.getLogger(__name__)

MANIFEST_FORMAT = 1


class MoveError(ValueError):
    """The move cannot be done safely (a target exists, the folder is inside the collection)."""


class MoveResult(NamedTuple):
    moved: int
    bytes: int
    manifest: str


def plan_moves(groups, root: str, dest: str) -> list[dict]:
    """[{"from", "to", "size"}] for every non-keeper; MoveError if any target exists or a file
    lies outside ``root``."""
    root, dest = os.path.realpath(root), os.path.abspath(dest)
    if os.path.commonpath([os.path.realpath(dest), root]) == root:
        raise MoveError(f"--move-to {dest} is inside the collection {root}: the next scan would index the copies "
                        f"again; choose a folder outside it")
    moves = []
    for group in groups:
        for member in group.members[1:]:
            source = os.path.abspath(member.path)
            relative = os.path.relpath(os.path.realpath(source), root)
            if relative.startswith(os.pardir):
                raise MoveError(f"{source} is not under the collection root {root}")
            target = os.path.join(dest, relative)
            if os.path.lexists(target):
                raise MoveError(f"{target} already exists: nothing was moved (choose an empty folder)")
            moves.append({"from": source, "to": target, "size": member.size})
    return moves


def move_copies(groups, root: str, dest: str) -> MoveResult:
    """Move every non-keeper under ``dest`` (see the module docstring); returns the counts and
    the manifest's path."""
    moves = plan_moves(groups, root, dest)
    os.makedirs(dest, exist_ok=True)
    manifest = os.path.join(os.path.abspath(dest), f"undo-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json")
    _write_manifest(manifest, root, moves, done=0)
    done = moved_bytes = 0
    try:
        for move in moves:
            if not os.path.exists(move["from"]):
                log.warning("%s is gone since the DB was made; skipped", move["from"])
                move["skipped"] = True
                continue
            os.makedirs(os.path.dirname(move["to"]), exist_ok=True)
            if os.path.lexists(move["to"]):  # appeared since the plan: never overwrite
                raise MoveError(f"{move['to']} appeared while moving; {done} files were moved (see {manifest})")
            shutil.move(move["from"], move["to"])
            done += 1
            moved_bytes += move["size"]
    finally:
        _write_manifest(manifest, root, moves, done)
    return MoveResult(done, moved_bytes, manifest)


def undo_moves(manifest: str) -> tuple[int, list[str]]:
    """Move the files of ``manifest`` back; returns (count, [why each other file stayed])."""
    try:
        with open(manifest, encoding="utf-8") as fh:
            data = json.load(fh)
        moves = data["moves"]
    except (OSError, ValueError, KeyError) as exc:
        raise MoveError(f"cannot read the undo manifest {manifest} ({exc})") from None
    restored, skipped = 0, []
    for move in moves:
        if move.get("skipped"):
            continue
        if not os.path.lexists(move["to"]):
            skipped.append(f"{move['to']} is not there (never moved, or moved since)")
        elif os.path.lexists(move["from"]):
            skipped.append(f"{move['from']} exists again: {move['to']} stays (not overwritten)")
        else:
            os.makedirs(os.path.dirname(move["from"]), exist_ok=True)
            shutil.move(move["to"], move["from"])
            restored += 1
    return restored, skipped


def _write_manifest(path, root, moves, done):
    with atomic_write(path, "w", encoding="utf-8") as fh:
        json.dump({"format": MANIFEST_FORMAT, "root": root, "moved": done, "moves": moves}, fh, indent=1)
