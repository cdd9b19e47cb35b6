"""Test helpers: register what a test needs, walk the OAuth flow over HTTP, and check
the answers."""

from __future__ import annotations

import asyncio
import base64
import html
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote_plus, urlsplit

import aiohttp
import orjson
from redis.asyncio import Redis
from yarl import URL

from devtools.local_processes import (
    SERVICES,
    ProcessGroup,
    free_port,
    service_env,
    start_service,
)
from shared.config.settings import Settings
from shared.security import pkce
from shared.storage import clients, families, scopes, users
from shared.storage.clients import Client

REDIRECT_URI = "https://app.example.com/callback"
PASSWORD = "correct horse battery"

# Every credential the run hands out or sends: codes, tokens, client secrets, passwords,
# CSRF tokens and session ids. tests/test_zz_logs_hold_no_secrets.py, which runs last,
# looks for each in the logs of the whole run.
SECRETS_USED: set[str] = {PASSWORD}

_SECRET_PARAMETERS = ("code", "access_token", "refresh_token", "client_secret")


def remember_secrets(params: dict[str, Any]) -> None:
    for name in _SECRET_PARAMETERS:
        if isinstance(params.get(name), str):
            SECRETS_USED.add(params[name])


SESSION_COOKIE = "tessera_session"  # development mode (TESSERA_INSECURE_LOOPBACK=1)


# The test stack's settings (tests/conftest.py).
REFRESH_REUSE_GRACE = 2
ADMIN_TOKEN = "test-admin-token-" + "x" * 32
SECRETS_USED.add(ADMIN_TOKEN)


@dataclass(frozen=True)
class Stack:
    redis_url: str
    issuer: str
    authorize: str
    token: str
    introspect: str
    signing_keys: Path | None = None

    @property
    def revoke(self) -> str:
        return f"{self.token}/revoke"

    @property
    def metadata(self) -> str:
        return f"{self.authorize}/.well-known/oauth-authorization-server"


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LOGS = ARTIFACTS / "logs"


def start_stack(
    group: ProcessGroup,
    redis_url: str,
    signing_keys: Path,
    *,
    log_prefix: str = "",
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """The three services as processes on free loopback ports, against ``redis_url``,
    as ``make run`` starts them; their logs in test-artifacts/logs/."""
    LOGS.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in SERVICES}
    env = {**service_env(redis_url, ports, signing_keys), **(extra_env or {})}
    urls = {
        name: start_service(group, name, ports[name], env, log=LOGS / f"{log_prefix}{name}.log")
        for name in SERVICES
    }
    return Stack(
        redis_url=redis_url,
        issuer=env["TESSERA_ISSUER"],
        authorize=urls["authorize"],
        token=urls["token"],
        introspect=urls["introspect"],
        signing_keys=signing_keys,
    )


@dataclass(frozen=True)
class Registered:
    client: Client
    secret: str | None

    @property
    def client_id(self) -> str:
        return self.client.client_id


@dataclass(frozen=True)
class Setup:
    """What most tests start from: a scope, a user who can sign in, and a client
    registered for that scope."""

    scope: str
    user: str
    client: Registered


@dataclass(frozen=True)
class Reply:
    """A JSON answer (from /token or /introspect)."""

    status: int
    headers: Any
    body: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """An HTML answer (from the authorize service)."""

    status: int
    headers: Any
    text: str

    @property
    def location(self) -> str:
        return self.headers["Location"]

    def cookies(self) -> SimpleCookie:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.getall("Set-Cookie", []):
            jar.load(header)
        return jar


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def new_request_id() -> str:
    """An X-Request-ID of a form Tessera keeps (32 hex digits, as ingress-nginx makes)."""
    return secrets.token_hex(16)


async def make_scope(redis: Redis, description: str = "Read things") -> str:
    name = unique("read")
    await scopes.add(redis, name, description)
    return name


