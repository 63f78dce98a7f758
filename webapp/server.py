"""The FastAPI application: the API routes, the page and its static files, the guards.

``create_app`` builds it for one DB; ``app.py`` runs it under uvicorn, the tests drive it
with FastAPI's TestClient.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager

import swagger_ui
import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from webapp import api, browse, review
from webapp.collection import Collection
from webapp.errors import install_error_handlers
from webapp.guard import RequestGuard
from webapp.memory import return_large_blocks_to_the_system

log = logging.getLogger(__name__)

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
SWAGGER_STATIC = os.path.join(os.path.dirname(os.path.abspath(swagger_ui.__file__)), "static")  # Swagger UI 5
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # per request, all files together

DESCRIPTION = """Search a photo collection by example, offline, on this machine.

Every score is a **distance**: smaller is more similar. Images are addressed by their DB id
only; the server never reads a path from a request. Errors are `{"error": "..."}` with a 4xx
status. Uploads are decoded in memory (at most 50 MB per request and the DB's pixel limit)
and never written into the collection.
"""


def create_app(db_path: str | os.PathLike, *, allowed_hosts: tuple[str, ...] | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, warm: bool = False,
               thumbs_dir: str | None = None, review_dir: str | None = None) -> FastAPI:
    """The web app for the DB at ``db_path``.

    allowed_hosts: the Host header names to answer (None: any, as in tests); warm: load the
    default mode's matrix and the network before serving the first request; review_dir: where
    the page moves copies (default: <db>-review beside the DB).
    """
    collection = Collection(db_path, thumbs_dir)
    return_large_blocks_to_the_system()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if warm:
            log.info("loading the search matrix and the network ...")
            log.info("warm in %.1f s", collection.warm())
        yield

    # FastAPI's own /docs and /redoc load their scripts from a CDN: ours serves a local copy.
    app = FastAPI(title="Image recommender", version="1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.collection = collection
    app.state.review_dir = review_dir
    install_error_handlers(app)
    app.add_middleware(RequestGuard, max_body=max_upload_bytes, allowed_hosts=allowed_hosts)
    app.include_router(api.router)
    app.include_router(browse.router)
    app.include_router(review.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_STATIC), name="docs-assets")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(os.path.join(STATIC, "docs.html"), headers={"Cache-Control": "no-cache"})

    return app


@contextmanager
def serving(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread (port 0: a free one) and yield its base URL;
    for the browser test and the HTTP benchmark, which need a real server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start; see the log above")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
