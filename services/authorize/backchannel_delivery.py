"""Posting logout tokens to the clients' back-channel logout URIs (Back-Channel Logout 1.0
§2.5), away from the sign-out that caused them.

Sign-out only puts a notice on a bounded queue and answers the person at once: a client
that is slow, down or hanging never delays it. A few worker tasks post each notice as
``application/x-www-form-urlencoded`` ``logout_token=...`` to the URI the client
registered, and nowhere else:

- https only; plain http only to a loopback URI in development (TESSERA_INSECURE_LOOPBACK);
- no redirect followed (a 3xx is the client's refusal, as §2.8 expects 200);
- one HTTP session with a total timeout per attempt; network errors, timeouts and 5xx are
  tried again with a growing pause, a 4xx is not (§2.8: the client says it cannot use
  the token, and another try would say the same);
- a full queue drops the notice, with an error in the log: signing out never waits.

Every notice ends in one outcome, logged on one line and counted in
``tessera_backchannel_logouts_total{outcome}``. When the service stops, the queue gets a
few seconds to empty; what is left is abandoned (and counted so). Nothing is stored: a
notice lost to a restart is not sent again (README, "Signing out").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from shared.config.settings import Settings, is_loopback_host
from shared.web.app_keys import SETTINGS
from shared.web.metrics import METRICS

log = logging.getLogger("tessera.backchannel")

DELIVERED = "delivered"
REFUSED = "refused"  # 3xx or 4xx: not tried again
FAILED = "failed"  # network error, timeout or 5xx at every attempt
DROPPED = "dropped"  # the queue was full
NOT_ALLOWED = "not_allowed"  # not https, and not loopback http in development
ABANDONED = "abandoned"  # still queued when the service stopped
OUTCOMES = (DELIVERED, REFUSED, FAILED, DROPPED, NOT_ALLOWED, ABANDONED)

USER_AGENT = "Tessera back-channel logout"


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How hard Tessera tries. The defaults: 4 workers, 1000 notices queued, 5 s per
    attempt, 3 attempts 1 s and 2 s apart (at most 18 s per notice), 3 s to empty the
    queue when the service stops (within Kubernetes' 30 s grace after the drain)."""

    workers: int = 4
    queue_size: int = 1000
    timeout_seconds: float = 5.0
    attempts: int = 3
    backoff_seconds: float = 1.0
    stop_seconds: float = 3.0


@dataclass(frozen=True, slots=True)
class LogoutNotice:
    """One logout token for one client, and where its client registered to receive it."""

    client_id: str
    uri: str
    logout_token: str = field(repr=False)


def may_post_to(uri: str, settings: Settings) -> bool:
    """https, or http to this machine in development mode: a logout token is a signed
    statement about a person's session, not for anyone on the path to read."""
    parts = urlsplit(uri)
    if parts.scheme == "https":
        return bool(parts.hostname)
    loopback = is_loopback_host(parts.hostname)
    return parts.scheme == "http" and settings.insecure_loopback and loopback


class _Retry(Exception):
    """The attempt failed in a way another attempt may not (network, timeout, 5xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BackchannelDeliveries:
    """The queue and its workers; ``send`` from request handlers, ``start`` and ``stop``
    with the service (``deliveries_context``)."""

    def __init__(
        self, settings: Settings, registry: CollectorRegistry, policy: DeliveryPolicy
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._queue: asyncio.Queue[LogoutNotice] = asyncio.Queue(policy.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        outcomes = Counter(
            "tessera_backchannel_logouts",
            "Logout tokens for clients' back-channel logout URIs, by outcome (README, "
            "'Signing out').",
            ["outcome"],
            registry=registry,
        )
        # Looked up once; every outcome shows in a scrape from the start, at 0.
        self._counted = {outcome: outcomes.labels(outcome) for outcome in OUTCOMES}

    def send(self, notice: LogoutNotice) -> None:
        """Queue ``notice``; never waits. A URI not allowed, a queue that is full or a
        service that is stopping drop it, with a line in the log."""
        if not may_post_to(notice.uri, self._settings):
            self._ended(notice, NOT_ALLOWED, "not https (http only to loopback in development)")
            return
        if self._http is None:
            self._ended(notice, DROPPED, "the service is stopping", level=logging.ERROR)
            return
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            self._ended(
                notice,
                DROPPED,
                f"{self._policy.queue_size} notices are waiting already",
                level=logging.ERROR,
            )

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._policy.timeout_seconds),
            # Nothing of one client's answer reaches another client's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"backchannel-logout-{n}")
            for n in range(self._policy.workers)
        ]

    async def stop(self) -> None:
        """Give the queue ``stop_seconds`` to empty, then stop the workers; what is left
        is abandoned."""
        try:
            await asyncio.wait_for(self._queue.join(), self._policy.stop_seconds)
        except TimeoutError:
            pass
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self._queue.empty():
            self._ended(self._queue.get_nowait(), ABANDONED, "the service stopped")
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _work(self) -> None:
        while True:
            notice = await self._queue.get()
            try:
                await self._deliver(notice)
            except asyncio.CancelledError:
                self._ended(notice, ABANDONED, "the service stopped")
                raise
            except Exception:  # a worker must outlive any one notice
                log.exception("back-channel logout to client %s failed", notice.client_id)
                self._counted[FAILED].inc()
            finally:
                self._queue.task_done()

    async def _deliver(self, notice: LogoutNotice) -> None:
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            try:
                status = await self._post(notice)
            except _Retry as failure:
                if attempt == policy.attempts:
                    self._ended(notice, FAILED, f"{failure.reason}, {attempt} attempts")
                    return
                pause = policy.backoff_seconds * 2 ** (attempt - 1)
                log.info(
                    "back-channel logout to client %s: %s; trying again in %g s",
                    notice.client_id,
                    failure.reason,
                    pause,
                )
                await asyncio.sleep(pause)
                continue
            if 200 <= status < 300:
                self._ended(notice, DELIVERED, f"HTTP {status}", level=logging.INFO)
            else:
                self._ended(notice, REFUSED, f"HTTP {status}, not tried again")
            return

    async def _post(self, notice: LogoutNotice) -> int:
        """One attempt (§2.5); the status, or _Retry."""
        assert self._http is not None  # the workers run between start and stop
        try:
            async with self._http.post(
                notice.uri,
                data={"logout_token": notice.logout_token},
                allow_redirects=False,
            ) as answer:
                status = answer.status
        except TimeoutError:
            raise _Retry(f"no answer within {self._policy.timeout_seconds:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Retry(type(exc).__name__) from None
        if status >= 500:
            raise _Retry(f"HTTP {status}")
        return status

    def _ended(
        self, notice: LogoutNotice, outcome: str, reason: str, *, level: int = logging.WARNING
    ) -> None:
        self._counted[outcome].inc()
        log.log(level, "back-channel logout to client %s %s: %s", notice.client_id, outcome, reason)


BACKCHANNEL_DELIVERIES: web.AppKey[BackchannelDeliveries] = web.AppKey("backchannel_deliveries")


async def deliveries_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the workers start with the service and stop with it."""
    deliveries = BackchannelDeliveries(app[SETTINGS], app[METRICS].registry, DeliveryPolicy())
    app[BACKCHANNEL_DELIVERIES] = deliveries
    await deliveries.start()
    yield
    await deliveries.stop()