async def make_user(redis: Redis) -> str:
    username = unique("alice")
    await users.add(redis, username, PASSWORD)
    return username


async def make_client(
    redis: Redis,
    scope_names: list[str],
    *,
    client_type: str = "confidential",
    redirect_uris: list[str] | None = None,
    **options: Any,
) -> Registered:
    client, secret = await clients.create(
        redis,
        name=options.pop("name", unique("App")),
        client_type=client_type,
        redirect_uris=redirect_uris if redirect_uris is not None else [REDIRECT_URI],
        grants=options.pop("grants", ["authorization_code"]),
        scope_names=scope_names,
        **options,
    )
    if secret:
        SECRETS_USED.add(secret)
    return Registered(client, secret)


async def make_resource_server(
    redis: Redis, scope_names: list[str], name: str = "Resource server"
) -> Registered:
    """A confidential client allowed to introspect."""
    return await make_client(redis, scope_names, introspect=True, name=name)


async def make_setup(redis: Redis, **client_options: Any) -> Setup:
    """A fresh scope, user and client; ``client_options`` go to ``make_client``."""
    scope = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [scope], **client_options)
    return Setup(scope, user, client)


# A service in this process is reached as behind a TLS-terminating ingress on loopback:
# its settings trust the loopback proxy, its test clients send this header.
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https"}
# The whole suite comes from one address: per-address limits it never reaches. The
# limits' own tests run stacks of their own (tests/test_anonymous_requests.py,
# tests/test_login_throttle.py).
GENEROUS_RATE_LIMITS = {
    "TESSERA_AUTHORIZE_RATE": "1000000/60",
    "TESSERA_LOGIN_PAGE_RATE": "1000000/60",
    "TESSERA_CLIENT_AUTH_FAILURE_RATE": "1000000/60",
    # Failed sign-ins of the whole run would count together.
    "TESSERA_LOGIN_ADDRESS_RATE": "off",
}


def production_settings(redis_url: str, **env: str) -> Settings:
    """Production settings (https issuer, Require HTTPS) for a service in this process."""
    return Settings.from_env(
        {
            "TESSERA_ISSUER": "https://id.example.com",
            "REDIS_URL": redis_url,
            "TESSERA_TRUSTED_PROXIES": "127.0.0.1,::1",
            # In-process services share the suite's Redis and its loopback address.
            **GENEROUS_RATE_LIMITS,
            **env,
        }
    )


def unreachable_redis() -> Settings:
    """Settings for a service in this process whose Redis never answers."""
    return production_settings(f"redis://127.0.0.1:{free_port()}/0")


def grant_family(value: str) -> str:
    """The grant family a code or token was issued in (it must have one)."""
    family = families.family_of(value)
    assert family is not None, value
    return family


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def s256(verifier: str) -> str:
    return pkce.s256(verifier)


def query_of(location: str) -> dict[str, str]:
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    remember_secrets(params)
    return params


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "page has no CSRF token"
    SECRETS_USED.add(match.group(1))
    return match.group(1)


def page_message(page: str) -> str:
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    assert match, "the page shows no error message"
    return html.unescape(match.group(1))


def assert_error_page(answer: Answer, message: str, status: int = 400) -> None:
    """An error shown to the person as a page, never a redirect."""
    assert answer.status == status, answer.text
    assert "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")
    assert page_message(answer.text) == message


def session_cookie(http: aiohttp.ClientSession, stack: Stack) -> str:
    """The session id the browser holds for the authorize service."""
    cookie = http.cookie_jar.filter_cookies(URL(stack.authorize)).get(SESSION_COOKIE)
    assert cookie is not None, "the browser holds no session cookie"
    SECRETS_USED.add(cookie.value)
    return cookie.value


async def fetch(http: Any, method: str, url: str | URL, **kwargs: Any) -> Answer:
    """One request, redirects not followed, answered as HTML."""
    async with http.request(method, url, allow_redirects=False, **kwargs) as r:
        return Answer(r.status, r.headers, await r.text())


