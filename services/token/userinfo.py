"""``GET`` and ``POST /userinfo``: the UserInfo endpoint (OpenID Connect Core §5.3), a
protected resource (RFC 6750) that answers an access token of the openid scope with the
claims of the person who approved it.

The token comes in the Authorization header (RFC 6750 §2.1) or, in a POST whose body is
``application/x-www-form-urlencoded``, as its ``access_token`` field (§2.2); in any other
body it is not looked for. A token in the query (§2.3) is refused, never used: it would be
written to access logs and browser histories (§5.3). Sending it in two places at once is
``invalid_request`` (§2: "Clients MUST NOT use more than one method").

Refusals (§3): 401 with a bare ``Bearer`` challenge when the request carries no token
(§3.1: no error code then); 401 ``invalid_token`` for a token that is unknown, expired,
revoked, of a disabled or deleted client, or whose person is gone (§3.1: "invalid for
other reasons"); 403 ``insufficient_scope`` for a token without ``openid`` (Core §5.3.1);
400 ``invalid_request`` for a malformed request. A token of the client credentials grant
is ``invalid_token``: it stands for no person (Core §5.3: the token comes of an
authentication request), and no scope would change that, as ``insufficient_scope`` would
suggest. An ID token is no access token (its ``typ`` is ``JWT``, not ``at+jwt``, RFC 9068
§4): unknown here.

The answer (§5.3.2): ``sub`` as the client sees it (public or pairwise, §8), and the
claims the granted scopes ask for (§5.4), with those the authentication request asked for
by name in its ``claims`` parameter's ``userinfo`` member (§5.5); a claim the person's
profile does not hold is left out. Never cached (``Cache-Control: no-store``).
"""

from __future__ import annotations

from aiohttp import hdrs, web
from tessera_resource_server.bearer import bearer_token
from tessera_resource_server.challenges import (
    BearerError,
    insufficient_scope,
    invalid_token,
    missing_token,
)

from shared.domain import user_claims
from shared.domain.oauth_errors import OAuthError
from shared.domain.openid import OPENID
from shared.storage import subjects, tokens, users
from shared.web.app_keys import TESSERA
from shared.web.base_app import json_response
from shared.web.client_cache import CLIENTS
from shared.web.forms import FORM_CONTENT_TYPE, read_form

PATH = "/userinfo"
# RFC 6750 §3: the realm of the challenge; Tessera's, as in its other challenges.
REALM = "tessera"
FORM_FIELD = "access_token"  # RFC 6750 §2.2
QUERY_PARAMETER = "access_token"  # RFC 6750 §2.3, not supported


def _refusal(exc: BearerError) -> OAuthError:
    """RFC 6750 §3's refusal, worded and challenged as the resource-server library does,
    answered by the service's error middleware."""
    return OAuthError(
        exc.error,
        exc.description,
        status=exc.status,
        cause=exc.cause,
        challenge=exc.challenge_for(REALM),
    )


def _invalid_request(description: str, cause: str) -> OAuthError:
    return _refusal(BearerError("invalid_request", description, status=400, cause=cause))


async def _presented_token(request: web.Request) -> str | None:
    """The access token of the request, from the header or the form body; None when it
    carries none."""
    if QUERY_PARAMETER in request.rel_url.query:
        raise _invalid_request(
            "Send the access token in the Authorization header or, in a POST, the form "
            "body: a token in the query is not accepted (RFC 6750 §2.3).",
            "a token in the query",
        )
    try:
        in_header = bearer_token(request)
    except BearerError as exc:
        raise _refusal(exc) from None
    in_form = None
    if request.method == hdrs.METH_POST and request.content_type == FORM_CONTENT_TYPE:
        in_form = (await read_form(request)).get(FORM_FIELD)
    if in_header is not None and in_form is not None:
        raise _invalid_request(
            "Send the access token in one place only (RFC 6750 §2).",
            "a token in both the header and the form body",
        )
    return in_header if in_header is not None else in_form


def _challenge() -> web.Response:
    """RFC 6750 §3.1: a request without a token learns how to authenticate, with no error
    code. A challenge, not a failure: no OAuth error is counted."""
    missing = missing_token()
    return json_response(
        missing.body(), status=401, headers={"WWW-Authenticate": missing.challenge_for(REALM)}
    )


async def userinfo(request: web.Request) -> web.Response:
    tessera = request.app[TESSERA]
    token = await _presented_token(request)
    if token is None:
        return _challenge()
    record = await tokens.find_access_token(tessera, token)
    if record is None:
        raise _refusal(invalid_token("access token unknown, expired or revoked"))
    # As introspection (RFC 7662 §2.2): a token of a disabled or deleted client is dead.
    client = await request.app[CLIENTS].get(record.client_id)
    if client is None or not client.enabled:
        raise _refusal(invalid_token(f"the client {record.client_id} is disabled or deleted"))
    if OPENID not in record.scope:
        # Core §5.3.1: the token of an OpenID Connect authentication request, which asks
        # for openid (§3.1.2.1); another token may serve the client, never here.
        cause = f"a token of client {record.client_id} without openid"
        raise _refusal(insufficient_scope([OPENID], cause))
    if record.username is None:
        cause = f"a client credentials token of {record.client_id} names no person"
        raise _refusal(invalid_token(cause))
    user = await users.get(tessera.redis, record.username)
    # The same sub, so a person added since under a departed one's name is not them.
    if user is None or user.sub != record.sub:
        raise _refusal(invalid_token("the person of the token no longer exists"))
    # The claims parameter's userinfo member (Core §5.5) adds nothing here: a named claim
    # is released only within the approved scopes (user_claims.approved_claims), and
    # UserInfo answers with all of theirs.
    names = user_claims.approved_claims(record.scope)
    return json_response(
        {
            "sub": await subjects.subject_for(tessera.redis, client, record.sub),
            **user_claims.released(user.claims, user.updated_at, names),
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, userinfo)
    app.router.add_post(PATH, userinfo)
