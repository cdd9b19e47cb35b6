"""The browser side: /authorize, the login page, the approval page, the connected
applications page and logout."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp_jinja2
from aiohttp import web
from redis.exceptions import RedisError

from services.authorize import devices, interactions, sessions
from services.authorize.authorization_request import (
    AuthorizationRequest,
    RedirectableError,
    enabled_client,
    resolve_client,
    validate,
)
from services.authorize.sessions import SignedIn
from shared import (
    admin,
    clients,
    codes,
    consents,
    families,
    fingerprint,
    login_throttle,
    metrics,
    scopes,
    tokens,
)
from shared.address_limits import limit_address
from shared.app_keys import PASSWORD_CHECKS, REDIS, SETTINGS, SIGNING_KEYS
from shared.client_address import limit_subject
from shared.clients import Client
from shared.codes import CodeRecord
from shared.forms import collect, read_form, read_pairs, single_valued
from shared.login_throttle import BUSY, Refused
from shared.logs import add_to_line
from shared.redis_access.errors import is_unavailable
from shared.settings import Settings
from shared.tokens import Grant

if TYPE_CHECKING:
    from shared.redis_store import RedisClient

log = logging.getLogger("tessera.authorize")

LOGIN_FAILED = "The username or password is incorrect."
LOGIN_BUSY = "Many people are signing in right now. Try again in a moment."
REVOKED = "Access removed. The application must ask you again before it can use your account."
CONNECTED_APPS = "/connected-apps"
# Where a sign-in that no application asked for may lead: a fixed list, never a URL from
# the request, so the login page is no open redirector (RFC 9700 §4.11).
SIGN_IN_TARGETS = (CONNECTED_APPS,)


def see_other(location: str) -> web.Response:
    # 303 so a POST is never replayed at the target (RFC 9700 §4.12).
    return web.Response(status=303, headers={"Location": location})


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


def _with_interaction(page: str, interaction_id: str) -> str:
    return f"{page}?{urlencode({'interaction': interaction_id})}"


async def _proceed(
    request: web.Request,
    session: sessions.Session,
    is_new: bool,
    interaction_id: str,
    auth_request: AuthorizationRequest,
) -> web.Response:
    """After /authorize: answer at once (prompt=none, or a remembered approval), or on to
    the login or approval page."""
    signed_in = sessions.who_is_signed_in(session)
    if auth_request.silent:
        response = await _answer_silently(request, session, interaction_id)
    elif signed_in is not None and not auth_request.must_sign_in:
        response = await _answer_if_remembered(
            request, signed_in, interaction_id, auth_request
        ) or see_other(_with_interaction("/consent", interaction_id))
    else:
        response = see_other(_with_interaction("/login", interaction_id))
    if is_new:
        sessions.set_cookie(response, request.app[SETTINGS], session)
    return response


async def _remembered(
    redis: RedisClient,
    client: Client,
    signed_in: SignedIn,
    auth_request: AuthorizationRequest,
) -> bool:
    """The approval page may be skipped: the client remembers consent, the request does
    not insist on the page or a new sign-in, and this person approved every requested
    scope for this client before. The redirect URI needs no check here: /authorize
    accepted only one registered for the client, by exact match (RFC 9700 §4.1.3)."""
    if not client.remember_consent or auth_request.must_ask or auth_request.must_sign_in:
        return False
    consent = await consents.get(redis, signed_in.username, client.client_id)
    return consent is not None and consent.covers(auth_request.scope)


async def _answer_if_remembered(
    request: web.Request,
    signed_in: SignedIn,
    interaction_id: str,
    auth_request: AuthorizationRequest,
) -> web.Response | None:
    """The code (or implicit token) for a remembered approval, or None to ask."""
    redis = request.app[REDIS]
    client = await enabled_client(redis, auth_request.client_id)
    if not await _remembered(redis, client, signed_in, auth_request):
        return None
    # Consumed as a decision on the page would be: one answer per request.
    taken = await interactions.take(redis, interaction_id, signed_in)
    if taken is None:
        raise interactions.expired()
    await consents.touch(redis, signed_in.username, client.client_id)
    log.info(
        "user %s: remembered approval of %s for client %s",
        signed_in.username,
        taken.scope,
        client.client_id,
    )
    # Exactly what was requested, which the remembered approval covers: never more.
    return await _issue(request, client, taken, signed_in, taken.scope)


async def _answer_silently(
    request: web.Request, session: sessions.Session, interaction_id: str
) -> web.Response:
    """prompt=none (OpenID Connect Core §3.1.2.1): the code or token when the person is
    signed in and the approval is remembered; otherwise login_required or
    consent_required, by redirect (§3.1.2.6), never a page."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    taken = await interactions.take(redis, interaction_id, session)
    if taken is None:
        raise interactions.expired()
    client = await enabled_client(redis, taken.client_id)
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        error, description = "login_required", "The resource owner is not signed in."
    elif await _remembered(redis, client, signed_in, taken):
        await consents.touch(redis, signed_in.username, client.client_id)
        return await _issue(request, client, taken, signed_in, taken.scope)
    else:
        error, description = "consent_required", "The resource owner has not approved this."
    metrics.oauth_error(request, error)
    return error_redirect(
        settings,
        RedirectableError(
            error, description, taken.redirect_uri, taken.state, in_fragment=taken.implicit
        ),
    )


