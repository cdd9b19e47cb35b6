"""Rate limits per client address on the endpoints anyone can call (README, "Rate
limits"): counted in Redis (``shared.storage.rate_limits``) under the address the trusted-proxy
rule gives (``shared.web.client_address``), refused with 429 and Retry-After."""

from __future__ import annotations

from aiohttp import web
from redis.exceptions import RedisError

from shared.domain.oauth_errors import OAuthError, too_many_requests
from shared.domain.rates import Rate
from shared.storage import rate_limits
from shared.storage.redis_access.errors import is_unavailable
from shared.web import metrics
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.client_address import limit_subject
from shared.web.logs import add_to_line


def refusal(request: web.Request, limit: str, retry_after: int) -> OAuthError:
    """The 429 for ``request``, counted and named on its access line."""
    metrics.rate_limited(request, limit)
    add_to_line(request, rate_limited=limit)
    return too_many_requests(retry_after, f"rate limit {limit} reached by this client address")


async def count_address(request: web.Request, limit: str, rate: Rate) -> int | None:
    """Count ``request`` against its client address's ``limit``: None within ``rate``,
    else the seconds to wait. A count Redis cannot take (it is away or full) passes:
    the request meets that Redis again in its own work and is answered 503 there (or
    by redirect, RFC 6749 §4.1.2.1), and a limit is no reason to refuse everyone."""
    subject = limit_subject(request, request.app[SETTINGS])
    try:
        return await rate_limits.hit(request.app[REDIS], limit, rate, subject)
    except RedisError as exc:
        if not is_unavailable(exc):
            raise
        return None


async def limit_address(request: web.Request, limit: str, rate: Rate) -> None:
    """429 past ``rate`` for ``request``'s address. Called before a handler stores
    anything, so a refused request stores nothing."""
    retry_after = await count_address(request, limit, rate)
    if retry_after is not None:
        raise refusal(request, limit, retry_after)
