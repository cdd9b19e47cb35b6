"""Protecting an aiohttp API with Tessera's access tokens: the resource server's side of
RFC 6750 (bearer tokens), RFC 7662 (introspection) and RFC 9068 (JWT access tokens).

    from tessera_resource_server import (
        ACCESS_TOKEN, ResourceServerSettings, protect, requires_scope,
    )

    @requires_scope("notes:read")
    async def list_notes(request: web.Request) -> web.Response:
        token = request[ACCESS_TOKEN]          # sub, client_id, scopes, username, exp ...
        ...

    app = web.Application()
    app.router.add_get("/notes", list_notes)
    protect(app, ResourceServerSettings(issuer=..., introspection_endpoint=..., ...))

Modules: ``settings`` (what to configure), ``bearer`` (RFC 6750 §2.1),
``challenges`` (RFC 6750 §3), ``introspection_client`` (RFC 7662 §2), ``token_cache``
(RFC 7662 §4), ``jwt_verification`` (RFC 9068 §4, RFC 8725: the JWT verifier Tessera
uses too), ``jwks`` (Tessera's JWK Set, RFC 7517 §5), ``scope_rules`` (Tessera's scope
definitions as a resource policy) and ``scope_resources`` (their grammar, which Tessera
checks definitions with), ``access_token`` (what the handler reads) and ``middleware``
(the aiohttp glue).

The package depends on aiohttp, pyjwt and orjson only, never on Tessera's server:
Tessera depends on it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tessera_resource_server.access_token import AccessToken
    from tessera_resource_server.middleware import (
        ACCESS_TOKEN,
        RESOURCE_SERVER,
        ResourceServer,
        protect,
        public,
        required_scopes,
        requires_scope,
    )
    from tessera_resource_server.settings import ResourceServerSettings

__all__ = [
    "ACCESS_TOKEN",
    "RESOURCE_SERVER",
    "AccessToken",
    "ResourceServer",
    "ResourceServerSettings",
    "protect",
    "public",
    "required_scopes",
    "requires_scope",
]

# Each public name from the module that defines it, loaded on first use: importing one
# module of the package (Tessera's server imports the JWT verifier and the scope
# grammar, below its web layer) must not load aiohttp through the middleware.
_MODULE_OF = {
    "AccessToken": "access_token",
    "ResourceServerSettings": "settings",
    **dict.fromkeys(
        (
            "ACCESS_TOKEN",
            "RESOURCE_SERVER",
            "ResourceServer",
            "protect",
            "public",
            "required_scopes",
            "requires_scope",
        ),
        "middleware",
    ),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
