"""An ASGI middleware in front of every route: the Host header, the origin and the request size.

Why the Host check: a page on another site can point its own domain name at 127.0.0.1
(DNS rebinding) and read the collection through the user's browser; refusing Host headers
that are not this server's names stops that. Why the origin check: any page the user visits
may POST to 127.0.0.1 (a "simple" form request needs no CORS permission), and make the app
decode uploads or run searches; a browser says where a request comes from in ``Origin`` and
``Sec-Fetch-Site``, so work asked for by another site (another port of this machine included)
is refused. A link from elsewhere to the page itself still opens it. Why the size check here: the multipart parser
would otherwise spool any amount to a temporary file before a route could look at it.
A declared Content-Length over the limit is refused before reading; a body without one
(chunked) is counted as it streams and cut off at the limit.
"""
from __future__ import annotations

import json
from http import HTTPStatus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webapp.errors import UploadTooLarge, error_response

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
# Sent with every response: no MIME sniffing, no referrer leaving the machine, and the page
# may load scripts, styles and images from this server only (no CDN, nothing injected).
_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'{styles}; script-src 'self'; "
           "object-src 'none'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", _POLICY.format(styles="").encode()),
]
DOCS_HEADERS = [*SECURITY_HEADERS[:2],  # Swagger UI writes style attributes into its HTML
                (b"content-security-policy", _POLICY.format(styles=" 'unsafe-inline'").encode())]


def host_name(header: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:80' -> '[::1]'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.split("]", 1)[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


# What Sec-Fetch-Site says of a request the page made itself, or the user typed: "none".
_OWN_SITE = {"same-origin", "none"}
FOREIGN = "refused: this request comes from another site; open the page at this server's address instead"


def foreign_origin(scope: Scope, headers: dict[str, str]) -> bool:
    """True for a request another site's page made: its Origin is not this server, or the browser
    says cross-site/same-site. A top-level navigation to a page (GET, not /api/) stays allowed."""
    navigation = scope["method"] in ("GET", "HEAD") and not scope["path"].startswith("/api/") and \
        headers.get("sec-fetch-mode", "navigate") == "navigate"
    if navigation:
        return False
    site = headers.get("sec-fetch-site")
    if site is not None and site.lower() not in _OWN_SITE:
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    scheme = scope.get("scheme", "http")
    return origin.strip().lower() != f"{scheme}://{headers.get('host', '').strip().lower()}"


class RequestGuard:
    """Refuses unknown Host headers (400), requests from other sites (403) and bodies over
    ``max_body`` bytes (413); adds SECURITY_HEADERS."""

    def __init__(self, app: ASGIApp, max_body: int, allowed_hosts: tuple[str, ...] | None = None):
        self.app = app
        self.max_body = max_body
        self.allowed = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.allowed is not None and host_name(headers.get("host", "")) not in self.allowed:
            await error_response(400, "unknown Host header: open the page as http://127.0.0.1:PORT/")(
                scope, receive, send)
            return
        if foreign_origin(scope, headers):
            await error_response(403, FOREIGN)(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await error_response(413, UploadTooLarge(self.max_body).detail, {"Connection": "close"})(
                scope, receive, send)
            return
        received = 0
        started = False
        held: list[Message] = []  # a plain-text error's start and body, turned into {"error"} (_as_json_error)

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise UploadTooLarge(self.max_body)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = DOCS_HEADERS if scope["path"] == "/docs" else SECURITY_HEADERS
                message = {**message, "headers": [*message.get("headers", []), *extra]}
                if _plain_error(scope, message):
                    held.append(message)
                    return
            elif held:
                held.append(message)
                if not message.get("more_body", False):
                    for converted in _as_json_error(held):
                        await send(converted)
                return
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except UploadTooLarge as exc:  # raised outside a route's error handling (e.g. a body read by a middleware)
            if started:
                raise
            await error_response(413, exc.detail, {"Connection": "close"})(scope, receive, send)


def _plain_error(scope: Scope, start: Message) -> bool:
    """An API error answered by a library in plain text (Starlette's file responses answer a bad
    Range header so), not in the API's {"error"} shape."""
    if not scope["path"].startswith("/api/") or start["status"] < 400:
        return False
    kind = dict(start.get("headers", [])).get(b"content-type", b"")
    return not kind.startswith(b"application/json")


def _as_json_error(held: list[Message]) -> list[Message]:
    """The held start and body messages of a plain error, as one {"error"} JSON response."""
    start, body = held[0], b"".join(m.get("body", b"") for m in held[1:])
    headers = dict(start.get("headers", []))
    text = body.decode("utf-8", "replace").strip()
    if start["status"] == 416:
        total = headers.get(b"content-range", b"").decode("latin-1").rpartition("/")[2]
        text = f"range not satisfiable: the file has {total} bytes" if total.isdigit() else "range not satisfiable"
    data = json.dumps({"error": text or HTTPStatus(start["status"]).phrase}).encode()
    kept = [(k, v) for k, v in start.get("headers", []) if k not in (b"content-type", b"content-length")]
    return [{**start, "headers": [*kept, (b"content-type", b"application/json"),
                                  (b"content-length", str(len(data)).encode())]},
            {"type": "http.response.body", "body": data}]
