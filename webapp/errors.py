"""Every failure the web app answers is ``{"error": "one readable line"}`` with a 4xx status.

Why one shape: the page shows ``error`` as it is, and a script can rely on it. Known
failures (bad uploads, unknown names and ids) become 4xx here; only a real bug can give a
500, and that one is logged with its traceback and answered in the same shape.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """A request the server refuses, with the status and the line to show."""

    def __init__(self, status_code: int, message: str):
        super().__init__(status_code=status_code, detail=message)


class UploadTooLarge(ApiError):
    """Raised while the body streams in, as soon as it passes the byte limit."""

    def __init__(self, limit: int):
        super().__init__(413, f"upload too large: at most {limit // (1024 * 1024)} MB per request")


def error_response(status_code: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def _describe(error: dict) -> str:
    """One pydantic validation error as a sentence: 'top_k: Input should be ... (got 'abc')'."""
    where = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "form")]
    field = ".".join(where) or "request"
    if error.get("type") == "missing":
        return f"{field} is required"
    got = error.get("input")
    suffix = f" (got {got!r})" if isinstance(got, (str, int, float)) and len(repr(got)) < 80 else ""
    return f"{field}: {error.get('msg', 'invalid value')}{suffix}"


def public(request: Request, message: str) -> str:
    """``message`` without the machine's absolute paths (the DB's, the collection folder's):
    an error body may be read by whoever reaches the server, and a path says nothing they can use."""
    collection = getattr(request.app.state, "collection", None)
    for private, shown in collection.private_paths() if collection is not None else ():
        message = message.replace(private, shown)
    return message


async def _on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    message = public(request, exc.detail if isinstance(exc.detail, str) else str(exc.detail))
    if exc.status_code == 404 and not isinstance(exc, ApiError):
        message = f"no such page or API route: {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, message, getattr(exc, "headers", None))


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, "; ".join(_describe(e) for e in exc.errors()) or "invalid request")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)
