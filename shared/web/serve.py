"""Command line entry shared by the three services: ``python -m services.<name>``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

from aiohttp import web

from shared.config.settings import Settings, SettingsError
from shared.security.signing_keys import SigningKeyError
from shared.web import logs
from shared.web.shutdown import serve_until_stopped


def serve(name: str, create_app: Callable[[Settings], web.Application], default_port: int) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    args = parser.parse_args()
    # Configured before the settings are read, so that what reading them logs (the
    # development-mode warning) is already in the chosen format; a bad format value is
    # reported by the settings just below.
    logs.configure(name, os.environ.get("TESSERA_LOG_FORMAT", logs.DEFAULT_LOG_FORMAT))
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"tessera {name}: bad configuration: {exc}")
    logs.configure(name, settings.log_format, settings.log_level)
    try:
        app = create_app(settings)
    except SigningKeyError as exc:
        sys.exit(f"tessera {name}: bad configuration: {exc}")

    def listening() -> None:
        logging.getLogger("tessera").info(
            "%s listening on http://%s:%d", name, args.host, args.port
        )

    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        runner.run(
            serve_until_stopped(
                app,
                host=args.host,
                port=args.port,
                drain_seconds=settings.drain_seconds,
                on_listening=listening,
            )
        )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
