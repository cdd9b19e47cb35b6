"""The web origins that browser-based clients call Tessera from: the origins of the
registered redirect URIs of enabled public clients (the single-page apps of OAuth 2.0 for
Browser-Based Applications). ``shared.web.cors`` answers cross-origin requests from them.

A service keeps the set in memory and checks a request's ``Origin`` against it without a
Redis round trip. It is read whole when the service starts listening for client changes
(``shared.web.client_changes``) and updated for each client whose change is announced. While
the service is not listening, the set is empty: no origin is allowed (fail closed) rather
than a deleted client's origin kept.

A confidential client's origins are never allowed: it has a secret, and a secret has no
place in a browser. Nor are redirect URIs that name no web origin (a native app's
private-use scheme, RFC 8252 §7.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from shared.storage import clients
from shared.storage.clients import Client
from shared.web.app_keys import REDIS

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

DEFAULT_PORTS = {"http": 80, "https": 443}


def web_origin(uri: str) -> str | None:
    """The origin of an http or https URI as a browser sends it in ``Origin`` (RFC 6454
    §6.2: scheme, lower-case ASCII host, and the port unless it is the scheme's default),
    or None when it has none."""
    try:
        parts = urlsplit(uri)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        if scheme not in DEFAULT_PORTS or not host:
            return None
        # Browsers send an internationalized host in its ASCII (punycode) form.
        host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):  # a bad port, a host IDNA cannot encode
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origins_of(client: Client | None) -> frozenset[str]:
    """The origins a client's browser app may call from: none unless it is an enabled
    public client."""
    if client is None or not client.is_public or not client.enabled:
        return frozenset()
    found = (web_origin(uri) for uri in client.redirect_uris)
    return frozenset(origin for origin in found if origin is not None)


class BrowserOrigins:
    """The allowed origins, read through ``redis``; a ``ClientFollower`` of the changes."""

    name = "browser origins (CORS)"

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._of_client: dict[str, frozenset[str]] = {}
        self._allowed: frozenset[str] = frozenset()

    def allows(self, origin: str) -> bool:
        return origin in self._allowed

    async def follow_all(self) -> None:
        self._of_client = {
            client.client_id: origins
            for client in await clients.list_all(self._redis)
            if (origins := origins_of(client))
        }
        self._update()

    async def changed(self, client_id: str) -> None:
        origins = origins_of(await clients.get(self._redis, client_id))
        if origins:
            self._of_client[client_id] = origins
        else:
            self._of_client.pop(client_id, None)
        self._update()

    def unfollow(self) -> None:
        self._of_client = {}
        self._update()

    def _update(self) -> None:
        # Rebuilt whole on each change (rare), so a request's check is one set lookup.
        self._allowed = frozenset().union(*self._of_client.values())


# The token and authorize services' allowed browser origins.
BROWSER_ORIGINS: web.AppKey[BrowserOrigins] = web.AppKey("browser_origins")


def browser_origins(app: web.Application) -> BrowserOrigins:
    """The service's allowed origins, for ``client_changes.follow_client_changes``."""
    origins = BrowserOrigins(app[REDIS])
    app[BROWSER_ORIGINS] = origins
    return origins
