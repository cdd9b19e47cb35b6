"""The authorization response: what goes back to the client through its redirect URI.

A code (RFC 6749 §4.1.2) or, for the implicit grant, an access token in the fragment
(§4.2.2); an error (§4.1.2.1, §4.2.2.1); each with ``iss`` (RFC 9207 §2).
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from services.authorize import backchannel_logout
from services.authorize.authorization_request import RedirectableError
from services.authorize.responses import see_other
from shared.config.settings import Settings
from shared.domain import claims_request, user_claims
from shared.domain.openid import OPENID
from shared.domain.token_records import Authentication, Grant
from shared.storage import codes, families, subjects, tokens, users
from shared.storage.browser_sessions import SignedIn
from shared.storage.clients import Client
from shared.storage.codes import CodeRecord
from shared.storage.pending_requests import AuthorizationRequest
from shared.web import metrics
from shared.web.app_keys import REDIS, SETTINGS, TESSERA


def redirect_to_client(
    settings: Settings,
    redirect_uri: str,
    params: dict[str, str | None],
    *,
    in_fragment: bool = False,
) -> web.Response:
    """Back to the client with ``params`` and ``iss`` (RFC 9207 §2): added to the redirect
    URI's own query (RFC 6749 §3.1.2 keeps it), or for the implicit grant in the fragment
    (RFC 6749 §4.2.2), which the browser never sends to a server."""
    parts = urlsplit(redirect_uri)
    added = urlencode(
        {k: v for k, v in {**params, "iss": settings.issuer}.items() if v is not None}
    )
    if in_fragment:
        return see_other(urlunsplit(parts._replace(fragment=added)))
    query = f"{parts.query}&{added}" if parts.query else added
    return see_other(urlunsplit(parts._replace(query=query)))


def error_redirect(settings: Settings, exc: RedirectableError) -> web.Response:
    return redirect_to_client(
        settings,
        exc.redirect_uri,
        {"error": exc.error, "error_description": exc.description, "state": exc.state},
        in_fragment=exc.in_fragment,
    )


async def issue(
    request: web.Request,
    client: Client,
    auth_request: AuthorizationRequest,
    signed_in: SignedIn,
    approved: list[str],
) -> web.Response:
    """The answer to an approved request: a code (RFC 6749 §4.1.2) or, for the implicit
    grant, a token (§4.2.2); ``access_denied`` when the person signed in to the browser's
    session has since been disabled or deleted (the admin API), so that a session that
    outlives them issues nothing more."""
    settings = request.app[SETTINGS]
    refusal = await _refusal(request, client, auth_request, signed_in)
    if refusal is not None:
        metrics.oauth_error(request, refusal.error)
        return error_redirect(settings, refusal)
    if auth_request.implicit:
        return await _implicit_response(request, client, auth_request, signed_in, approved)
    # Only an approved openid scope makes this a sign-in: a person who unticked it has not
    # let the client know who they are (no ID token, no logout token).
    openid = OPENID in approved
    code = await codes.create(
        request.app[TESSERA],
        CodeRecord(
            family=families.new_family(),
            client_id=client.client_id,
            redirect_uri=auth_request.redirect_uri_param,
            username=signed_in.username,
            sub=signed_in.sub,
            scope=approved,
            code_challenge=auth_request.code_challenge,
            code_challenge_method=auth_request.code_challenge_method,
            authentication=_authentication(auth_request, signed_in, approved) if openid else None,
            nonce=auth_request.nonce if openid else None,
        ),
    )
    if openid:  # Back-Channel Logout 1.0 §2.7: told when the session ends
        await backchannel_logout.record_relying_party(request, client, signed_in)
    return redirect_to_client(
        settings, auth_request.redirect_uri, {"code": code, "state": auth_request.state}
    )


async def _refusal(
    request: web.Request, client: Client, auth_request: AuthorizationRequest, signed_in: SignedIn
) -> RedirectableError | None:
    """Why the approved request gets nothing, if it does not: the person of the session
    disabled or deleted since they signed in, or not the one an id_token_hint named."""
    redis = request.app[REDIS]

    def refused(error: str, description: str) -> RedirectableError:
        return RedirectableError(
            error,
            description,
            auth_request.redirect_uri,
            auth_request.state,
            in_fragment=auth_request.implicit,
        )

    user = await users.get(redis, signed_in.username)
    if user is None or not user.enabled or user.sub != signed_in.sub:
        return refused("access_denied", "The account cannot be used.")
    if auth_request.hint_sub is not None:
        # Core §3.1.2.1: the id_token_hint named someone else than who signed in.
        if auth_request.hint_sub != await subjects.subject_for(redis, client, signed_in.sub):
            return refused(
                "login_required", "The person signed in is not the one the id_token_hint names."
            )
    return None


def _authentication(
    auth_request: AuthorizationRequest, signed_in: SignedIn, approved: list[str]
) -> Authentication:
    """What the ID tokens of an OpenID Connect grant say of the sign-in: when, the
    session, and the claims the request placed in the ID token, among those approved."""
    asked = claims_request.names_for(auth_request.claims, "id_token")
    names = user_claims.approved_claims(approved, asked)
    return Authentication(signed_in.auth_time, signed_in.sid, tuple(names))


async def _implicit_response(
    request: web.Request,
    client: Client,
    auth_request: AuthorizationRequest,
    signed_in: SignedIn,
    approved: list[str],
) -> web.Response:
    """RFC 6749 §4.2.2: the access token in the fragment, never a refresh token."""
    settings = request.app[SETTINGS]
    grant = Grant(
        families.new_family(), client.client_id, approved, signed_in.username, signed_in.sub
    )
    issued = await tokens.issue(request.app[TESSERA], client, grant, refreshable=False)
    assert issued is not None  # a new family cannot have been revoked
    metrics.grant_issued(request, "implicit")
    expires_in = str(issued.expires_in) if issued.expires_in is not None else None
    return redirect_to_client(
        settings,
        auth_request.redirect_uri,
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": " ".join(issued.scope),
            "state": auth_request.state,
        },
        in_fragment=True,
    )
