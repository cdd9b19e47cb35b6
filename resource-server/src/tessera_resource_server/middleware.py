"""The aiohttp side: ``protect(app, settings)`` installs a middleware that admits a
request only with a valid bearer token (RFC 6750), and the route decorators
``@requires_scope(...)`` and ``@public``.

Every route is protected unless marked ``@public``: a route someone forgot to mark is
closed, not open. For each other request the middleware, in order:

1. reads the token from the Authorization header (``bearer``), 400/401 when missing or
   malformed;
2. validates it: a JWT locally against the JWK Set when ``jwks_uri`` is set, anything
   else (and JWTs too with ``introspect_jwts``) by introspection, with the positive
   answers cached (``token_cache``); 401 ``invalid_token`` when it is not active, 503
   when Tessera cannot say;
3. stores the validated token under ``request[ACCESS_TOKEN]``;
4. with ``enforce_scope_resources``, checks the route against Tessera's scope
   definitions (``scope_rules``), 403 ``insufficient_scope``;
5. runs the handler, whose ``@requires_scope`` needs every scope it names (403).

Whether this resource owner may use this particular resource is the handler's
question: it reads ``request[ACCESS_TOKEN].sub`` / ``.username``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from tessera_resource_server import introspection_client
from tessera_resource_server.access_token import AccessToken, MalformedClaims
from tessera_resource_server.bearer import bearer_token
from tessera_resource_server.challenges import (
    BearerError,
    TesseraUnavailable,
    insufficient_scope,
    invalid_token,
    missing_token,
    refusal_response,
)
from tessera_resource_server.jwks import JwksKeys, verify_jwt
from tessera_resource_server.jwt_verification import looks_like_jwt
from tessera_resource_server.scope_rules import ScopeRules
from tessera_resource_server.settings import ResourceServerSettings
from tessera_resource_server.token_cache import TokenCache

log = logging.getLogger("tessera.resource_server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

_PUBLIC = "__tessera_public__"
_SCOPES = "__tessera_required_scopes__"
# When the scope definitions could not be fetched, retry sooner than the refresh period.
_RETRY_SECONDS = 5.0


class ResourceServer:
    """The state behind the middleware: settings, the HTTP session to Tessera, the
    introspection cache, the JWK Set and the scope definitions."""

    def __init__(self, settings: ResourceServerSettings) -> None:
        self.settings = settings
        self.cache = TokenCache(settings.cache_seconds, settings.cache_size)
        self.jwks = (
            JwksKeys(
                settings.jwks_uri,
                settings.jwks_cache_seconds,
                settings.jwks_min_refresh_seconds,
            )
            if settings.jwks_uri
            else None
        )
        self.scope_rules: ScopeRules | None = None
        self._session: aiohttp.ClientSession | None = None
        if settings.enforce_scope_resources and not settings.scope_prefix:
            # Scope names are global in Tessera and any covering scope admits (scope_rules):
            # without a prefix, another API's scope listing "GET /notes" for its own
            # /notes would open this API's GET /notes to that API's tokens.
            log.warning(
                "enforce_scope_resources is on with an empty scope_prefix: every scope "
                "definition in Tessera counts, another API's included; set scope_prefix to "
                'this API\'s (e.g. "notes:")'
            )
        self._authorization = introspection_client.basic_credentials(
            settings.client_id, settings.client_secret
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the resource server's HTTP session is open only while the app runs")
        return self._session

    @property
    def ready(self) -> bool:
        """Whether every request can be decided: the scope definitions are loaded when
        they are enforced. For the application's readiness probe."""
        return not self.settings.enforce_scope_resources or self.scope_rules is not None

    async def validate(self, token: str) -> AccessToken:
        """The token's claims when it is active, else BearerError (401) or
        TesseraUnavailable (503)."""
        settings = self.settings
        if self.jwks is not None and looks_like_jwt(token):
            verified = await verify_jwt(
                self.session,
                self.jwks,
                token,
                issuer=settings.issuer,
                audience=settings.expected_audience,
                leeway=settings.leeway_seconds,
            )
            if not settings.introspect_jwts:
                return verified
        if settings.introspection_endpoint is None:
            raise invalid_token("not a JWT, and no introspection endpoint is configured")
        return await self._introspected(token, settings.introspection_endpoint)

    async def _introspected(self, token: str, url: str) -> AccessToken:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        answer = await introspection_client.introspect(
            self.session, url, self._authorization, token
        )
        checked = self._active(answer)
        self.cache.put(token, checked)  # only active answers get here
        return checked

    def _active(self, answer: dict[str, Any]) -> AccessToken:
        """RFC 7662 §2.2 and §4: active, issued by our issuer, within its time, a bearer
        token; else invalid_token."""
        if answer["active"] is not True:
            raise invalid_token("introspection: not active")
        try:
            token = AccessToken.from_claims(answer, "introspection")
        except MalformedClaims as exc:
            raise invalid_token(f"introspection: malformed claim {exc}") from None
        now, leeway = time.time(), self.settings.leeway_seconds
        if token.iss is not None and token.iss != self.settings.issuer:
            raise invalid_token(f"introspection: iss {token.iss!r:.100} is not the issuer")
        if token.exp is not None and token.exp < now - leeway:
            raise invalid_token("introspection: exp has passed")
        nbf = answer.get("nbf")
        if isinstance(nbf, int) and nbf > now + leeway:
            raise invalid_token("introspection: nbf is still to come")
        token_type = answer.get("token_type")
        if isinstance(token_type, str) and token_type.lower() != "bearer":
            raise invalid_token(f"introspection: token_type {token_type!r:.40}")
        return token

    def check_scope_resources(self, request: web.Request, token: AccessToken) -> None:
        """Step 4: the scope definitions' mapping, when enforced (see scope_rules)."""
        if not self.settings.enforce_scope_resources:
            return
        resource = request.match_info.route.resource
        if resource is None:
            return  # no route matched: the handler answers 404 or 405
        if self.scope_rules is None:
            raise TesseraUnavailable("the scope definitions are not loaded yet")
        template = resource.canonical
        covering = self.scope_rules.covering(request.method, template)
        if not covering:
            log.warning(
                "%s %s: no scope definition covers this route; refused (default-deny)",
                request.method,
                template,
            )
            raise insufficient_scope((), f"no scope covers {request.method} {template}")
        if not covering & token.scopes:
            raise insufficient_scope(
                sorted(covering),
                f"{request.method} {template} needs one of {' '.join(sorted(covering))}",
            )

    async def load_scope_definitions(self) -> None:
        url = self.settings.scope_definitions_url
        assert url is not None  # the settings require it with enforcement on
        answer = await introspection_client.call_tessera(
            self.session, "GET", url, self._authorization
        )
        definitions = answer.get("scopes")
        if not isinstance(definitions, list):
            raise TesseraUnavailable(f"GET {url}: no list of scopes in the answer")
        self.scope_rules = ScopeRules.from_definitions(definitions, self.settings.scope_prefix)
        log.debug("scope definitions loaded: %d covered route(s)", len(self.scope_rules))

    async def _try_scope_definitions(self) -> float:
        """One attempt; returns how long to wait before the next. A failed refresh keeps
        the definitions loaded before; until the first success, retry every few seconds."""
        try:
            await self.load_scope_definitions()
        except TesseraUnavailable as exc:
            log.warning("scope definitions not refreshed: %s", exc.cause)
            if self.scope_rules is None:
                return _RETRY_SECONDS
        return self.settings.scopes_refresh_seconds

    async def _keep_scope_definitions(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            delay = await self._try_scope_definitions()

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: the session opened at start-up, closed at shutdown."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            refresher = None
            if self.settings.enforce_scope_resources:
                # Loaded before the first request when Tessera answers (within the
                # timeout); otherwise requests get 503 until a retry succeeds.
                delay = await self._try_scope_definitions()
                refresher = asyncio.create_task(self._keep_scope_definitions(delay))
            try:
                yield
            finally:
                if refresher is not None:
                    refresher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await refresher
                self._session = None


RESOURCE_SERVER = web.AppKey("tessera_resource_server", ResourceServer)
# The validated token of the request, for the handler (step 3 above).
ACCESS_TOKEN = web.RequestKey("tessera_access_token", AccessToken)


def protect(app: web.Application, settings: ResourceServerSettings) -> ResourceServer:
    """Protect every route of ``app`` (but those marked @public) with Tessera's tokens."""
    server = ResourceServer(settings)
    app[RESOURCE_SERVER] = server
    app.cleanup_ctx.append(server.lifetime)
    app.middlewares.append(bearer_middleware)
    return server


@web.middleware
async def bearer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    server = request.app[RESOURCE_SERVER]
    # The route's own handler, not the chain of middlewares wrapping it.
    if getattr(request.match_info.handler, _PUBLIC, False):
        return await handler(request)
    try:
        token = bearer_token(request)
        if token is None:
            raise missing_token()
        request[ACCESS_TOKEN] = await server.validate(token)
        server.check_scope_resources(request, request[ACCESS_TOKEN])
        return await handler(request)
    except TesseraUnavailable as exc:
        path = logged_path(request)
        log.warning("%s %s answered 503: Tessera unavailable: %s", request.method, path, exc.cause)
        return refusal_response(exc, server.settings.realm)
    except BearerError as exc:
        # The cause says which check failed, never the token (RFC 6750 §5.3).
        path = logged_path(request)
        log.info("%s %s refused: %s (%s)", request.method, path, exc.status, exc.cause)
        return refusal_response(exc, server.settings.realm)


def logged_path(request: web.Request) -> str:
    """The request's path for a log line: as sent, percent-encoded (RFC 3986 §2.1), and
    without the query, where a misguided client may put a token (RFC 6750 §2.3).

    Never ``request.path``, which is decoded: a ``%0A`` there is a newline that splits
    a text log line and lets the rest of the path pass for a line of its own. aiohttp's
    C parser refuses raw control and non-ASCII bytes in the request target (RFC 9112
    §3.2), its pure-Python one (AIOHTTP_NO_EXTENSIONS) lets some through, U+2028 among
    them: such a path is logged escaped."""
    raw = request.rel_url.raw_path
    return raw if raw.isascii() and raw.isprintable() else ascii(raw)


def requires_scope(*names: str) -> Callable[[H], H]:
    """The route needs a token holding every scope in ``names`` (403 insufficient_scope
    naming them, RFC 6750 §3.1)."""
    if not names:
        raise ValueError("name at least one scope")
    needed = tuple(dict.fromkeys(names))

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            token = request.get(ACCESS_TOKEN)
            if token is None:
                # @public, or an app without protect(): refuse rather than run unchecked.
                raise RuntimeError(f"{handler.__name__} needs protect() and no @public")
            if not token.has_scopes(*needed):
                # The cause goes to the log: the path as logged_path gives it.
                raise insufficient_scope(
                    needed, f"{request.method} {logged_path(request)} needs {' '.join(needed)}"
                )
            return await handler(request)

        setattr(checked, _SCOPES, needed)
        return checked  # type: ignore[return-value]

    return decorate


def public(handler: H) -> H:
    """The route needs no token (health checks, a landing page)."""
    setattr(handler, _PUBLIC, True)
    return handler


def required_scopes(handler: Callable[..., Any]) -> tuple[str, ...]:
    """What ``@requires_scope`` declared on a handler (for documentation and tests)."""
    return getattr(handler, _SCOPES, ())


__all__ = [
    "ACCESS_TOKEN",
    "RESOURCE_SERVER",
    "ResourceServer",
    "bearer_middleware",
    "protect",
    "public",
    "required_scopes",
    "requires_scope",
]
