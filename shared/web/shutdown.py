"""Serving until a signal, and stopping without dropping a request.

Kubernetes stops a pod by sending SIGTERM and, at the same time, removing the pod from
its Services' endpoints. Ingress controllers and kube-proxy learn of the removal some
seconds later and keep sending new connections meanwhile; a process that stopped
listening at once would refuse them. So on SIGTERM a service:

1. fails readiness (``/readyz`` answers 503) and keeps serving every request, old and new,
   for the drain period (``TESSERA_DRAIN_SECONDS``), answering with ``Connection: close``
   (RFC 9112 §9.6; the request middleware, ``shared.web.request_middleware``) so that clients
   holding a keep-alive connection open their next one elsewhere;
2. then stops listening, lets requests in flight finish (up to ``FINISH_SECONDS``),
   closes its Redis connections (the ``cleanup_ctx``) and returns, so the process exits 0.

A process may serve a second application on a port of its own (the token service's admin
API): it drains and stops with the first, and stops listening first.

A second SIGTERM, or SIGINT, during the drain ends it early. SIGINT (Ctrl-C) skips the
drain altogether: a person at a terminal wants the process gone, not a load balancer's
grace.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from shared.web.logs import http_server_log

log = logging.getLogger("tessera.shutdown")

# How long requests in flight may take to finish once the service stops listening. With
# the default drain of 10 s this fits Kubernetes' default terminationGracePeriodSeconds
# of 30 s, after which the kubelet sends SIGKILL.
FINISH_SECONDS = 15.0
# Connections the kernel holds for the service before it accepts them. aiohttp's 128
# drops the SYNs of a burst beyond it, and each dropped client waits a second to retry;
# the kernel caps it at net.core.somaxconn (4096 on current Linux).
LISTEN_BACKLOG = 4096


# How aiohttp's HTTP server runs a service. Request bodies are read as sent: a body with
# a content coding is refused (shared.web.forms), so aiohttp need not inflate one, not even
# the rest of a refused body that it reads to keep the connection. What it refuses
# before any handler (a request it cannot parse) is logged as the client's doing.
SERVER_OPTIONS: dict[str, Any] = {"auto_decompress": False, "logger": http_server_log}


@dataclass(frozen=True, slots=True)
class Site:
    """An application and where it listens."""

    app: web.Application
    host: str
    port: int


@dataclass(slots=True)
class Drain:
    """Whether the service is draining: still serving, but no longer ready."""

    draining: bool = False


DRAIN: web.AppKey[Drain] = web.AppKey("drain")


class _StopRequest:
    """SIGTERM and SIGINT, turned into events the serving coroutine waits on."""

    def __init__(self) -> None:
        self.signals: list[signal.Signals] = []
        self._received = asyncio.Event()
        self._again = asyncio.Event()

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)

    def _on_signal(self, signum: signal.Signals) -> None:
        self.signals.append(signum)
        if self._received.is_set():
            self._again.set()
        self._received.set()

    async def first(self) -> signal.Signals:
        await self._received.wait()
        return self.signals[0]

    async def another_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for another signal; true when one came."""
        try:
            await asyncio.wait_for(self._again.wait(), seconds)
        except TimeoutError:
            return False
        return True


async def serve_until_stopped(
    app: web.Application,
    *,
    host: str,
    port: int,
    drain_seconds: float,
    finish_seconds: float = FINISH_SECONDS,
    on_listening: Callable[[], None] = lambda: None,
    also: Sequence[Site] = (),
) -> None:
    """Serve ``app`` on ``host:port``, and each of ``also`` on its own, until SIGTERM or
    SIGINT, then stop as described in this module's docstring. Returns normally, so the
    process exits with status 0."""
    loop = asyncio.get_running_loop()
    stop = _StopRequest()
    # Before anything else: a SIGTERM during start-up must not kill the process half-way.
    stop.install(loop)
    sites = [Site(app, host, port), *also]
    runners = [
        web.AppRunner(site.app, access_log=None, shutdown_timeout=finish_seconds, **SERVER_OPTIONS)
        for site in sites
    ]
    try:
        for site, runner in zip(sites, runners, strict=True):
            await runner.setup()
            await web.TCPSite(runner, site.host, site.port, backlog=LISTEN_BACKLOG).start()
        on_listening()
        received = await stop.first()
        if received is signal.SIGTERM and drain_seconds > 0:
            for site in sites:
                if DRAIN in site.app:
                    site.app[DRAIN].draining = True
            log.info(
                "SIGTERM: not ready any more; serving for up to %g s while load balancers "
                "stop sending requests",
                drain_seconds,
            )
            if await stop.another_within(drain_seconds):
                log.info("drain cut short by %s", stop.signals[-1].name)
        log.info(
            "%s: closing the listener; finishing requests in flight (up to %g s)",
            received.name,
            finish_seconds,
        )
    finally:
        # Each stops listening, waits for its handlers in flight, then runs its app's
        # cleanup (closing Redis): the second application first, the main one last.
        for runner in reversed(runners):
            await runner.cleanup()
        stop.uninstall(loop)
    log.info("stopped")
