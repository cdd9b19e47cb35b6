"""The admin HTTP API under ``/admin/``: the CLI's token, scope, client and user operations.

Off unless TESSERA_ADMIN_TOKEN is set; every request then carries it as a bearer token
(RFC 6750 §2.1). The Ingress does not route ``/admin/``: it is for operators inside the
cluster. Each handler calls the same ``shared.storage`` function as the CLI, and a refusal
of that function (``shared.domain.domain_errors``) is answered here, in ``domain_errors``.

A name in the URL that names nothing is logged as its fingerprint (``shared.security.fingerprint``):
it may be a credential pasted in the wrong place.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from shared.domain.domain_errors import Conflict, DomainError, NotFound
from shared.domain.oauth_errors import OAuthError, invalid_request
from shared.security import fingerprint
from shared.security.crypto import digest, same
from shared.storage import clients, management, scopes, users
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.base_app import json_response
from shared.web.forms import read_form
from shared.web.logs import security_event

PREFIX = "/admin/"


def _unauthorized(cause: str) -> OAuthError:
    return OAuthError(
        "invalid_token",
        "The admin API needs the admin bearer token.",
        status=401,
        cause=cause,
        challenge='Bearer realm="tessera-admin"',
    )


def _refusal(exc: DomainError) -> OAuthError:
    """The answer to a refused operation: 404 when it names nothing (RFC 9110 §15.5.5),
    409 when it clashes with what is stored (§15.5.10), 400 for a bad value (§15.5.1);
    the body says why, in the error's public message."""
    if isinstance(exc, NotFound):
        # The administrator learns which name; the log only its fingerprint.
        cause = f"no {exc.kind} {fingerprint.of(exc.name)}"
        return OAuthError("not_found", exc.message, status=404, cause=cause)
    if isinstance(exc, Conflict):
        return OAuthError("conflict", exc.message, status=409)
    # The message may quote the value refused: the response shows it, the log does not.
    return invalid_request(exc.message, cause="a value the operation refused")


@web.middleware
async def require_admin_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PREFIX):
        return await handler(request)
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise _unauthorized("no bearer credential")
    # Digests compared, so the comparison's time does not tell the token's length either.
    expected = digest(request.app[SETTINGS].admin_token)
    if not same(digest(credential.strip()), expected):
        security_event("admin_auth_failed", remote=request.remote)
        raise _unauthorized("wrong admin credential")
    return await handler(request)


@web.middleware
async def domain_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every admin handler's refusals, answered as ``_refusal`` says. Only under
    ``/admin/``: anywhere else such an error is a fault, answered as server_error."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except DomainError as exc:
        raise _refusal(exc) from None


async def list_tokens(request: web.Request) -> web.Response:
    found = await management.list_tokens(
        request.app[REDIS],
        client_id=request.query.get("client"),
        username=request.query.get("user"),
    )
    return json_response({"tokens": found})


async def revoke_tokens(request: web.Request) -> web.Response:
    """Form with exactly one of ``token``, ``client`` or ``user``."""
    redis = request.app[REDIS]
    form = await read_form(request)
    given = [name for name in ("token", "client", "user") if name in form]
    if len(given) != 1:
        raise invalid_request("Give exactly one of token, client or user.")
    if "token" in form:
        revoked = int(await management.revoke_token(redis, form["token"]))
    elif "client" in form:
        revoked = await management.revoke_client_tokens(redis, form["client"])
    else:
        revoked = await management.revoke_user_tokens(redis, form["user"])
    return json_response({"revoked_grants": revoked})


async def list_scopes(request: web.Request) -> web.Response:
    found = await scopes.list_all(request.app[REDIS])
    return json_response({"scopes": [scope.view() for scope in found]})


async def show_scope(request: web.Request) -> web.Response:
    found = await management.show_scope(request.app[REDIS], request.match_info["name"])
    return json_response(found.view())


async def delete_scope(request: web.Request) -> web.Response:
    await management.delete_scope(request.app[REDIS], request.match_info["name"])
    return web.Response(status=204)


async def set_client_enabled(request: web.Request) -> web.Response:
    enabled = request.match_info["action"] == "enable"
    client_id = request.match_info["client_id"]
    client = await clients.set_enabled(request.app[REDIS], client_id, enabled)
    return json_response(client.public_view())


async def delete_client(request: web.Request) -> web.Response:
    revoked = await management.delete_client(request.app[REDIS], request.match_info["client_id"])
    return json_response({"revoked_grants": revoked})


# RFC 7396 §4's media type, which says the body is a merge patch; plain JSON is taken too.
JSON_TYPES = ("application/json", "application/merge-patch+json")
# Bodies of a user's claims are a few kilobytes at most.
MAX_JSON_BODY = 64 * 1024


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request's body, a JSON object."""
    if request.content_type not in JSON_TYPES:
        raise invalid_request(f"The request body must be {' or '.join(JSON_TYPES)}.")
    body = await request.read()
    if len(body) > MAX_JSON_BODY:
        raise invalid_request(f"The request body is longer than {MAX_JSON_BODY} bytes.")
    try:
        found = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid_request("The request body is not JSON.") from None
    if not isinstance(found, dict):
        raise invalid_request("The request body must be a JSON object.")
    return found


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise invalid_request(f"{name} must be a string.")
    return value


async def add_user(request: web.Request) -> web.Response:
    """``{"username", "password", "claims"?}``; 201 with the user, never its password."""
    body = await _json_object(request)
    unknown = sorted(set(body) - {"username", "password", "claims"})
    if unknown:
        raise invalid_request(f"Unknown members: {', '.join(unknown)}.")
    claims = body.get("claims", {})
    if not isinstance(claims, dict):
        raise invalid_request("claims must be a JSON object.")
    user = await users.add(
        request.app[REDIS],
        _string(body, "username"),
        _string(body, "password"),
        request.app[SETTINGS].password_hashing,
        claims=claims,
    )
    location = request.app.router["admin-user"].url_for(username=user.username)
    return json_response(user.public_view(), status=201, headers={"Location": str(location)})


async def show_user(request: web.Request) -> web.Response:
    user = await users.existing(request.app[REDIS], request.match_info["username"])
    return json_response(user.public_view())


async def change_user(request: web.Request) -> web.Response:
    """A JSON merge patch (RFC 7396) of the user as ``GET`` shows it, of which only
    ``claims`` may change: ``{"claims": {"email": "...", "phone_number": null}}``."""
    body = await _json_object(request)
    fixed = sorted(set(body) - {"claims"})
    if fixed:
        raise invalid_request(f"Only claims can be changed, not {', '.join(fixed)}.")
    changes = body.get("claims")
    if not isinstance(changes, dict):
        raise invalid_request("claims must be a JSON object.")
    user = await users.update_claims(request.app[REDIS], request.match_info["username"], changes)
    return json_response(user.public_view())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/tokens", list_tokens)
    app.router.add_post("/admin/tokens/revoke", revoke_tokens)
    app.router.add_get("/admin/scopes", list_scopes)
    app.router.add_get("/admin/scopes/{name}", show_scope)
    app.router.add_delete("/admin/scopes/{name}", delete_scope)
    app.router.add_post("/admin/clients/{client_id}/{action:enable|disable}", set_client_enabled)
    app.router.add_delete("/admin/clients/{client_id}", delete_client)
    app.router.add_post("/admin/users", add_user)
    user = app.router.add_resource("/admin/users/{username}", name="admin-user")
    user.add_route("GET", show_user)
    user.add_route("PATCH", change_user)
