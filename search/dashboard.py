"""python -m search.dashboard: optuna-dashboard over the study storage, on loopback only.

    python -m search.dashboard [--storage URL] [--host 127.0.0.1] [--port 8080]

The storage defaults to the search's own (sqlite:///results/search.db). It binds to
127.0.0.1 by default because the dashboard can edit and delete studies and has no login;
--port 0 takes any free port (the printed URL says which).
"""

from __future__ import annotations

import argparse
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import optuna_dashboard
from rich.console import Console

from errors import UserError

from .storage import default_storage, open_storage, safe_url


class ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    """The browser loads several files at once; optuna-dashboard's CLI serves threaded too."""

    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # one line per request would drown the URL
        pass


def serve(storage: str | None = None, host: str = "127.0.0.1", port: int = 8080) -> WSGIServer:
    """A bound, not yet serving, dashboard server (call serve_forever on it)."""
    rdb = open_storage(storage, create=False)  # a clear error for a missing study database
    app = optuna_dashboard.wsgi(rdb)
    try:
        return make_server(host, port, app, server_class=ThreadedWSGIServer,
                           handler_class=QuietHandler)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e} "
                        "(another dashboard? pass --port N, or --port 0 for any free port)"
                        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.dashboard", description=__doc__,
                                     allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default=None,
                        help="Optuna storage URL (default: sqlite:///results/search.db, "
                             "honouring $NAS_RESULTS)")
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback)")
    parser.add_argument("--port", type=int, default=8080, help="default: 8080; 0: any free")
    args = parser.parse_args(argv)
    console = Console()
    try:
        server = serve(args.storage, args.host, args.port)
    except UserError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False)
        return 2
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/dashboard"
    storage = safe_url(args.storage or default_storage())
    console.print(f"optuna-dashboard for {storage}: {url}", highlight=False, soft_wrap=True)
    console.print("Ctrl-C stops it.")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