async def authorize(request: web.Request) -> web.Response:
    """RFC 6749 §4.1.1 (GET and POST, RFC 6749 §3.1)."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    # Before anything is read or stored: a refused request costs one counter.
    await limit_address(request, "authorize", settings.authorize_rate)
    pairs = await read_pairs(request) if request.method == "POST" else request.query.items()
    params, repeated = collect(pairs)
    client, redirect_uri = await resolve_client(redis, params, repeated)
    try:
        return await _authorize_valid_client(request, client, redirect_uri, params, repeated)
    except RedirectableError as exc:
        log.info("authorization request of client %s rejected: %s", client.client_id, exc.cause)
        # Reported by redirect, so the error middleware never counts it.
        metrics.oauth_error(request, exc.error)
        return error_redirect(settings, exc)
    except RedisError as exc:
        if not is_unavailable(exc):
            raise
        # RFC 6749 §4.1.2.1: once client and redirect URI are known, even "the server
        # cannot answer for now" (temporarily_unavailable) goes back to the client.
        metrics.redis_error(request, exc)
        metrics.oauth_error(request, "temporarily_unavailable")
        add_to_line(request, redis_error=type(exc).__name__)
        return error_redirect(
            settings,
            RedirectableError(
                "temporarily_unavailable",
                "The service is temporarily unavailable; try again shortly.",
                redirect_uri,
                params.get("state"),
                in_fragment=params.get("response_type") == "token",
            ),
        )


async def _authorize_valid_client(
    request: web.Request,
    client: Client,
    redirect_uri: str,
    params: dict[str, str],
    repeated: set[str],
) -> web.Response:
    """``authorize`` once the client and its redirect URI are known to be right."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    auth_request = await validate(redis, settings, client, redirect_uri, params, repeated)
    if auth_request.implicit:
        tokens.check_can_sign_for(client, settings, request.app[SIGNING_KEYS])
    if request.method == "POST":
        # A cross-site POST carries no SameSite=Lax cookie; answering it with a new session
        # would sign the person out. Carry on in a GET, which does carry the cookie.
        interaction_id = await interactions.create(redis, settings, auth_request, None)
        return see_other(_with_interaction("/authorize/resume", interaction_id))
    session, is_new = await sessions.load_or_start(request)
    interaction_id = await interactions.create(redis, settings, auth_request, session)
    return await _proceed(request, session, is_new, interaction_id, auth_request)


