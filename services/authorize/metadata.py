"""Authorization server metadata (RFC 8414 §2), truthful about what is implemented."""

from __future__ import annotations

from aiohttp import web

from services.authorize.authorization_request import SUPPORTED_RESPONSE_TYPES
from shared import keys, pkce
from shared.app_keys import REDIS, SETTINGS
from shared.client_auth import SECRET_AUTH_METHODS
from shared.clients import GRANT_TYPES
from shared.web import json_response


async def metadata(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    scope_names = sorted(await request.app[REDIS].smembers(keys.SCOPE_INDEX))
    return json_response(
        {
            "issuer": settings.issuer,
            "authorization_endpoint": f"{settings.issuer}/authorize",
            "token_endpoint": settings.token_endpoint,
            "introspection_endpoint": settings.introspection_endpoint,
            "scopes_supported": scope_names,
            "response_types_supported": list(SUPPORTED_RESPONSE_TYPES),
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": [*SECRET_AUTH_METHODS, "none"],
            "introspection_endpoint_auth_methods_supported": SECRET_AUTH_METHODS,
            "code_challenge_methods_supported": list(pkce.METHODS),
            "authorization_response_iss_parameter_supported": True,
        },
        headers={"Cache-Control": "no-cache"},
    )
