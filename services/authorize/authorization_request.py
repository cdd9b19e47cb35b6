"""Validating an authorization request (RFC 6749 §4.1.1, §4.2.1, §3.1.2; RFC 7636 §4.3).

Two phases, as RFC 6749 §4.1.2.1 requires. While the client or the redirect URI is in
doubt the person sees an error page and is never redirected (``OAuthError`` with the page
status). After that, every error is reported to the client by redirect
(``RedirectableError``).

A client id that names no client, and a redirect URI not registered, are logged as
fingerprints (``shared.security.fingerprint``): either may be a credential sent in the wrong place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.domain import claims_request
from shared.domain.oauth_errors import OAuthError
from shared.domain.openid import OPENID
from shared.security import fingerprint, openid_tokens, pkce
from shared.storage import clients, scopes
from shared.storage.clients import Client
from shared.storage.pending_requests import AuthorizationRequest
from shared.storage.tessera import Tessera
from shared.web.forms import logged_names

if TYPE_CHECKING:
    from shared.storage.redis_store import RedisClient

log = logging.getLogger("tessera.authorize")

# webMethods Integration Server answers these with invalid_request rather than
# unsupported_response_type.
_GRANT_NAMES_AS_RESPONSE_TYPE = ("password", "client_credentials")
# Each response type and the grant a client must be allowed for it.
RESPONSE_TYPE_GRANTS = {"code": "authorization_code", "token": "implicit"}
SUPPORTED_RESPONSE_TYPES = tuple(RESPONSE_TYPE_GRANTS)
# The mode each response type answers in (RFC 6749 §4.1.2, §4.2.2): the only ones supported.
RESPONSE_MODES = {"code": "query", "token": "fragment"}
# OpenID Connect Core 1.0 §3.1.2.1 ``prompt`` values Tessera acts on; select_account is
# treated as login (there is one account per browser: choosing another is signing in
# again); others are ignored, as RFC 6749 §3.1 says of anything unrecognised.
PROMPTS = ("none", "login", "consent")
_PROMPT_AS = {"select_account": "login"}
# The parameters whose text the client chooses freely and Tessera stores with the pending
# request; each is bounded, so that no request can make Redis hold much (README, "Rate
# limits and memory"). RFC 6749 Appendix A.5 makes state 1*VSCHAR (%x20-7E).
MAX_FREE_TEXT = 1024
# A username to prefill (Core §3.1.2.1 login_hint): no username is longer.
MAX_LOGIN_HINT = 256
# max_age (Core §3.1.2.1) beyond this is no limit at all: a century.
MAX_AGE_LIMIT = 100 * 365 * 24 * 3600


def _free_text_within_bounds(params: dict[str, str]) -> bool:
    if any(len(params.get(name) or "") > MAX_FREE_TEXT for name in ("state", "nonce")):
        return False
    if len(params.get("login_hint") or "") > MAX_LOGIN_HINT:
        return False
    return all(" " <= ch <= "~" for ch in params.get("state") or "")


class RedirectableError(OAuthError):
    """An error the client learns about through its redirect URI: in the query
    (RFC 6749 §4.1.2.1), or in the fragment for the implicit grant (§4.2.2.1)."""

    def __init__(
        self,
        error: str,
        description: str,
        redirect_uri: str,
        state: str | None,
        *,
        in_fragment: bool = False,
    ) -> None:
        super().__init__(error, description)
        self.redirect_uri = redirect_uri
        self.state = state
        self.in_fragment = in_fragment


def _page_error(description: str, cause: str) -> OAuthError:
    return OAuthError("invalid_request", description, cause=cause)


async def enabled_client(redis: RedisClient, client_id: str) -> Client:
    """The client, when it exists and is enabled; else the error page."""
    client = await clients.get(redis, client_id)
    if client is None:
        raise _page_error(
            "The application is not known here.", f"unknown client {fingerprint.of(client_id)}"
        )
    if not client.enabled:
        raise _page_error("The application is not known here.", f"client {client_id} is disabled")
    return client


async def resolve_client(
    redis: RedisClient, params: dict[str, str], repeated: set[str]
) -> tuple[Client, str]:
    """The client and the redirect URI to use, or an error page."""
    if repeated & {"client_id", "redirect_uri"}:
        raise _page_error("The request is ambiguous.", f"repeated: {logged_names(repeated)}")
    client_id = params.get("client_id")
    if client_id is None:
        raise _page_error("The request names no client.", "client_id missing")
    client = await enabled_client(redis, client_id)
    given = params.get("redirect_uri")
    if given is None:
        # RFC 6749 §3.1.2.3: required unless exactly one URI is registered.
        if len(client.redirect_uris) != 1:
            raise _page_error(
                "The request does not say where to return.",
                f"client {client_id} has several redirect URIs and none was given",
            )
        return client, client.redirect_uris[0]
    # RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: exact string comparison, nothing looser.
    if given not in client.redirect_uris:
        raise _page_error(
            "The return address does not belong to the application.",
            f"redirect_uri {fingerprint.of(given)} not registered for client {client_id}",
        )
    return client, given


async def validate(
    tessera: Tessera,
    client: Client,
    redirect_uri: str,
    params: dict[str, str],
    repeated: set[str],
) -> AuthorizationRequest:
    redis, settings = tessera.redis, tessera.settings
    state = params.get("state")
    response_type = params.get("response_type")

    def fail(error: str, description: str) -> RedirectableError:
        return RedirectableError(
            error, description, redirect_uri, state, in_fragment=response_type == "token"
        )

    if not _free_text_within_bounds(params):
        # Not echoed back: the state may be what is wrong (and would make the URL huge).
        raise RedirectableError(
            "invalid_request",
            f"state and nonce may have at most {MAX_FREE_TEXT} characters, login_hint "
            f"{MAX_LOGIN_HINT}, state only visible ASCII (RFC 6749, Appendix A.5).",
            redirect_uri,
            None,
            in_fragment=response_type == "token",
        )
    if repeated:
        # RFC 6749 §4.1.2.1: "includes a parameter more than once" is invalid_request.
        raise fail("invalid_request", "A request parameter is repeated.")

    # Core §6.1, §6.2: request objects are not supported, and say so.
    if "request" in params:
        raise fail("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise fail("request_uri_not_supported", "request_uri is not supported.")
    if response_type is None:
        raise fail("invalid_request", "The response_type parameter is required.")
    if response_type in _GRANT_NAMES_AS_RESPONSE_TYPE:
        raise fail("invalid_request", f"{response_type} is a grant type, not a response type.")
    if response_type not in SUPPORTED_RESPONSE_TYPES:
        raise fail("unsupported_response_type", "The response type is not supported.")
    if RESPONSE_TYPE_GRANTS[response_type] not in client.grants:
        raise fail("unauthorized_client", "The client is not allowed this response type.")
    response_mode = params.get("response_mode")
    if response_mode is not None and response_mode != RESPONSE_MODES[response_type]:
        # OAuth 2.0 Multiple Response Type Encoding Practices §2.1: each response type
        # answers in its default mode; Tessera supports no other (metadata says so).
        raise fail("invalid_request", "The response_mode is not supported for this response type.")

    # RFC 6749 §3.3: without a scope the client's default scopes apply; without those
    # the request fails with invalid_scope, as does a malformed one.
    try:
        requested = scopes.parse_requested(params.get("scope")) or client.default_scopes
    except ValueError:
        raise fail("invalid_scope", "The requested scope is malformed.") from None
    if not requested:
        raise fail("invalid_scope", "The scope parameter is required.")
    # The client's own scopes first, in memory: Redis is asked only about those.
    if any(name not in client.scopes for name in requested) or len(
        await scopes.get_many(redis, requested)
    ) < len(requested):
        raise fail("invalid_scope", "The requested scope is invalid, unknown, or not allowed.")

    if OPENID in requested and tessera.key_set is None:
        log.error("an OpenID Connect request needs ID tokens; set TESSERA_SIGNING_KEYS")
        raise fail("server_error", "OpenID Connect is not configured on this server.")

    prompt = [_PROMPT_AS.get(value, value) for value in (params.get("prompt") or "").split()]
    prompt = list(dict.fromkeys(prompt))
    if "none" in prompt and len(prompt) > 1:
        # OpenID Connect Core §3.1.2.1: none with any other value is an error.
        raise fail("invalid_request", "prompt=none cannot be combined with other values.")
    max_age = _max_age(params.get("max_age"), fail)
    try:
        claims = claims_request.parse(params.get("claims"))
    except claims_request.ClaimsRequestError as exc:
        raise fail("invalid_request", f"{exc}.") from None
    hint_sub = _id_token_hint_sub(tessera, client, params.get("id_token_hint"), fail)
    claimed_sub = claims_request.sub_value(params.get("claims"))
    if claimed_sub is not None:
        # Core §5.5.1: a sub asked for by value names the person, as a hint does.
        if hint_sub is not None and hint_sub != claimed_sub:
            raise fail("invalid_request", "The claims parameter and id_token_hint disagree.")
        hint_sub = claimed_sub

    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if response_type == "token":
        # PKCE binds a code to its redemption (RFC 7636 §1); the implicit grant has none.
        challenge = method = None
    elif challenge is None:
        if method is not None:
            raise fail("invalid_request", "code_challenge_method was sent without code_challenge.")
        if client.requires_pkce(settings):
            # RFC 7636 §4.4.1
            raise fail("invalid_request", "A code_challenge is required (PKCE, RFC 7636).")
    else:
        method = method or "plain"  # RFC 7636 §4.3
        if method not in pkce.METHODS:
            raise fail("invalid_request", "The code_challenge_method is not supported.")
        if not pkce.is_valid_challenge(challenge):
            raise fail(
                "invalid_request", "The code_challenge is malformed (RFC 7636, section 4.2)."
            )

    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri_param=params.get("redirect_uri"),
        redirect_uri=redirect_uri,
        scope=requested,
        state=state,
        code_challenge=challenge,
        code_challenge_method=method if challenge is not None else None,
        response_type=response_type,
        prompt=[value for value in prompt if value in PROMPTS],
        # The nonce and the claims parameter matter only to ID tokens: a request without
        # openid stores neither (a pending request stays small, README "Rate limits").
        nonce=params.get("nonce") if OPENID in requested else None,
        max_age=max_age,
        login_hint=params.get("login_hint"),
        claims=claims if OPENID in requested else None,
        hint_sub=hint_sub,
    )


Fail = Callable[[str, str], RedirectableError]


def _max_age(value: str | None, fail: Fail) -> int | None:
    """Core §3.1.2.1 max_age: whole seconds, 0 or more."""
    if value is None:
        return None
    if not value.isdigit() or not value.isascii():
        raise fail("invalid_request", "max_age must be a whole number of seconds.")
    # A longer string of digits is beyond the limit; no huge integer is parsed.
    return MAX_AGE_LIMIT if len(value) > 12 else min(int(value), MAX_AGE_LIMIT)


def _id_token_hint_sub(
    tessera: Tessera, client: Client, hint: str | None, fail: Fail
) -> str | None:
    """The sub of an id_token_hint (Core §3.1.2.1): an ID token Tessera issued to this
    client, expired or not. Any other hint is refused: one issued to another client
    would let that client's knowledge of a person steer this request."""
    if hint is None:
        return None
    key_set = tessera.key_set
    claims = (
        openid_tokens.read_hint(key_set, hint, issuer=tessera.settings.issuer) if key_set else None
    )
    if claims is None:
        raise fail("invalid_request", "The id_token_hint is not a valid ID token of this server.")
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if client.client_id not in audience:
        raise fail("invalid_request", "The id_token_hint was not issued to this client.")
    sub = claims["sub"]
    return sub if isinstance(sub, str) else None