async def resume(request: web.Request) -> web.Response:
    """Bind a request that arrived by POST to this browser, then go on as after a GET."""
    redis = request.app[REDIS]
    interaction_id = request.query.get("interaction", "")
    session, is_new = await sessions.load_or_start(request)
    if not interaction_id or not await interactions.claim(redis, interaction_id, session):
        raise interactions.expired()
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None:
        # Stored unbound and brief, as anyone's; someone signed in has it now.
        await interactions.keep(redis, request.app[SETTINGS], interaction_id, signed_in)
    auth_request = await interactions.pending(redis, interaction_id, session)
    return await _proceed(request, session, is_new, interaction_id, auth_request)


def _render_login(
    request: web.Request,
    client: Client | None,
    session: sessions.Session,
    *,
    interaction_id: str = "",
    next_page: str = "",
    error: str = "",
    username: str = "",
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "login.html",
        {
            "client": client,
            "interaction": interaction_id,
            "next": next_page,
            "csrf_token": session.csrf_token,
            "error": error,
            "username": username,
        },
        status=status,
    )


def login_limited(seconds: int) -> str:
    """What the sign-in page says when a sign-in limit refuses (shared.login_throttle)."""
    wait = f"{seconds} seconds" if seconds < 120 else f"{-(-seconds // 60)} minutes"
    return f"Too many sign-in attempts. Try again in {wait}."


