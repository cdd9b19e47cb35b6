"""Command line entry shared by the three services: ``python -m services.<name>``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from aiohttp import web

from shared.settings import Settings, SettingsError
from shared.signing_keys import SigningKeyError


def serve(name: str, create_app: Callable[[Settings], web.Application], default_port: int) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        app = create_app(settings)
    except (SettingsError, SigningKeyError) as exc:
        sys.exit(f"tessera {name}: bad configuration: {exc}")
    logging.getLogger().setLevel(settings.log_level)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda _: logging.getLogger("tessera").info(
            "%s listening on http://%s:%d", name, args.host, args.port
        ),
        loop=_new_event_loop(),
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
