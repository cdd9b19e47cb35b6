"""No credential reaches a log line, even one sent in the wrong place (DESIGN: the cause goes
to the log, never a credential, even a misplaced one).

A stack of its own (so its logs hold this test's requests only) hands out real credentials
through the real flows: a confidential client's secret, a person's password, a live code
and its PKCE verifier, opaque and JWT access tokens, a refresh token, a signed-in session
cookie with its CSRF token, and the admin token. Each is then sent in every wrong field and
header of every service: as client_id (form, query, HTTP Basic with id and secret swapped),
as username, grant_type, scope, redirect_uri, state, code_challenge, interaction, as a form
field's name, as a bearer token where none belongs, in the cookie, X-Forwarded-For,
User-Agent, X-Request-ID and other headers, in the URL path and query, and as the HTTP
method. Every line of the three services' logs (every logger, access lines included) is
then searched for each credential: in clear, percent-encoded, and cut short.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis

from devtools.local_processes import ProcessGroup, ensure_signing_key, free_port, start_redis
from shared.security import fingerprint
from shared.storage import log_fingerprint_key, users
from tests.command_line import tessera
from tests.flows import (
    code_request,
    decide,
    new_request_id,
    new_verifier,
    s256,
    sign_in,
    start_authorization,
)
from tests.records import (
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    unique,
)
from tests.replies import (
    basic_auth,
    basic_auth_for,
    csrf_token,
    post_form,
    query_of,
    session_cookie,
)
from tests.secrets_ledger import SECRETS_USED
from tests.stack import (
    GENEROUS_RATE_LIMITS,
    LOGS,
    TEST_PASSWORD_HASHING,
    Stack,
    connect_single_server,
    start_stack,
)

LOG_PREFIX = "misplaced-secrets-"
SERVICES = ("authorize", "token", "introspect")
ADMIN_TOKEN = "admin-" + secrets.token_urlsafe(32)
# Characters every encoding treats differently, so each encoded form is a distinct needle.
PASSWORD = f"pass word+{secrets.token_urlsafe(12)}&=/%"
# A leak cut short is still a leak: each credential is looked for by its first and last
# NEEDLE characters too (a random 16-character base64url string never occurs by chance).
NEEDLE = 16
# RFC 9110 §5.6.2: what an HTTP method may be made of.
TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for old in LOGS.glob(f"{LOG_PREFIX}*.log"):
        old.unlink()
    group = ProcessGroup()
    try:
        redis_url = start_redis(
            group, free_port(), tmp_path_factory.mktemp("redis"), persistent=False
        )
        yield start_stack(
            group,
            redis_url,
            ensure_signing_key(tmp_path_factory.mktemp("keys")),
            log_prefix=LOG_PREFIX,
            extra_env={
                "TESSERA_ADMIN_TOKEN": ADMIN_TOKEN,
                # X-Forwarded-For is read (from loopback), so a credential there is too.
                "TESSERA_TRUSTED_PROXIES": "127.0.0.1",
                # Every probe reaches its handler: none is refused for the address's rate.
                **GENEROUS_RATE_LIMITS,
            },
        )
    finally:
        group.stop()


@pytest.fixture
async def own_redis(own_stack: Stack) -> AsyncIterator[Redis]:
    client = connect_single_server(own_stack.redis_url)
    yield client
    await client.aclose()


def new_browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@dataclass
class World:
    """What the real flows handed out, and who the probes act as."""

    scope: str
    username: str
    confidential: Registered
    public: Registered
    resource_server: Registered
    # The signed-in browser's cookie and CSRF token, and an anonymous browser's pending
    # sign-in (its cookie, CSRF token and interaction).
    signed_in_cookie: str
    signed_in_csrf: str
    anonymous_cookie: str
    anonymous_csrf: str
    interaction: str
    credentials: dict[str, str] = field(default_factory=dict)


async def code_flow(
    browser: aiohttp.ClientSession, stack: Stack, client: Registered, scope: str, username: str
) -> tuple[str, str]:
    """A code and its PKCE verifier, through /authorize, the login and approval pages."""
    verifier = new_verifier()
    params = code_request(
        client, scope, code_challenge=s256(verifier), code_challenge_method="S256"
    )
    started = await start_authorization(browser, stack, params)
    location = started.headers["Location"]
    if location.startswith("/login"):
        signed_in = await sign_in(browser, stack, location, username, PASSWORD)
        assert signed_in.status == 303
        location = signed_in.headers["Location"]
    decided = await decide(browser, stack, location)
    back = query_of(decided.headers["Location"])
    return back["code"], verifier


async def build_world(http: aiohttp.ClientSession, stack: Stack, redis: Redis) -> World:
    scope = await make_scope(redis)
    username = unique("alice")
    await users.add(redis, username, PASSWORD, TEST_PASSWORD_HASHING)
    confidential = await make_client(
        redis, [scope], grants=["authorization_code", "password"], refresh_count=5
    )
    public = await make_client(redis, [scope], client_type="public", refresh_count=5)
    jwt_client = await make_client(
        redis, [scope], grants=["client_credentials"], redirect_uris=[], jwt_access_tokens=True
    )
    resource_server = await make_resource_server(redis, [scope])
    assert confidential.secret is not None

    # The person signs in and approves twice: one code is redeemed, one stays live.
    spent_code, spent_verifier = await code_flow(http, stack, public, scope, username)
    live_code, live_verifier = await code_flow(http, stack, public, scope, username)
    redeemed = await post_form(
        http,
        f"{stack.token}/token",
        {
            "grant_type": "authorization_code",
            "code": spent_code,
            "code_verifier": spent_verifier,
            "redirect_uri": REDIRECT_URI,
            "client_id": public.client_id,
        },
    )
    assert redeemed.status == 200, redeemed.body
    password_grant = await post_form(
        http,
        f"{stack.token}/token",
        {"grant_type": "password", "username": username, "password": PASSWORD, "scope": scope},
        basic_auth_for(confidential),
    )
    assert password_grant.status == 200, password_grant.body
    as_jwt = await post_form(
        http,
        f"{stack.token}/token",
        {"grant_type": "client_credentials", "scope": scope},
        basic_auth_for(jwt_client),
    )
    assert as_jwt.status == 200, as_jwt.body
    assert as_jwt.body["access_token"].count(".") == 2  # a JWT

    signed_in_cookie = session_cookie(http, stack)
    async with http.get(f"{stack.authorize}/connected-apps") as page:
        assert page.status == 200
        signed_in_csrf = csrf_token(await page.text())

    # Another browser, with a sign-in pending: where a password is typed as the username.
    async with new_browser() as anonymous:
        started = await start_authorization(
            anonymous,
            stack,
            code_request(public, scope, code_challenge=s256(new_verifier())),
        )
        interaction = query_of(started.headers["Location"])["interaction"]
        async with anonymous.get(f"{stack.authorize}{started.headers['Location']}") as page:
            anonymous_csrf = csrf_token(await page.text())
        anonymous_cookie = session_cookie(anonymous, stack)

    world = World(
        scope=scope,
        username=username,
        confidential=confidential,
        public=public,
        resource_server=resource_server,
        signed_in_cookie=signed_in_cookie,
        signed_in_csrf=signed_in_csrf,
        anonymous_cookie=anonymous_cookie,
        anonymous_csrf=anonymous_csrf,
        interaction=interaction,
    )
    world.credentials = {
        "client secret": confidential.secret,
        "password": PASSWORD,
        "code": live_code,
        "code verifier": live_verifier,
        "access token": password_grant.body["access_token"],
        "JWT access token": as_jwt.body["access_token"],
        "refresh token": password_grant.body["refresh_token"],
        "session cookie": signed_in_cookie,
        "CSRF token": signed_in_csrf,
        "admin token": ADMIN_TOKEN,
    }
    SECRETS_USED.update(world.credentials.values())
    return world


@dataclass(frozen=True)
class Probe:
    service: str
    what: str
    request_id: str | None
    status: int


class Prober:
    """Sends the probes, each with a request id of its own so its log line can be found."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.urls = {
            "authorize": stack.authorize,
            "token": stack.token,
            "introspect": stack.introspect,
            # The admin API: the token service's process, which logs its requests.
            "admin": stack.admin,
        }
        self.probes: list[Probe] = []
        # Cookies only as a probe sends them, never from an earlier answer.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def send(
        self,
        service: str,
        method: str,
        path: str,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        request_id = new_request_id()
        headers = {"X-Request-ID": request_id, **(headers or {})}
        # None when the probe puts a credential there.
        own_id = request_id if headers["X-Request-ID"] == request_id else None
        async with self.http.request(
            method, f"{self.urls[service]}{path}", headers=headers, allow_redirects=False, **kwargs
        ) as r:
            await r.read()
            logged_by = "token" if service == "admin" else service
            self.probes.append(Probe(logged_by, what, own_id, r.status))

    async def send_raw(self, service: str, request_line: str, what: str) -> None:
        """A request written by hand: what no HTTP client sends (a credential as method).
        aiohttp's parser refuses a method it does not know before any middleware runs, so
        such a request has no line of its own to look for."""
        url = urlsplit(self.urls[service])
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(
            f"{request_line}\r\nHost: {url.netloc}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = (await reader.readline()).decode()
        await reader.read()
        writer.close()
        await writer.wait_closed()
        self.probes.append(Probe(service, what, None, int(status_line.split()[1])))

    async def aclose(self) -> None:
        await self.http.close()


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"tessera_session={value}"}


