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
from shared.web.shutdown import Site, serve_until_stopped

# A second application the process serves beside its own (the token service's admin API):
# made from the settings and the first application, with its port; None when it is off.
Companion = Callable[[Settings, web.Application], tuple[web.Application, int] | None]


def serve(
    name: str,
    create_app: Callable[[Settings], web.Application],
    default_port: int,
    companion: Companion | None = None,
) -> None:
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
    second = companion(settings, app) if companion is not None else None
    also = [Site(second[0], args.host, second[1])] if second is not None else []

    def listening() -> None:
        log = logging.getLogger("tessera")
        log.info("%s listening on http://%s:%d", name, args.host, args.port)
        for site in also:
            log.info("%s admin API listening on http://%s:%d", name, site.host, site.port)

    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        runner.run(
            serve_until_stopped(
                app,
                host=args.host,
                port=args.port,
                drain_seconds=settings.drain_seconds,
                on_listening=listening,
                also=also,
            )
        )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
