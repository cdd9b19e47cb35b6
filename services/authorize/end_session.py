"""RP-Initiated Logout 1.0: ``/end_session``, where a client sends the person's browser to
sign out of Tessera (§2), and from where it is sent back to the client (§3).

GET or POST (§2), with ``id_token_hint``, ``client_id``, ``post_logout_redirect_uri``,
``state``, ``logout_hint`` and ``ui_locales``; the last two are accepted and not used (one
person per browser session, one language of the pages). A POST from the client's site
comes without the session cookie (SameSite=Lax), so it is sent on as the same GET.

- An ``id_token_hint`` must be an ID token Tessera issued, expired or not (§2,
  ``openid_tokens.read_hint``); anything else is refused with the error page, never a
  redirect: an access token, another issuer's token, a forged or unsigned one.
- The client is the hint's audience, or ``client_id``; both given, they must agree (§2).
- ``post_logout_redirect_uri`` is used only when the client is known and enabled and the
  URI is exactly one it registered (§3.1); otherwise the person stays on the signed-out
  page, which says why in plain words, and the log says why with fingerprints.
- The person is signed out at once when the hint names them and this session: its
  ``sub`` as that client sees the person and, when it has one, its ``sid``. Otherwise
  (no hint, someone else's, an older session's) Tessera asks first (§2: the OP SHOULD ask
  whether the End-User wants to log out), so that a link on any site cannot sign a
  person out.
- After signing out: to the URI with ``state`` added to its query (§3), or the signed-out
  page; the browser forgets its session cookie either way.

The confirmation form carries the request's ``client_id``, ``post_logout_redirect_uri``
and ``state`` in hidden fields, with the session's CSRF token, back to this endpoint. No
signature is needed: its answer applies the same rules to them, so a tampered form can
do no more than a link to ``/end_session`` with those values already can, and only the
signed-in person's own browser holds the CSRF token that makes the form count. Nothing is
stored for a request that waits: an anonymous caller makes Redis hold nothing here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from services.authorize import sessions
from services.authorize.authorization_request import MAX_FREE_TEXT
from services.authorize.logout import sign_out, signed_out_page
from services.authorize.responses import render, see_other
from shared.domain.oauth_errors import invalid_request
from shared.security import crypto, fingerprint, openid_tokens
from shared.storage import clients, subjects
from shared.storage.browser_sessions import SignedIn
from shared.storage.clients import Client
from shared.web.app_keys import REDIS, SETTINGS, TESSERA
from shared.web.forms import read_pairs, single_valued

log = logging.getLogger("tessera.authorize")

END_SESSION_PATH = "/end_session"

# A hint longer than this is no ID token of Tessera's, whose are well under 2 KiB; and
# a POSTed request is sent on as a GET, whose request line aiohttp takes up to 8 KiB.
MAX_ID_TOKEN_HINT = 4096
# What the confirmation form carries back (module docstring).
PENDING_FIELDS = ("client_id", "post_logout_redirect_uri", "state")

NOT_SENT_BACK = "The application did not give a return address registered for it, so you stay here."


@dataclass(frozen=True, slots=True)
class ReturnTo:
    """Where the browser goes after signing out (§3): a URI the client registered."""

    client: Client
    uri: str
    state: str | None

    def location(self) -> str:
        """The URI with ``state`` added to its own query (§3)."""
        if self.state is None:
            return self.uri
        parts = urlsplit(self.uri)
        added = urlencode({"state": self.state})
        return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A logout request as read: the hint's claims, the client the request is from (when
    known), where to return, and whether a return address was refused."""

    hint: dict[str, Any] | None
    client: Client | None
    return_to: ReturnTo | None
    return_refused: bool

    def pending(self, params: dict[str, str]) -> list[tuple[str, str]]:
        """The confirmation form's hidden fields: the request without its hint, the
        client named by id (the hint's audience when it named it)."""
        carried = {**params, "client_id": self.client.client_id} if self.client else params
        return [(name, carried[name]) for name in PENDING_FIELDS if name in carried]


async def end_session(request: web.Request) -> web.Response:
    """§2 (GET and POST), and the confirmation form's answer (POST with a CSRF token)."""
    params = await _parameters(request)
    if request.method == "POST" and "csrf_token" in params:
        return await _confirmed(request, params)
    logout = await _read(request, params)
    session = await sessions.load(request)
    if session is None and request.method == "POST":
        # The session cookie is SameSite=Lax: a client's site posting here is cross-site,
        # and the browser sends the cookie with a top-level GET only. So: the request
        # again, as a GET (§2 allows either), without the hint, which a URL would leave
        # in access logs and the browser's history (the reason the client posted it):
        # its client by id instead, and the person confirms.
        return see_other(f"{END_SESSION_PATH}?{urlencode(logout.pending(params))}")
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        return _after_sign_out(request, logout)  # nobody to sign out: straight on
    if not await _names_this_session(request, logout, signed_in):
        return _confirmation_page(request, logout, params, signed_in)
    await sign_out(request, signed_in)
    _log_sign_out(signed_in, logout, "at the request of")
    return _after_sign_out(request, logout)


async def _confirmed(request: web.Request, params: dict[str, str]) -> web.Response:
    """The person confirmed: sign out the session whose CSRF token the form echoes."""
    session = await sessions.load_for_form(request, params.get("csrf_token"))
    logout = await _read(request, {k: v for k, v in params.items() if k != "id_token_hint"})
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None:
        await sign_out(request, signed_in)
        _log_sign_out(signed_in, logout, "confirmed; asked by")
    return _after_sign_out(request, logout)