async def probe_everywhere(prober: Prober, world: World, kind: str, secret: str) -> None:
    """Send ``secret`` in every wrong place of every service."""
    send = prober.send
    c, p, rs = world.confidential, world.public, world.resource_server
    q = quote(secret, safe="")
    endpoints = {"authorize": "/authorize", "token": "/token", "introspect": "/introspect"}
    stray_headers = {
        "X-Forwarded-For": secret,
        "X-Real-IP": secret,
        "Forwarded": f'for="{secret}"',
        "X-Forwarded-Host": secret,
        "X-Forwarded-Proto": secret,
        "User-Agent": secret,
        "Referer": secret,
        "Origin": secret,
        "Authorization": f"Bearer {secret}",
        "Cookie": f"tessera_session={secret}",
    }

    # Everywhere: the headers, the path, the query string and the method.
    for service, endpoint in endpoints.items():
        method = "GET" if service == "authorize" else "POST"
        await send(service, method, endpoint, f"{kind} in stray headers", headers=stray_headers)
        await send(
            service, method, endpoint, f"{kind} as X-Request-ID", headers={"X-Request-ID": secret}
        )
        await send(
            service, method, endpoint, f"{kind} as Authorization", headers={"Authorization": secret}
        )
        await send(service, "GET", f"/{q}", f"{kind} as the path")
        await send(service, method, f"{endpoint}/{q}", f"{kind} in the path")
        await send(service, method, f"{endpoint}?{q}", f"{kind} as the query")
        query = "&".join(
            f"{name}={q}"
            for name in ("client_id", "code", "token", "access_token", "state", "password")
        )
        await send(service, method, f"{endpoint}?{query}", f"{kind} in the query")
        if set(secret) <= TCHARS:
            await prober.send_raw(service, f"{secret} {endpoint} HTTP/1.1", f"{kind} as method")

    # The token endpoint.
    token_forms = {
        "as client_id": ({"grant_type": "client_credentials", "client_id": secret}, None),
        "as client_id, the id as secret": (
            {"grant_type": "client_credentials", "client_id": secret, "client_secret": c.client_id},
            None,
        ),
        "as Basic id, the id as secret": (
            {"grant_type": "client_credentials"},
            basic_auth(secret, c.client_id),
        ),
        "as grant_type": ({"grant_type": secret}, basic_auth_for(c)),
        "as scope": ({"grant_type": "password", "scope": secret}, basic_auth_for(c)),
        "as username": (
            {"grant_type": "password", "username": secret, "password": "not the password"},
            basic_auth_for(c),
        ),
        "as code, redirect_uri and verifier": (
            {
                "grant_type": "authorization_code",
                "code": secret,
                "redirect_uri": secret,
                "code_verifier": secret,
            },
            basic_auth_for(rs),
        ),
        "as another client's refresh token": (
            {"grant_type": "refresh_token", "refresh_token": secret},
            basic_auth_for(rs),
        ),
    }
    for what, (form, auth) in token_forms.items():
        await send("token", "POST", "/token", f"{kind} {what}", data=form, headers=auth)
    as_name = quote_plus(secret)
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    await send(
        "token",
        "POST",
        "/token",
        f"{kind} as a repeated field name",
        data=f"{as_name}=1&{as_name}=2",
        headers=form_type,
    )
    await send("token", "POST", "/token", f"{kind} as the body", data=as_name, headers=form_type)
    await send(
        "token",
        "POST",
        "/token",
        f"{kind} as a plain-text body",
        data=secret,
        headers={"Content-Type": "text/plain"},
    )
    await send(
        "token",
        "POST",
        "/revoke",
        f"{kind} revoked by another client",
        data={"token": secret},
        headers=basic_auth_for(rs),
    )
    await send(
        "token",
        "POST",
        "/revoke",
        f"{kind} as client_id at /revoke",
        data={"token": "x", "client_id": secret},
    )
    await send(
        "token",
        "POST",
        "/revoke",
        f"{kind} as Basic id at /revoke",
        data={"token": "x"},
        headers=basic_auth(secret, c.client_id),
    )
    await send("token", "GET", f"/jwks.json?kid={q}", f"{kind} in the query of /jwks.json")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    await send("admin", "GET", f"/v1/scopes/{q}", f"{kind} as a scope name", headers=admin)
    await send(
        "admin",
        "PATCH",
        f"/v1/clients/{q}",
        f"{kind} as an admin client id",
        headers=admin,
        json={"enabled": True},
    )
    await send(
        "admin", "DELETE", f"/v1/clients/{q}", f"{kind} as a client to delete", headers=admin
    )
    await send("admin", "GET", f"/v1/users/{q}", f"{kind} as a username", headers=admin)
    await send(
        "admin",
        "GET",
        "/v1/tokens",
        f"{kind} as the admin token",
        headers={"Authorization": f"Bearer {secret}"},
    )
    await send(
        "admin",
        "POST",
        "/v1/clients",
        f"{kind} as a client's name and secret",
        headers=admin,
        json={"client_name": "x", "client_secret": secret, "scope": secret},
    )

    # The introspection service.
    await send(
        "introspect",
        "POST",
        "/introspect",
        f"{kind} as Basic id at /introspect",
        data={"token": "x"},
        headers=basic_auth(secret, rs.client_id),
    )
    await send(
        "introspect",
        "POST",
        "/introspect",
        f"{kind} as client_id at /introspect",
        data={"token": "x", "client_id": secret},
    )
    await send(
        "introspect",
        "POST",
        "/introspect",
        f"{kind} introspected by a non-resource-server",
        data={"token": secret},
        headers=basic_auth_for(c),
    )
    await send(
        "introspect",
        "POST",
        "/introspect",
        f"{kind} introspected as a hint",
        data={"token": "x", "token_type_hint": secret},
        headers=basic_auth_for(rs),
    )
    await send(
        "introspect",
        "GET",
        "/scopes",
        f"{kind} as Basic id at /scopes",
        headers=basic_auth(secret, rs.client_id),
    )

    # The authorize service: the authorization request, the pages and their forms.
    valid = code_request(p, world.scope, code_challenge=s256(new_verifier()))
    authorize_queries = {
        "as client_id": {"response_type": "code", "client_id": secret},
        "as redirect_uri": {**valid, "redirect_uri": secret},
        "as scope and state": {**valid, "scope": secret, "state": secret},
        "as response_type": {**valid, "response_type": secret},
        "as code_challenge": {**valid, "code_challenge": secret, "code_challenge_method": secret},
        "as prompt and nonce": {**valid, "prompt": secret, "nonce": secret},
    }
    for what, params in authorize_queries.items():
        await send("authorize", "GET", "/authorize", f"{kind} {what}", params=params)
    await send(
        "authorize",
        "POST",
        "/authorize",
        f"{kind} as client_id in a POST",
        data={"response_type": "code", "client_id": secret},
    )
    await send(
        "authorize",
        "POST",
        "/authorize",
        f"{kind} as repeated client_id",
        data=[("client_id", secret), ("client_id", secret)],
    )
    await send(
        "authorize",
        "POST",
        "/authorize",
        f"{kind} as a repeated field name",
        data=f"{as_name}=1&{as_name}=2&client_id={p.client_id}",
        headers=form_type,
    )
    for page in ("/login", "/consent", "/authorize/resume"):
        await send(
            "authorize",
            "GET",
            page,
            f"{kind} as the interaction of {page}",
            params={"interaction": secret},
            headers=cookie(world.anonymous_cookie),
        )
    await send("authorize", "GET", "/login", f"{kind} as next", params={"next": secret})
    await send(
        "authorize",
        "POST",
        "/login",
        f"{kind} as username",
        data={
            "interaction": world.interaction,
            "csrf_token": world.anonymous_csrf,
            "username": secret,
            "password": "not the password",
        },
        headers=cookie(world.anonymous_cookie),
    )
    await send(
        "authorize",
        "POST",
        "/login",
        f"{kind} as CSRF token and interaction",
        data={"interaction": secret, "csrf_token": secret, "username": secret, "password": secret},
        headers=cookie(world.anonymous_cookie),
    )
    await send(
        "authorize",
        "POST",
        "/consent",
        f"{kind} as the approval's CSRF token",
        data={"interaction": secret, "csrf_token": secret, "decision": "approve", "scope": secret},
        headers=cookie(world.signed_in_cookie),
    )
    await send(
        "authorize",
        "POST",
        "/consent",
        f"{kind} as the approval's interaction",
        data={"interaction": secret, "csrf_token": world.signed_in_csrf, "decision": secret},
        headers=cookie(world.signed_in_cookie),
    )
    await send(
        "authorize",
        "POST",
        "/connected-apps",
        f"{kind} as the client to disconnect",
        data={"client_id": secret, "csrf_token": world.signed_in_csrf},
        headers=cookie(world.signed_in_cookie),
    )
    # (Not the signed-in browser's: its own CSRF token, one of the secrets, would sign it out.)
    await send(
        "authorize",
        "POST",
        "/logout",
        f"{kind} as the logout CSRF token",
        data={"csrf_token": secret},
        headers=cookie(world.anonymous_cookie),
    )
    await send("authorize", "GET", f"/static/{q}", f"{kind} as a static file")


