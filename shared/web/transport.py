"""Require HTTPS: webMethods Integration Server's setting, on by default (RFC 6749 §3.1,
§3.2, §10.9: tokens, codes and credentials travel only over TLS).

Behind a TLS-terminating ingress the service sees plain http; the ingress says the
original scheme in ``X-Forwarded-Proto``, which is believed only from the proxies listed
in TESSERA_TRUSTED_PROXIES (anyone else could simply send the header). Probes and metrics
scrapes (``/healthz``, ``/readyz``, ``/metrics``) come from inside the cluster over plain
http and are exempt: they carry no credentials.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from shared.config.settings import Settings, is_loopback_host
from shared.domain.oauth_errors import OAuthError
from shared.web.app_keys import SETTINGS
from shared.web.client_address import is_trusted_proxy

log = logging.getLogger("tessera.transport")

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def is_https(request: web.Request, settings: Settings) -> bool:
    """Whether the client's request reached us over TLS, directly or through a trusted
    TLS-terminating proxy."""
    if request.secure:
        return True
    if is_trusted_proxy(settings, request.remote):
        # A proxy appends to the header; the last value is the one the nearest (trusted)
        # proxy saw. Several header lines are one comma-separated list (RFC 9110 §5.3).
        forwarded = ",".join(request.headers.getall("X-Forwarded-Proto", []))
        return forwarded.rsplit(",", 1)[-1].strip().lower() == "https"
    return False


def https_required() -> OAuthError:
    return OAuthError(
        "invalid_request",
        "This endpoint requires HTTPS.",
        cause="plain-http request refused (Require HTTPS)",
    )


@web.middleware
async def require_https(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if (
        settings.require_https
        and request.path not in EXEMPT_PATHS
        and not is_https(request, settings)
        # Development mode (TESSERA_INSECURE_LOOPBACK): plain http from this machine only.
        and not (settings.insecure_loopback and is_loopback_host(request.remote))
    ):
        raise https_required()
    return await handler(request)
