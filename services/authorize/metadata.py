"""Authorization server metadata (RFC 8414 §2) and OpenID Provider metadata (OpenID
Connect Discovery 1.0 §3), truthful about what is implemented."""

from __future__ import annotations

from aiohttp import web

from services.authorize.authorization_request import SUPPORTED_RESPONSE_TYPES
from services.authorize.end_session import END_SESSION_PATH
from shared.domain.user_claims import STANDARD_CLAIMS
from shared.security import pkce
from shared.storage import scopes
from shared.storage.clients import AUTH_METHODS, REGISTERED_GRANT_TYPES, SUBJECT_TYPES
from shared.web.app_keys import REDIS, SETTINGS, TESSERA
from shared.web.base_app import json_response
from shared.web.client_auth import SECRET_AUTH_METHODS
from shared.web.cors import vary_on_origin

METADATA_PATH = "/.well-known/oauth-authorization-server"  # RFC 8414 §3
OPENID_CONFIGURATION_PATH = "/.well-known/openid-configuration"  # Discovery 1.0 §4
# What ID tokens (shared.storage.id_tokens) and UserInfo answers may carry.
CLAIMS_SUPPORTED = [
    *("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "amr", "sid"),
    *STANDARD_CLAIMS,
    "updated_at",
]


async def metadata(request: web.Request) -> web.Response:
    return _metadata_response(await _oauth_metadata(request))


async def openid_configuration(request: web.Request) -> web.Response:
    """Discovery 1.0 §4: RFC 8414's fields and OpenID Connect's. Without signing keys
    there are no ID tokens, so no OpenID Provider to describe: 404."""
    key_set = request.app[TESSERA].key_set
    if key_set is None:
        raise web.HTTPNotFound()
    settings = request.app[SETTINGS]
    # The signing key's algorithm first: it is the one ID tokens are signed with.
    algs = list(dict.fromkeys([key_set.signing.alg, *(key.alg for key in key_set.keys)]))
    return _metadata_response(
        {
            **await _oauth_metadata(request),
            "userinfo_endpoint": settings.userinfo_endpoint,
            "subject_types_supported": list(SUBJECT_TYPES),
            "id_token_signing_alg_values_supported": algs,
            "claims_supported": CLAIMS_SUPPORTED,
            "claims_parameter_supported": True,
            # Discovery 1.0 §3: request_uri_parameter_supported defaults to true; it is not.
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claim_types_supported": ["normal"],
            # RP-Initiated Logout 1.0 §2.1 and Back-Channel Logout 1.0 §2.1; no front-channel.
            "end_session_endpoint": f"{settings.issuer}{END_SESSION_PATH}",
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
        }
    )


def _metadata_response(document: dict[str, object]) -> web.Response:
    return json_response(document, headers=vary_on_origin({"Cache-Control": "no-cache"}))


async def _oauth_metadata(request: web.Request) -> dict[str, object]:
    settings = request.app[SETTINGS]
    scope_names = await scopes.names(request.app[REDIS])
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{settings.issuer}/authorize",
        "token_endpoint": settings.token_endpoint,
        "jwks_uri": settings.jwks_uri,
        "scopes_supported": scope_names,
        "response_types_supported": list(SUPPORTED_RESPONSE_TYPES),
        # query for codes, fragment for the implicit grant (RFC 6749 §4.2.2).
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": list(REGISTERED_GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint": settings.revocation_endpoint,
        # RFC 7009 §2.1: public clients identify with client_id alone.
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint": settings.introspection_endpoint,
        "introspection_endpoint_auth_methods_supported": SECRET_AUTH_METHODS,
        "code_challenge_methods_supported": list(pkce.METHODS),
        "authorization_response_iss_parameter_supported": True,
    }
