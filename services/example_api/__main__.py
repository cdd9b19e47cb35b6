"""``python -m services.example_api --host 127.0.0.1 --port 9003``; settings from the
``RESOURCE_SERVER_*`` variables (``ResourceServerSettings.from_env``). Run as Tessera's
services are, with their log format and HTTP server options, so that ``make run``'s logs
read alike; the API itself (``app``) needs nothing of Tessera's server."""

from __future__ import annotations

import argparse
import os
import sys

from aiohttp import web
from tessera_resource_server import ResourceServerSettings

from services.example_api.app import create_app
from shared.web import logs
from shared.web.shutdown import SERVER_OPTIONS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.example_api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9003)
    args = parser.parse_args()
    logs.configure("example_api", os.environ.get("TESSERA_LOG_FORMAT", logs.DEFAULT_LOG_FORMAT))
    try:
        settings = ResourceServerSettings.from_env()
    except ValueError as exc:
        sys.exit(f"example_api: bad configuration: {exc}")
    # aiohttp's access log writes the request line with its query string, where a
    # misguided client may have put a token (RFC 6750 §2.3): no access log here.
    web.run_app(
        create_app(settings),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        **SERVER_OPTIONS,
    )


main()