async def _parameters(request: web.Request) -> dict[str, str]:
    pairs: Iterable[tuple[str, str]] = (
        await read_pairs(request) if request.method == "POST" else request.query.items()
    )
    params = single_valued(pairs)
    state = params.get("state")
    # RFC 6749 Appendix A.5's state syntax (VSCHAR), bounded as at /authorize.
    if state is not None and not _is_state(state):
        raise invalid_request("The state parameter is malformed.", "state too long or not VSCHAR")
    if len(params.get("id_token_hint", "")) > MAX_ID_TOKEN_HINT:
        raise invalid_request(
            "The id_token_hint is not a valid ID token of this server.", "id_token_hint too long"
        )
    return params


def _is_state(state: str) -> bool:
    return len(state) <= MAX_FREE_TEXT and all(" " <= ch <= "~" for ch in state)


async def _read(request: web.Request, params: dict[str, str]) -> LogoutRequest:
    """The request's hint, client and return address, by the rules of the docstring."""
    hint = _hint(request, params.get("id_token_hint"))
    client_id = params.get("client_id")
    if hint is not None:
        audience = hint["aud"] if isinstance(hint["aud"], list) else [hint["aud"]]
        if client_id is not None and client_id not in audience:
            # §2: the OP MUST verify that client_id is the client the hint was issued to.
            raise invalid_request(
                "The id_token_hint was not issued to this application.",
                f"client_id {fingerprint.of(client_id)} is not the hint's audience",
            )
        if client_id is None and len(audience) == 1 and isinstance(audience[0], str):
            client_id = audience[0]
    client = await _client(request, client_id)
    uri = params.get("post_logout_redirect_uri")
    if uri is None:
        return LogoutRequest(hint, client, None, False)
    reason = _unusable(client, client_id, uri)
    if reason is not None:
        log.info("post_logout_redirect_uri %s not used: %s", fingerprint.of(uri), reason)
        return LogoutRequest(hint, client, None, True)
    assert client is not None  # _unusable said so
    return LogoutRequest(hint, client, ReturnTo(client, uri, params.get("state")), False)


def _hint(request: web.Request, value: str | None) -> dict[str, Any] | None:
    """The claims of ``id_token_hint``; the error page for one Tessera did not issue."""
    if value is None:
        return None
    tessera = request.app[TESSERA]
    claims = None
    if tessera.key_set is not None:
        claims = openid_tokens.read_hint(tessera.key_set, value, issuer=tessera.settings.issuer)
    if claims is None:  # why is in read_hint's log line
        raise invalid_request(
            "The id_token_hint is not a valid ID token of this server.", "id_token_hint refused"
        )
    return claims


async def _client(request: web.Request, client_id: str | None) -> Client | None:
    """The client the request is from: known and enabled, or None."""
    if client_id is None:
        return None
    client = await clients.get(request.app[REDIS], client_id)
    return client if client is not None and client.enabled else None


def _unusable(client: Client | None, client_id: str | None, uri: str) -> str | None:
    """Why ``uri`` may not be returned to (§3.1), or None when it may."""
    if client_id is None:
        return "no client named (neither id_token_hint nor client_id)"
    if client is None:
        return f"client {fingerprint.of(client_id)} unknown or disabled"
    # Exact string comparison, as for redirect URIs (RFC 9700 §4.1.3).
    if uri not in client.post_logout_redirect_uris:
        return f"not registered for client {client.client_id}"
    return None


async def _names_this_session(
    request: web.Request, logout: LogoutRequest, signed_in: SignedIn
) -> bool:
    """Whether the hint names the person signed in here, in this session (§2)."""
    hint, client = logout.hint, logout.client
    if hint is None or client is None:
        return False
    seen_as = await subjects.subject_for(request.app[REDIS], client, signed_in.sub)
    if not isinstance(hint["sub"], str) or not crypto.same(hint["sub"], seen_as):
        return False
    sid = hint.get("sid")
    if sid is None:
        return True
    if not isinstance(sid, str) or not signed_in.sid:
        return False
    return crypto.same(sid, await subjects.session_for(request.app[REDIS], client, signed_in.sid))


def _confirmation_page(
    request: web.Request, logout: LogoutRequest, params: dict[str, str], signed_in: SignedIn
) -> web.Response:
    return render(
        request,
        "end_session.html",
        {
            "action": END_SESSION_PATH,
            "username": signed_in.username,
            "csrf_token": signed_in.csrf_token,
            "client": logout.return_to.client if logout.return_to else None,
            "pending": logout.pending(params),
        },
    )


def _after_sign_out(request: web.Request, logout: LogoutRequest) -> web.Response:
    """Back to the client (§3), or the signed-out page; the cookie goes either way."""
    if logout.return_to is None:
        return signed_out_page(request, NOT_SENT_BACK if logout.return_refused else "")
    response = see_other(logout.return_to.location())
    sessions.clear_cookie(response, request.app[SETTINGS])
    return response


def _log_sign_out(signed_in: SignedIn, logout: LogoutRequest, how: str) -> None:
    client = logout.client.client_id if logout.client else "(none named)"
    log.info("user %s signed out, %s client %s", signed_in.username, how, client)