async def start_authorization(
    http: aiohttp.ClientSession, stack: Stack, params: dict[str, str]
) -> aiohttp.ClientResponse:
    async with http.get(f"{stack.authorize}/authorize", params=params, allow_redirects=False) as r:
        await r.read()
        return r


async def sign_in(
    http: aiohttp.ClientSession, stack: Stack, login_location: str, username: str, password: str
) -> aiohttp.ClientResponse:
    """Open the login page at ``login_location`` and submit the credentials."""
    interaction = query_of(login_location)["interaction"]
    async with http.get(f"{stack.authorize}{login_location}") as page:
        assert page.status == 200
        csrf = csrf_token(await page.text())
    async with http.post(
        f"{stack.authorize}/login",
        data={
            "interaction": interaction,
            "csrf_token": csrf,
            "username": username,
            "password": password,
        },
        allow_redirects=False,
    ) as r:
        await r.read()
        return r


async def decide(
    http: aiohttp.ClientSession,
    stack: Stack,
    consent_location: str,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> aiohttp.ClientResponse:
    """Open the approval page and submit it, ticking ``tick`` (default: every scope)."""
    interaction = query_of(consent_location)["interaction"]
    async with http.get(f"{stack.authorize}{consent_location}") as page:
        assert page.status == 200
        html = await page.text()
    if tick is None:
        tick = re.findall(r'name="scope" value="([^"]+)"', html)
    form = [("interaction", interaction), ("csrf_token", csrf_token(html)), ("decision", decision)]
    form += [("scope", name) for name in tick]
    async with http.post(f"{stack.authorize}/consent", data=form, allow_redirects=False) as r:
        await r.read()
        return r


async def authorize(
    http: aiohttp.ClientSession,
    stack: Stack,
    params: dict[str, str],
    username: str,
    *,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> dict[str, str]:
    """The whole browser side; returns the query of the redirect back to the client."""
    decided = await sign_in_and_decide(http, stack, params, username, decision, tick)
    back = decided.headers["Location"]
    assert back.startswith(params.get("redirect_uri", REDIRECT_URI))
    return query_of(back)


async def sign_in_and_decide(
    http: aiohttp.ClientSession,
    stack: Stack,
    params: dict[str, str],
    username: str,
    decision: str = "approve",
    tick: list[str] | None = None,
) -> aiohttp.ClientResponse:
    """/authorize, the login page when the browser is not signed in yet, and the approval
    page; returns the decision's response, the redirect back to the client."""
    started = await start_authorization(http, stack, params)
    assert started.status == 303, started.status
    location = started.headers["Location"]
    if location.startswith("/login"):
        signed_in = await sign_in(http, stack, location, username, PASSWORD)
        assert signed_in.status == 303
        location = signed_in.headers["Location"]
    assert location.startswith("/consent?"), location
    decided = await decide(http, stack, location, decision, tick)
    assert decided.status == 303
    return decided


def assert_access_denied(back: dict[str, str], stack: Stack, state: str) -> None:
    """The query of the redirect back to the client says the person did not approve
    (RFC 6749 §4.1.2.1, RFC 9207)."""
    assert back["error"] == "access_denied"
    assert back["error_description"]
    assert back["state"] == state
    assert back["iss"] == stack.issuer
    assert "code" not in back


async def obtain_code(
    http: aiohttp.ClientSession, stack: Stack, setup: Setup, **extra: str | None
) -> str:
    """Walk /authorize through login and approval for ``setup``; returns the code.
    ``extra`` changes the authorization request; a value of None leaves that parameter out."""
    params = code_request(setup.client, setup.scope)
    for name, value in extra.items():
        if value is None:
            del params[name]
        else:
            params[name] = value
    back = await authorize(http, stack, params, setup.user)
    assert "code" in back, back
    return back["code"]


def code_request(client: Registered, scope: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        **extra,
    }


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic: both parts form-urlencoded, then Base64 (RFC 6749 §2.3.1)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def basic_auth_for(client: Registered) -> dict[str, str]:
    """The Authorization header of a confidential client, with its own secret."""
    assert client.secret
    return basic_auth(client.client_id, client.secret)


async def post_form(
    http: aiohttp.ClientSession,
    url: str,
    form: dict[str, str] | list[tuple[str, str]] | str | bytes,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST a form: fields to encode, or a body already encoded (then ``headers`` says
    its Content-Type)."""
    async with http.post(url, data=form, headers=headers, allow_redirects=False) as r:
        body = await r.json(content_type=None)
        if isinstance(body, dict):
            remember_secrets(body)
        return Reply(r.status, r.headers, body)


async def post_json(
    http: aiohttp.ClientSession, url: str, body: dict[str, str], headers: dict[str, str]
) -> Reply:
    async with http.post(url, json=body, headers=headers, allow_redirects=False) as r:
        return Reply(r.status, r.headers, await r.json(content_type=None))


def assert_no_store(reply: Reply) -> None:
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Pragma"] == "no-cache"
    assert reply.headers["Content-Type"].startswith("application/json")


def assert_error(reply: Reply, status: int, error: str) -> None:
    """RFC 6749 §5.2: status, JSON body with error and error_description, no caching."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["error"] == error, reply.body
    assert isinstance(reply.body["error_description"], str)
    assert reply.body["error_description"]
    assert set(reply.body) == {"error", "error_description"}
    assert "access_token" not in reply.body
    assert_no_store(reply)
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    else:
        assert "WWW-Authenticate" not in reply.headers


def assert_invalid_client(reply: Reply) -> None:
    assert_error(reply, 401, "invalid_client")
    assert reply.body["error_description"] == "Client authentication failed."


async def exchange(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    code: str,
    *,
    auth: str = "basic",
    redirect_uri: str | None = REDIRECT_URI,
    **extra: str,
) -> Reply:
    """POST /token with grant_type=authorization_code, authenticating as ``auth`` says
    (``basic``, ``post`` or ``none``); ``redirect_uri=None`` leaves the parameter out."""
    form = {"grant_type": "authorization_code", "code": code, **extra}
    if redirect_uri is not None:
        form["redirect_uri"] = redirect_uri
    return await token_request(http, stack, client, form, auth=auth)


async def introspect(
    http: aiohttp.ClientSession, stack: Stack, caller: Registered, token: str
) -> Reply:
    return await post_form(
        http, f"{stack.introspect}/introspect", {"token": token}, basic_auth_for(caller)
    )


async def token_request(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    form: dict[str, str],
    *,
    auth: str = "basic",
) -> Reply:
    """POST /token with ``form``, authenticating as ``auth`` says (``basic``, ``post``,
    or ``none`` for a public client's client_id alone)."""
    form = dict(form)
    basic = None
    if auth == "basic":
        basic = basic_auth_for(client)
    elif auth == "post":
        form |= {"client_id": client.client_id, "client_secret": client.secret or ""}
    else:
        form["client_id"] = client.client_id
    return await post_form(http, f"{stack.token}/token", form, basic)


async def refresh(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    refresh_token: str,
    **extra: str,
) -> Reply:
    auth = "none" if client.client.is_public else "basic"
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await token_request(http, stack, client, form, auth=auth)


async def revoke(
    http: aiohttp.ClientSession, stack: Stack, client: Registered, token: str, **extra: str
) -> tuple[int, Any, str]:
    """POST /revoke (RFC 7009); status, headers and body text."""
    form = {"token": token, **extra}
    headers = None
    if client.client.is_public:
        form["client_id"] = client.client_id
    else:
        headers = basic_auth_for(client)
    async with http.post(f"{stack.revoke}", data=form, headers=headers) as r:
        return r.status, r.headers, await r.text()


async def is_active(
    http: aiohttp.ClientSession, stack: Stack, caller: Registered, token: str
) -> bool:
    reply = await introspect(http, stack, caller, token)
    assert reply.status == 200, reply.body
    return bool(reply.body["active"])


def assert_token_response(reply: Reply, *, refresh: bool, scope: str | None = None) -> None:
    """RFC 6749 §5.1: a Bearer access token, not cached, a refresh token only if due."""
    assert reply.status == 200, reply.body
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["access_token"]
    assert ("refresh_token" in reply.body) is refresh, reply.body
    if scope is not None:
        assert reply.body["scope"] == scope
    assert_no_store(reply)


def fragment_of(location: str) -> dict[str, str]:
    """The parameters in the fragment of a redirect (the implicit grant, RFC 6749 §4.2.2)."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}
    remember_secrets(params)
    return params


async def verify_with_jwks(
    http: aiohttp.ClientSession, stack: Stack, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a JWT access token as a resource server would (RFC 9068 §4): the key picked
    by ``kid`` from the token service's JWK Set, the algorithm that key's own, issuer and
    audience the stack's. Returns the header and the claims."""
    import jwt  # only the JWT tests need it

    async with http.get(f"{stack.token}/jwks.json") as r:
        assert r.status == 200
        jwks = await r.json()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt", header
    published = [jwk for jwk in jwks["keys"] if jwk["kid"] == header.get("kid")]
    assert len(published) == 1, (header, jwks)
    claims = jwt.decode(
        token,
        jwt.PyJWK(published[0]).key,
        algorithms=[published[0]["alg"]],
        issuer=stack.issuer,
        audience=stack.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]},
    )
    return header, claims


async def logged_lines(http: aiohttp.ClientSession, url: str, name: str) -> list[dict[str, Any]]:
    """The JSON lines the session stack's service ``name``, at ``url``, has logged so far.
    A service writes a request's lines once it has answered, before it reads another
    request: after one more, they are surely in the file (appended to across runs)."""
    async with http.get(f"{url}/healthz") as r:
        assert r.status == 200
    text = (LOGS / f"{name}.log").read_text()
    return [orjson.loads(line) for line in text.splitlines() if line[:1] == "{"]


async def cors_preflight(
    http: aiohttp.ClientSession,
    url: str,
    origin: str,
    method: str = "POST",
    headers: str | None = "content-type",
) -> tuple[int, Any]:
    """The OPTIONS request a browser sends before a cross-origin request it may not
    send unasked (Fetch standard, CORS-preflight request); status and headers."""
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    async with http.options(url, headers=asked) as r:
        return r.status, r.headers


async def origin_allowed(http: aiohttp.ClientSession, stack: Stack, origin: str) -> bool:
    """Whether the token and authorize services both let a browser app on ``origin``
    call them now."""
    for url in (f"{stack.token}/token", stack.metadata):
        status, headers = await cors_preflight(http, url, origin, headers=None)
        if status != 204 or headers.get("Access-Control-Allow-Origin") != origin:
            return False
    return True


Heard = TypeVar("Heard")


async def until_heard(
    attempt: Callable[[], Awaitable[Heard]], heard: Callable[[Heard], bool]
) -> Heard:
    """The last answer of ``attempt``, repeated until ``heard`` says it follows a client's
    change (for 5 s at most): the token and introspection services hear of a change a few
    milliseconds after it is saved (``shared/web/client_changes.py``), and until then answer
    from the record they read before. The caller asserts on what is returned."""
    for _ in range(250):
        answer = await attempt()
        if heard(answer):
            break
        await asyncio.sleep(0.02)
    return answer


async def until_origin(
    http: aiohttp.ClientSession, stack: Stack, origin: str, *, allowed: bool
) -> None:
    """Wait until the services allow (or refuse) ``origin``: they hear of a client's
    change a few milliseconds after it is published."""
    for _ in range(250):
        if await origin_allowed(http, stack, origin) is allowed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{origin} still {'refused' if allowed else 'allowed'}")