async def login_page(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    await limit_address(request, "login", settings.login_page_rate)
    interaction_id = request.query.get("interaction", "")
    next_page = request.query.get("next", "")
    if not interaction_id and next_page in SIGN_IN_TARGETS:
        # A sign-in no application asked for (the connected applications page).
        current, is_new = await sessions.load_or_start(request)
        if sessions.who_is_signed_in(current) is not None:
            return see_other(next_page)
        response = _render_login(request, None, current, next_page=next_page)
        if is_new:
            sessions.set_cookie(response, settings, current)
        return response
    session = await sessions.load(request)
    if session is None:
        raise interactions.expired()  # the browser that started the interaction has a session
    auth_request = await interactions.pending(redis, interaction_id, session)
    client = await enabled_client(redis, auth_request.client_id)
    if sessions.who_is_signed_in(session) is not None and not auth_request.must_sign_in:
        return see_other(_with_interaction("/consent", interaction_id))
    return _render_login(request, client, session, interaction_id=interaction_id)


async def login_submit(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    await limit_address(request, "login", settings.login_page_rate)
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    interaction_id = form.get("interaction", "")
    next_page = form.get("next", "")
    client: Client | None = None
    auth_request: AuthorizationRequest | None = None
    if interaction_id or next_page not in SIGN_IN_TARGETS:
        auth_request = await interactions.pending(redis, interaction_id, session)
        client = await enabled_client(redis, auth_request.client_id)
    username = form.get("username", "")

    def again(error: str, status: int = 200) -> web.Response:
        # The sign-in page once more, for the same request, with the name as typed.
        return _render_login(
            request,
            client,
            session,
            interaction_id=interaction_id,
            next_page=next_page if client is None else "",
            error=error,
            username=username,
            status=status,
        )

    address = limit_subject(request, settings)
    known_device = devices.known(request, settings, username)
    if known_device:
        add_to_line(request, device="known")  # why the attempt was not paced
    user = await login_throttle.sign_in(
        redis,
        settings,
        request.app[PASSWORD_CHECKS],
        username=username,
        password=form.get("password", ""),
        address=address,
        known_device=known_device,
    )
    if isinstance(user, Refused):
        login_throttle.log_refusal(
            request, user, username, address, client_id=client.client_id if client else None
        )
        if not user.limited:
            # One message for a wrong username and a wrong password alike.
            return again(LOGIN_FAILED)
        # RFC 6585 §4: 429 with Retry-After, on the sign-in page to try again from.
        message = LOGIN_BUSY if user is BUSY else login_limited(user.retry_after)
        page = again(message, status=429)
        page.headers["Retry-After"] = str(user.retry_after)
        return page
    signed_in = await sessions.sign_in(request, session, user)
    log.info("user %s signed in", user.username)
    if auth_request is None:
        response = see_other(next_page)
    else:
        changed = None
        if auth_request.must_sign_in:
            # prompt=login is satisfied by this sign-in; the request goes on without it.
            auth_request.prompt = [p for p in auth_request.prompt if p != "login"]
            changed = auth_request
        # Kept from now on as long as a signed-in person's request.
        if not await interactions.keep(redis, settings, interaction_id, signed_in, changed):
            raise interactions.expired()
        response = see_other(_with_interaction("/consent", interaction_id))
    sessions.set_cookie(response, settings, signed_in)
    devices.set_cookie(response, settings, user.username)
    return response


async def consent_page(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    interaction_id = request.query.get("interaction", "")
    session = await sessions.load(request)
    if session is None:
        raise interactions.expired()
    auth_request = await interactions.pending(redis, interaction_id, session)
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None or auth_request.must_sign_in:
        return see_other(_with_interaction("/login", interaction_id))
    # Signed in on another tab's login page since: a remembered approval answers now.
    answer = await _answer_if_remembered(request, signed_in, interaction_id, auth_request)
    if answer is not None:
        return answer
    client = await enabled_client(redis, auth_request.client_id)
    defined = await scopes.get_many(redis, auth_request.scope)
    return render(
        request,
        "consent.html",
        {
            "client": client,
            "scopes": [defined.get(name) or scopes.Scope(name) for name in auth_request.scope],
            "interaction": interaction_id,
            "csrf_token": signed_in.csrf_token,
            "username": signed_in.username,
        },
    )


async def consent_submit(request: web.Request) -> web.Response:
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    pairs = await read_pairs(request)
    # One "scope" field per ticked checkbox; every other field once.
    ticked = {value for name, value in pairs if name == "scope"}
    form = single_valued((name, value) for name, value in pairs if name != "scope")
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        raise interactions.expired()
    interaction_id = form.get("interaction")
    # Consumed here, whatever the decision: one decision per request.
    auth_request = (
        await interactions.take(redis, interaction_id, signed_in) if interaction_id else None
    )
    if auth_request is None or auth_request.must_sign_in:
        # prompt=login and not signed in again: a form posted past the login page.
        raise interactions.expired()
    client = await enabled_client(redis, auth_request.client_id)
    approved = (
        [name for name in auth_request.scope if name in ticked]
        if form.get("decision") == "approve"
        else []
    )
    # The page showed the requested scopes: for those the person's decision now stands,
    # ticked ones remembered and unticked (or denied) ones forgotten (shared/consents).
    await consents.record(redis, signed_in.username, client.client_id, auth_request.scope, approved)

    def deny(description: str) -> web.Response:
        log.info("user %s denied client %s", signed_in.username, client.client_id)
        metrics.oauth_error(request, "access_denied")
        return error_redirect(
            settings,
            RedirectableError(
                "access_denied",
                description,
                auth_request.redirect_uri,
                auth_request.state,
                in_fragment=auth_request.implicit,
            ),
        )

    if form.get("decision") != "approve":
        return deny("The resource owner denied the request.")
    if not approved:
        return deny("The resource owner approved none of the requested scopes.")
    log.info("user %s approved %s for client %s", signed_in.username, approved, client.client_id)
    return await _issue(request, client, auth_request, signed_in, approved)


async def _issue(
    request: web.Request,
    client: Client,
    auth_request: AuthorizationRequest,
    signed_in: SignedIn,
    approved: list[str],
) -> web.Response:
    """The answer to an approved request: a code (RFC 6749 §4.1.2) or, for the implicit
    grant, a token (§4.2.2)."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    if auth_request.implicit:
        return await _implicit_response(request, client, auth_request, signed_in, approved)
    code = await codes.create(
        redis,
        settings,
        CodeRecord(
            family=families.new_family(),
            client_id=client.client_id,
            redirect_uri=auth_request.redirect_uri_param,
            username=signed_in.username,
            sub=signed_in.sub,
            scope=approved,
            code_challenge=auth_request.code_challenge,
            code_challenge_method=auth_request.code_challenge_method,
        ),
    )
    return redirect_to_client(
        settings, auth_request.redirect_uri, {"code": code, "state": auth_request.state}
    )


async def _implicit_response(
    request: web.Request,
    client: Client,
    auth_request: AuthorizationRequest,
    signed_in: SignedIn,
    approved: list[str],
) -> web.Response:
    """RFC 6749 §4.2.2: the access token in the fragment, never a refresh token."""
    redis, settings = request.app[REDIS], request.app[SETTINGS]
    grant = Grant(
        families.new_family(), client.client_id, approved, signed_in.username, signed_in.sub
    )
    issued = await tokens.issue(
        redis, settings, client, grant, key_set=request.app[SIGNING_KEYS], refreshable=False
    )
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


def _sign_in_first() -> web.Response:
    return see_other(f"/login?{urlencode({'next': CONNECTED_APPS})}")


def _when(timestamp: int) -> dict[str, str]:
    """A time as people read it (UTC, stated) and as ``<time datetime>`` carries it."""
    t = time.gmtime(timestamp)
    return {
        "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", t),
        "text": f"{t.tm_mday} {time.strftime('%B %Y, %H:%M', t)} UTC",
    }


async def connected_apps_page(request: web.Request) -> web.Response:
    """The applications the signed-in person has approved, and a way to revoke each."""
    redis = request.app[REDIS]
    signed_in = sessions.who_is_signed_in(await sessions.load(request))
    if signed_in is None:
        return _sign_in_first()
    approvals = await consents.list_for(redis, signed_in.username)
    found = [(await clients.get(redis, c.client_id), c) for c in approvals]
    defined = await scopes.get_many(redis, sorted({n for c in approvals for n in c.scope}))
    apps = [
        {
            "client": client,
            "scopes": [defined.get(name) or scopes.Scope(name) for name in consent.scope],
            "first_approved": _when(consent.first_approved),
            "last_used": _when(consent.last_used),
        }
        # A client deleted meanwhile has no tokens left to revoke and nothing to show.
        for client, consent in found
        if client is not None
    ]
    return render(
        request,
        "connected_apps.html",
        {
            "apps": apps,
            "username": signed_in.username,
            "csrf_token": signed_in.csrf_token,
            "revoked": REVOKED if request.query.get("revoked") == "1" else "",
        },
    )


async def connected_apps_revoke(request: web.Request) -> web.Response:
    """Revoke one application: forget the approval and revoke every token it holds for
    this person (shared/admin.revoke_user_client). Only the signed-in person's own grants
    are touched, whatever client id the form names; an unknown one changes nothing."""
    redis = request.app[REDIS]
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is None:
        return _sign_in_first()
    client_id = form.get("client_id", "")
    revoked = await admin.revoke_user_client(redis, signed_in.username, client_id)
    # The form's client id is the caller's: named in the log only if it names a client.
    named = client_id if await clients.get(redis, client_id) else fingerprint.of(client_id)
    log.info("user %s revoked client %s (%d grant(s))", signed_in.username, named, revoked)
    # 303: reloading the list never posts the form again (RFC 9700 §4.12).
    return see_other(f"{CONNECTED_APPS}?revoked=1")


async def logout_page(request: web.Request) -> web.Response:
    session = await sessions.load(request)
    return render(request, "logout.html", {"session": session, "done": False})


async def logout_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    session = await sessions.load_for_form(request, form.get("csrf_token"))
    signed_in = sessions.who_is_signed_in(session)
    if signed_in is not None:
        await sessions.end(request, signed_in)
    # Signed in or not, the browser forgets its session id.
    response = render(request, "logout.html", {"session": None, "done": True})
    sessions.clear_cookie(response, request.app[SETTINGS])
    return response


def render(
    request: web.Request, template: str, context: dict[str, object], status: int = 200
) -> web.Response:
    """A page with the approval page branding (webMethods Integration Server's
    approvalpage.* settings)."""
    settings = request.app[SETTINGS]
    branding = {
        "title": settings.approval_title,
        "header": settings.approval_header,
        "logo_url": settings.approval_logo_url,
        "footer": settings.approval_footer,
    }
    return aiohttp_jinja2.render_template(
        template, request, {**context, "brand": branding}, status=status
    )