def needles(secret: str) -> set[str]:
    """What would show ``secret`` in a log line, lower-cased: the part of it that is the
    credential (a code or opaque token is ``<public family id>.<secret>``, a JWT's
    signature is what makes it one), its first and last NEEDLE characters, each as sent
    and percent-encoded."""
    pieces = secret.split(".")
    credential = pieces[-1] if len(pieces) in (2, 3) else secret
    found: set[str] = set()
    for piece in (credential, credential[:NEEDLE], credential[-NEEDLE:]):
        found |= {piece, quote(piece, safe=""), quote(piece), quote_plus(piece)}
    return {needle.lower() for needle in found}


def log_lines() -> dict[str, list[str]]:
    """Every line this test's stack logged, by service."""
    return {
        service: (LOGS / f"{LOG_PREFIX}{service}.log").read_text(errors="replace").splitlines()
        for service in SERVICES
    }


async def test_no_credential_sent_in_a_wrong_place_is_logged(
    own_stack: Stack, own_redis: Redis
) -> None:
    async with new_browser() as http:
        world = await build_world(http, own_stack, own_redis)
    prober = Prober(own_stack)
    try:
        for kind, secret in world.credentials.items():
            await probe_everywhere(prober, world, kind, secret)
        # A service writes a request's lines before it reads the next request.
        for name, url in prober.urls.items():
            if name == "admin":
                continue  # served by the token service's process, asked just before
            async with prober.http.get(f"{url}/healthz") as r:
                assert r.status == 200
    finally:
        await prober.aclose()

    lines = log_lines()
    leaks = [
        (kind, service, line[:300])
        for kind, secret in world.credentials.items()
        for needle in needles(secret)
        for service, service_lines in lines.items()
        for line in service_lines
        if needle in line.lower()
    ]
    assert leaks == [], f"{len(leaks)} credentials in log lines, e.g.: {leaks[:5]}"

    # Every probe was answered without a server error, and every one left its line, so
    # the search above read the lines the probes made.
    assert len(prober.probes) > 500, len(prober.probes)
    failed = [probe for probe in prober.probes if probe.status >= 500]
    assert failed == [], failed[:5]
    entries = {
        service: [orjson.loads(line) for line in service_lines if line[:1] == "{"]
        for service, service_lines in lines.items()
    }
    logged = {
        service: {entry.get("request_id") for entry in service_entries}
        for service, service_entries in entries.items()
    }
    unlogged = [
        probe
        for probe in prober.probes
        if probe.request_id is not None and probe.request_id not in logged[probe.service]
    ]
    assert unlogged == [], unlogged[:5]

    # What was refused is named by fingerprint, the same in every service (the key they
    # all read from Redis), so the same bad value is seen wherever it arrives.
    key = await log_fingerprint_key.shared_key(own_redis)
    as_client_id = f"unknown client {fingerprint.with_key(key, world.confidential.secret or '')}"
    for service in ("token", "introspect"):
        reasons = {
            entry.get("reason")
            for entry in entries[service]
            if entry.get("event") == "client_auth_failed"
        }
        assert as_client_id in reasons, (service, sorted(map(str, reasons))[:5])
    typed_as_username = fingerprint.with_key(key, PASSWORD)
    # An operator finds it too, without putting the value on a command line.
    found = await tessera(own_stack, "log", "fingerprint", stdin=f"{PASSWORD}\n")
    assert (found.status, found.stdout) == (0, f"{typed_as_username}\n"), found.stderr
    assert any(
        (entry.get("event"), entry.get("username")) == ("login_failed", typed_as_username)
        for entry in entries["authorize"]
    )
    assert not any(fingerprint.LOCAL_PREFIX in line for line in chain(*lines.values()))


def test_the_search_finds_a_credential_however_it_is_written() -> None:
    """The search can fail: a credential in clear, encoded, cut short or upper-cased is
    found, and a code's public family id alone is not."""
    token = f"family.{secrets.token_urlsafe(32)}"
    written = {
        token: token,
        token.split(".")[1][:20]: token,
        "x" + token[-20:]: token,
        token.upper(): token,
        quote(PASSWORD, safe=""): PASSWORD,
        quote_plus(PASSWORD): PASSWORD,
        repr(PASSWORD.split()): PASSWORD,
    }
    for text, secret in written.items():
        line = orjson.dumps({"message": f"refused {text}"}).decode().lower()
        assert any(needle in line for needle in needles(secret)), text
    assert not any(needle in "refused family.other" for needle in needles(token))
