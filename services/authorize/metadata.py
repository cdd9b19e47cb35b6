"""Authorization server metadata (RFC 8414 §2), truthful about what is implemented."""

from __future__ import annotations

from aiohttp import web

from services.authorize.authorization_request import SUPPORTED_RESPONSE_TYPES
from shared.security import pkce
from shared.storage import scopes
from shared.storage.clients import GRANT_TYPES, REFRESH_GRANT
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.base_app import json_response
from shared.web.client_auth import SECRET_AUTH_METHODS
from shared.web.cors import vary_on_origin

METADATA_PATH = "/.well-known/oauth-authorization-server"  # RFC 8414 §3


async def metadata(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    scope_names = await scopes.names(request.app[REDIS])
    return json_response(
        {
            "issuer": settings.issuer,
            "authorization_endpoint": f"{settings.issuer}/authorize",
            "token_endpoint": settings.token_endpoint,
            "jwks_uri": settings.jwks_uri,
            "scopes_supported": scope_names,
            "response_types_supported": list(SUPPORTED_RESPONSE_TYPES),
            # query for codes, fragment for the implicit grant (RFC 6749 §4.2.2).
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": [*GRANT_TYPES, REFRESH_GRANT],
            "token_endpoint_auth_methods_supported": [*SECRET_AUTH_METHODS, "none"],
            "revocation_endpoint": settings.revocation_endpoint,
            # RFC 7009 §2.1: public clients identify with client_id alone.
            "revocation_endpoint_auth_methods_supported": [*SECRET_AUTH_METHODS, "none"],
            "introspection_endpoint": settings.introspection_endpoint,
            "introspection_endpoint_auth_methods_supported": SECRET_AUTH_METHODS,
            "code_challenge_methods_supported": list(pkce.METHODS),
            "authorization_response_iss_parameter_supported": True,
        },
        headers=vary_on_origin({"Cache-Control": "no-cache"}),
    )
