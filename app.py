"""Serve the collection as a web page and a JSON API, on this machine.

    python app.py --db photos.db                    # http://127.0.0.1:8000/
    python app.py --db photos.db --host 0.0.0.0     # reachable from the network (a warning says so)

One process keeps the search matrix and the network warm, so a search from an uploaded
photo takes milliseconds instead of a cold start. The API is documented at /docs.
"""
import argparse
import ipaddress
import logging
import socket

import uvicorn

import config
from cli import UsageError, run, setup_logging
from webapp.guard import LOOPBACK_NAMES
from webapp.server import MAX_UPLOAD_BYTES, create_app

log = logging.getLogger("app")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost': only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """Host headers to answer: this machine's names on loopback, any name otherwise."""
    return (*LOOPBACK_NAMES, host) if is_loopback(host) else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=config.DB_PATH, help="DB made by generator.py + main.py (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0: any free port)")
    parser.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_BYTES // (1024 * 1024),
                        help="largest upload per request in MB (default: %(default)s)")
    parser.add_argument("--thumbs", help="folder for cached thumbnails (default: <db>.thumbs beside the DB)")
    parser.add_argument("--review-dir", help="where the Duplicates page moves copies (default: <db>-review beside the "
                                             "DB; never inside the collection); nothing is ever deleted")
    parser.add_argument("--no-warm", action="store_true", help="do not load the matrix and network before serving")
    args = parser.parse_args(argv)
    setup_logging()
    if not 0 <= args.port < 65536:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_upload_mb < 1:
        raise UsageError(f"--max-upload-mb must be at least 1, got {args.max_upload_mb}")
    if not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach this machine on port %d can browse and download "
                    "the whole collection (there is no login); use --host 127.0.0.1 to keep it private",
                    args.host, args.port)
    app = create_app(args.db, allowed_hosts=allowed_hosts(args.host),
                     max_upload_bytes=args.max_upload_mb * 1024 * 1024, warm=not args.no_warm, thumbs_dir=args.thumbs,
                     review_dir=args.review_dir)
    sock = listening_socket(args.host, args.port)
    log.info("serving %s at http://%s:%d/ (API documentation at /docs)", args.db, _url_host(args.host),
             sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False)).run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket, so that a busy port or a bad address is one line, not uvicorn's traceback."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
                         f"is another server running there? try --port") from None
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


if __name__ == "__main__":
    run(main)
