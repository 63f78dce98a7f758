"""Reviewing duplicates in the page: the groups, the reviewer's decisions, moves and undo.

The groups come from the duplicate finder (find_duplicates.py), computed once per DB version on
browse's background thread; a decision or a move changes the DB version, so the next list is
computed again and honours it. Actions are POSTs: the guard (webapp.guard) refuses those another
site's page makes. Moves are cleanup.move's, with all of --move-to's checks, into the review
folder (--review-dir; default beside the DB), and each can be undone. Nothing is ever deleted.
The client names images by id and groups by their keeper's id, never by path.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cleanup.move import MoveError, move_copies, read_manifest, undo_moves
from config import InvalidInputError
from db import NoFeaturesError, ScanLock
from db.decisions import mark_apart, mark_keep
from db.lookup import images_by_ids
from duplicates import find_duplicates
from duplicates.report import SIMILAR
from webapp.api import ERRORS, collection
from webapp.browse import MAX_GROUPS, PENDING, cached
from webapp.errors import ApiError

router = APIRouter(prefix="/api/duplicates")
KINDS = {"copies": False, "similar": True}  # the page's tabs -> find_duplicates(similar=...)


def review_dir(request: Request) -> str:
    return request.app.state.review_dir or collection(request).db_path + "-review"


class Settings(BaseModel):
    mode: str = "embeddings"
    threshold: float | None = None
    any_orientation: bool = False


class Decision(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=MAX_GROUPS, description="images of one group")
    member: int | None = Field(None, description="not duplicates: only this member against the others of ids; "
                                                 "keep: the one to keep")


class MoveRequest(Settings):
    keepers: list[int] = Field(min_length=1, max_length=MAX_GROUPS, description="keeper ids of the groups to move")


class UndoRequest(BaseModel):
    manifest: str = Field(description="the file name of an undo manifest in the review folder")


def report_of(request: Request, settings: Settings, similar: bool):
    def make(coll):
        try:
            return find_duplicates(coll.conn().cursor(), settings.mode, settings.threshold,
                                   any_orientation=settings.any_orientation, similar=similar)
        except NoFeaturesError as exc:
            raise ApiError(503, str(exc)) from None
        except InvalidInputError as exc:
            raise ApiError(400, str(exc)) from None

    return cached(request, ("duplicates", settings.mode, settings.threshold, settings.any_orientation, similar),
                  make, "finding the duplicates")


@router.get("", responses={**ERRORS, **PENDING}, summary="Groups of duplicates, each with its keeper",
            description="The groups of the duplicate finder (find_duplicates.py), largest first: the keeper first, "
                        "each member with its kind, size, pixels, date, folder, distance and why it is (not) kept. "
                        "kind=copies: exact and edited copies; kind=similar: similar shots only. Honours the "
                        "stored decisions. Computed once per DB version.")
def duplicates(request: Request,
               mode: Annotated[str, Query(description="embeddings, or a hash mode")] = "embeddings",
               threshold: Annotated[float | None, Query(description="largest distance to count as a copy; "
                                                                      "default: the finder's measured one")] = None,
               any_orientation: Annotated[bool, Query(description="also mirrored and rotated copies")] = False,
               kind: Annotated[str, Query(description="copies or similar")] = "copies",
               limit: Annotated[int, Query(ge=1, le=MAX_GROUPS, description="groups returned at most")] = 200) -> dict:
    if kind not in KINDS:
        raise ApiError(400, f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    report = report_of(request, Settings(mode=mode, threshold=threshold, any_orientation=any_orientation),
                       KINDS[kind])
    if isinstance(report, JSONResponse):
        return report
    groups = [g for g in report.groups if (g.kind == SIMILAR) == KINDS[kind]]
    return _groups_json(collection(request), report, groups, limit)


def _groups_json(coll, report, groups, limit: int) -> dict:
    root = report.settings.get("root") or ""
    shown = groups[:limit]
    rows = images_by_ids(coll.conn(), [m.id for g in shown for m in g.members])
    return {
        "groups": [{"kind": g.kind, "keep": g.members[0].id, "bytes_freed": g.bytes_freed,
                    "images": [_member(coll, rows, m, root, i == 0) for i, m in enumerate(g.members)]}
                   for g in shown],
        "total_groups": len(groups),
        "images_in_groups": sum(len(g.members) for g in groups),
        "bytes_freed": sum(g.bytes_freed for g in groups),
        "settings": {k: v for k, v in report.settings.items() if k not in ("root", "prefer")},
    }


def _member(coll, rows, m, root, keep):
    path = _relative(m.path, root)
    ns = m.taken_ns if m.taken_ns is not None else m.mtime_ns
    return {"id": m.id, "path": path, "folder": os.path.dirname(path) or ".", "kind": m.kind, "keep": keep,
            "distance": round(float(m.distance), 6), "width": m.width, "height": m.height,
            "pixels": (m.width or 0) * (m.height or 0), "size": m.size,
            "date": datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "date_source": "exif" if m.taken_ns is not None else "mtime", "reason": m.reason,
            **coll.urls(rows.get(m.id), m.id)}


def _relative(path: str, root: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/") if root and os.path.isabs(path) else path


def _hashes(request: Request, ids) -> dict[int, bytes]:
    rows = images_by_ids(collection(request).conn(), ids)
    missing = [i for i in ids if i not in rows or rows[i].content_hash is None]
    if missing:
        raise ApiError(404, f"no extracted image with id {missing[0]}")
    return {i: bytes(rows[i].content_hash) for i in ids}


@router.post("/not-duplicates", responses=ERRORS, summary="Remember: these are not duplicates",
             description="The whole group (ids), or one member (member) against the others; stored by content "
                         "hash, so it survives rescans, moves and re-extraction.")
def not_duplicates(request: Request, body: Decision) -> dict:
    hashes = _hashes(request, body.ids + ([body.member] if body.member is not None else []))
    conn = collection(request).conn()
    if body.member is None:
        pairs = mark_apart(conn, hashes.values())
    else:
        pairs = mark_apart(conn, [hashes[body.member]], [hashes[i] for i in body.ids if i != body.member])
    return {"pairs": pairs}


@router.post("/keep", responses=ERRORS, summary="Remember: keep this one instead",
             description="member becomes the keeper of its group (ids); stored by content hash.")
def keep(request: Request, body: Decision) -> dict:
    if body.member is None or body.member not in body.ids:
        raise ApiError(400, "member must be one of ids")
    hashes = _hashes(request, body.ids)
    mark_keep(collection(request).conn(), hashes[body.member], hashes.values())
    return {"keep": body.member}


@router.post("/move", responses={**ERRORS, **PENDING}, summary="Move the copies of groups to the review folder",
             description="The copies (never the keeper, never similar shots) of the groups whose keepers are "
                         "given, with --move-to's checks, into the review folder; an undo manifest is written there.")
def move(request: Request, body: MoveRequest) -> dict:
    report = report_of(request, body, False)
    if isinstance(report, JSONResponse):
        return report
    wanted = set(body.keepers)
    groups = [g for g in report.groups if g.kind != SIMILAR and g.members[0].id in wanted]
    if len(groups) != len(wanted):
        raise ApiError(409, "some groups changed since the page was shown: reload and try again (nothing was moved)")
    coll = collection(request)
    try:
        with ScanLock(coll.db_path):
            result = move_copies(coll.conn(), groups, report.settings["root"], review_dir(request))
    except MoveError as exc:
        raise ApiError(409, str(exc)) from None
    return {"moved": result.moved, "bytes": result.bytes, "manifest": os.path.basename(result.manifest),
            "notes": result.notes}


@router.get("/moves", responses=ERRORS, summary="The moves that can be undone",
            description="Undo manifests in the review folder, newest first, with how many files each moved.")
def moves(request: Request) -> dict:
    folder = review_dir(request)
    names = sorted((n for n in os.listdir(folder) if n.startswith("undo-") and n.endswith(".json")),
                   reverse=True) if os.path.isdir(folder) else []
    out = []
    for name in names:
        try:
            data = read_manifest(os.path.join(folder, name))
        except MoveError:
            continue
        moved = [m for m in data["moves"] if m.get("moved")]
        out.append({"manifest": name, "moved": len(moved),
                    "still_out": sum(os.path.lexists(m["to"]) for m in moved)})
    return {"moves": out}


@router.post("/undo", responses=ERRORS, summary="Undo a move",
             description="Moves the files of one undo manifest of the review folder back, rows and all.")
def undo(request: Request, body: UndoRequest) -> dict:
    name = os.path.basename(body.manifest)
    path = os.path.join(review_dir(request), name)
    if name != body.manifest or not name.startswith("undo-") or not os.path.isfile(path):
        raise ApiError(404, f"no undo manifest {body.manifest!r} in the review folder")
    coll = collection(request)
    try:
        with ScanLock(coll.db_path):
            result = undo_moves(path, coll.conn())
    except MoveError as exc:
        raise ApiError(409, str(exc)) from None
    return {"restored": result.restored, "skipped": result.skipped, "rows": result.rows}
