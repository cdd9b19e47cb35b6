"""Anonymous callers cannot grow Redis: what a cookie-less /authorize costs, the bounds
on what it stores, and the per-address rate limits (README, "Rate limits and memory")."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import orjson
import pytest
from redis.asyncio import Redis
from yarl import URL

from devtools.local_processes import ProcessGroup
from services.authorize.authorization_request import MAX_FREE_TEXT, MAX_LOGIN_HINT
from shared.domain.claims_request import MAX_CLAIM_NAME
from shared.domain.claims_request import MAX_LENGTH as CLAIMS_MAX_LENGTH
from shared.storage import keys
from tests.assertions import assert_error, assert_invalid_client
from tests.flows import code_request
from tests.records import make_client, make_resource_server, make_scope, make_setup, unique
from tests.replies import basic_auth, basic_auth_for, fetch, post_form, query_of
from tests.stack import Stack, start_stack

REQUESTS = 5_000
# Visible ASCII (RFC 6749 Appendix A.5), random so that nothing compresses it.
VSCHAR = "".join(chr(c) for c in range(0x20, 0x7F))
LIMIT = 5


@pytest.fixture(scope="module")
def limited(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The services again, on the same Redis, with low limits and the loopback address
    as a trusted proxy, so that tests speak for many client addresses."""
    assert stack.signing_keys is not None  # start_stack always sets it
    group = ProcessGroup()
    try:
        yield start_stack(
            group,
            stack.redis_url,
            stack.signing_keys,
            log_prefix="limited-",
            extra_env={
                "TESSERA_TRUSTED_PROXIES": "127.0.0.1",
                "TESSERA_AUTHORIZE_RATE": f"{LIMIT}/60",
                "TESSERA_LOGIN_PAGE_RATE": f"{LIMIT}/60",
                "TESSERA_CLIENT_AUTH_FAILURE_RATE": f"{LIMIT}/60",
            },
        )
    finally:
        group.stop()


@pytest.fixture
async def cookieless() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


def address() -> str:
    return f"198.51.{random.randrange(256)}.{random.randrange(1, 255)}"


def random_state(length: int = 1000) -> str:
    return "".join(random.choices(VSCHAR, k=length))


async def stored_keys(redis: Redis) -> set[str]:
    """Every key Redis holds: a storage check, as this file's are (what an anonymous
    caller can make Redis hold)."""
    return {key async for key in redis.scan_iter(count=1000)}


S256_CHALLENGE = {
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
}
# The longest challenge (RFC 7636 §4.2), sent as the plain method.
PLAIN_CHALLENGE = {"code_challenge": "A" * 128, "code_challenge_method": "plain"}


@pytest.mark.parametrize(
    ("state", "challenge"),
    [
        (lambda: random_state(1000), S256_CHALLENGE),
        # What JSON would escape, and the longest plain challenge.
        (lambda: '"' * 1000, PLAIN_CHALLENGE),
    ],
    ids=["random-state", "quoted-state-plain-challenge"],
)
async def test_an_anonymous_authorization_request_holds_at_most_1_5_kb(
    stack: Stack,
    redis: Redis,
    cookieless: aiohttp.ClientSession,
    state: Callable[[], str],
    challenge: dict[str, str],
) -> None:
    s = await make_setup(redis, client_type="public")
    pending = asyncio.Semaphore(16)

    async def one() -> None:
        params = {**code_request(s.client, s.scope, state=state()), **challenge}
        async with pending:
            answer = await fetch(cookieless, "GET", f"{stack.authorize}/authorize", params=params)
        assert answer.status == 303 and answer.location.startswith("/login?interaction=")

    await redis.memory_purge()
    before = (await redis.info("memory"))["used_memory"]
    await asyncio.gather(*(one() for _ in range(REQUESTS)))
    held = ((await redis.info("memory"))["used_memory"] - before) / REQUESTS

    print(f"{held:.0f} bytes held per anonymous request")  # the README's figure, with -s
    assert held <= 1536, f"{held:.0f} bytes held per anonymous request"


def longest_claims_request() -> str:
    """A claims parameter (OpenID Connect Core §5.5) as long as it may be, of names as
    long as they may be."""
    asked: dict[str, object] = {}
    while True:
        name = random_state(MAX_CLAIM_NAME).replace('"', "q").replace("\\", "b")
        longer = orjson.dumps({"id_token": {**asked, name: {"essential": True}}}).decode()
        if len(longer) > CLAIMS_MAX_LENGTH:
            return orjson.dumps({"id_token": asked}).decode()
        asked[name] = {"essential": True}


async def test_an_anonymous_openid_request_at_every_bound_holds_at_most_5_5_kb(
    stack: Stack, redis: Redis, cookieless: aiohttp.ClientSession
) -> None:
    """What OpenID Connect adds to a pending request: a nonce (stored JSON-escaped, so
    quotes count twice), a login_hint and the claims parameter, each at its bound."""
    scope = await make_scope(redis)
    client = await make_client(redis, ["openid", scope], client_type="public")
    pending = asyncio.Semaphore(16)

    async def one() -> None:
        params = {
            **code_request(client, f"openid {scope}", state=random_state(1000)),
            **S256_CHALLENGE,
            "nonce": '"' * MAX_FREE_TEXT,
            "login_hint": '"' * MAX_LOGIN_HINT,
            "claims": longest_claims_request(),
        }
        async with pending:
            answer = await fetch(cookieless, "GET", f"{stack.authorize}/authorize", params=params)
        assert answer.status == 303 and answer.location.startswith("/login?interaction="), (
            answer.location
        )

    await redis.memory_purge()
    before = (await redis.info("memory"))["used_memory"]
    await asyncio.gather(*(one() for _ in range(REQUESTS)))
    held = ((await redis.info("memory"))["used_memory"] - before) / REQUESTS

    print(f"{held:.0f} bytes held per anonymous OpenID request")  # the README's figure, with -s
    assert held <= 5632, f"{held:.0f} bytes held per anonymous OpenID request"


async def test_a_pending_request_an_older_release_stored_reads_as_expired(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """The release before stored a hash {request, browser}; a rolling update may meet one."""
    s = await make_setup(redis)
    await fetch(http, "GET", f"{stack.authorize}/authorize", params=code_request(s.client, s.scope))
    assert http.cookie_jar.filter_cookies(URL(stack.authorize))  # a session, so pages read it
    interaction = unique("older")
    await redis.hset(keys.interaction(interaction), mapping={"request": "{}", "browser": ""})
    await redis.expire(keys.interaction(interaction), 60)
    for page in ("/authorize/resume", "/login", "/consent"):
        answer = await fetch(http, "GET", f"{stack.authorize}{page}?interaction={interaction}")
        assert answer.status == 400, (page, answer.status)
        assert "expired or is unknown" in answer.text


@pytest.mark.parametrize(
    "change",
    [
        {"state": "x" * (MAX_FREE_TEXT + 1)},
        {"nonce": "x" * (MAX_FREE_TEXT + 1)},
        {"state": "caf\u00e9"},
        {"state": "tab\there"},
    ],
    ids=["state-too-long", "nonce-too-long", "state-not-ascii", "state-control-character"],
)
async def test_free_text_beyond_its_bounds_is_refused_and_nothing_stored(
    stack: Stack, redis: Redis, cookieless: aiohttp.ClientSession, change: dict[str, str]
) -> None:
    s = await make_setup(redis)
    before = await stored_keys(redis)

    answer = await fetch(
        cookieless,
        "GET",
        f"{stack.authorize}/authorize",
        params={**code_request(s.client, s.scope), **change},
    )

    assert answer.status == 303
    back = query_of(answer.location)
    assert back["error"] == "invalid_request"
    assert "state" not in back  # the state may be what is wrong: never echoed
    assert "Set-Cookie" not in answer.headers
    assert await stored_keys(redis) == before


async def test_free_text_at_its_bound_is_accepted(
    stack: Stack, redis: Redis, cookieless: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    state = random_state(MAX_FREE_TEXT)
    params = {**code_request(s.client, s.scope), "state": state, "nonce": "n" * MAX_FREE_TEXT}
    answer = await fetch(cookieless, "GET", f"{stack.authorize}/authorize", params=params)
    assert answer.status == 303 and answer.location.startswith("/login?interaction=")


async def test_a_request_that_fails_validation_stores_nothing(
    stack: Stack, redis: Redis, cookieless: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    before = await stored_keys(redis)
    for params in (
        {**code_request(s.client, s.scope), "scope": "never-defined"},
        {**code_request(s.client, s.scope), "response_type": "id_token"},
        {**code_request(s.client, s.scope), "client_id": "nobody"},
    ):
        answer = await fetch(cookieless, "GET", f"{stack.authorize}/authorize", params=params)
        assert answer.status in (303, 400)
    assert await stored_keys(redis) == before


async def test_authorize_is_limited_per_address_and_a_refusal_stores_nothing(
    limited: Stack, redis: Redis, cookieless: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    mine, other = {"X-Forwarded-For": address()}, {"X-Forwarded-For": address()}
    url = f"{limited.authorize}/authorize"
    for _ in range(LIMIT):
        params = code_request(s.client, s.scope)
        passed = await fetch(cookieless, "GET", url, params=params, headers=mine)
        assert passed.status == 303
    before = await stored_keys(redis)

    refused = await fetch(
        cookieless, "GET", url, params=code_request(s.client, s.scope), headers=mine
    )
    posted = await fetch(
        cookieless, "POST", url, data=code_request(s.client, s.scope), headers=mine
    )

    for answer in (refused, posted):
        assert answer.status == 429
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert "Too many requests" in answer.text
        assert "Set-Cookie" not in answer.headers
    assert await stored_keys(redis) == before
    # Another address is counted apart; the one that forwarded the header is the proxy.
    elsewhere = await fetch(
        cookieless, "GET", url, params=code_request(s.client, s.scope), headers=other
    )
    assert elsewhere.status == 303


async def test_the_sign_in_page_is_limited_per_address(
    limited: Stack, cookieless: aiohttp.ClientSession
) -> None:
    mine = {"X-Forwarded-For": address()}
    url = f"{limited.authorize}/login?next=/connected-apps"
    statuses = [(await fetch(cookieless, "GET", url, headers=mine)).status for _ in range(LIMIT)]
    refused = await fetch(cookieless, "GET", url, headers=mine)
    posted = await fetch(cookieless, "POST", f"{limited.authorize}/login", data={}, headers=mine)
    assert statuses == [200] * LIMIT
    assert refused.status == posted.status == 429
    assert refused.headers["Retry-After"]


@pytest.mark.parametrize("endpoint", ["token", "revoke", "introspect"])
async def test_failed_client_authentication_is_limited_per_address(
    limited: Stack, redis: Redis, http: aiohttp.ClientSession, endpoint: str
) -> None:
    scope = await make_scope(redis)
    client = await make_resource_server(redis, [scope])
    assert client.secret
    mine = {"X-Forwarded-For": address()}
    url = {
        "token": f"{limited.token}/token",
        "revoke": f"{limited.token}/revoke",
        "introspect": f"{limited.introspect}/introspect",
    }[endpoint]
    form = {"grant_type": "client_credentials", "token": "anything"}
    wrong = {**mine, **basic_auth(client.client_id, "not-the-secret")}
    for _ in range(LIMIT):
        assert_invalid_client(await post_form(http, url, form, wrong))

    refused = await post_form(http, url, form, wrong)
    # Refused before the secret is looked at: the right one fares no better from there.
    right = await post_form(http, url, form, {**mine, **basic_auth_for(client)})

    for reply in (refused, right):
        assert_error(reply, 429, "temporarily_unavailable")
        assert 1 <= int(reply.headers["Retry-After"]) <= 60
    elsewhere = {"X-Forwarded-For": address(), **basic_auth_for(client)}
    assert (await post_form(http, url, form, elsewhere)).status != 429


async def test_clients_that_authenticate_are_never_counted(
    limited: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    scope = await make_scope(redis)
    client = await make_client(redis, [scope], grants=["client_credentials"])
    where = address()
    mine = {"X-Forwarded-For": where, **basic_auth_for(client)}
    form = {"grant_type": "client_credentials", "scope": scope}
    for _ in range(LIMIT * 3):
        assert (await post_form(http, f"{limited.token}/token", form, mine)).status == 200
    # From there, every failure of the limit is still to be had, and no more.
    wrong = {"X-Forwarded-For": where, **basic_auth(client.client_id, "not-the-secret")}
    for _ in range(LIMIT):
        assert_invalid_client(await post_form(http, f"{limited.token}/token", form, wrong))
    refused = await post_form(http, f"{limited.token}/token", form, wrong)
    assert_error(refused, 429, "temporarily_unavailable")


async def commands_for(redis: Redis, request: Awaitable[object]) -> int:
    """Redis commands served while ``request`` ran (the suite runs one test at a time)."""
    before: int = (await redis.info("stats"))["total_commands_processed"]
    await request
    after: int = (await redis.info("stats"))["total_commands_processed"]
    return after - before - 1


@pytest.mark.parametrize("count", [100, 101, 5_000])
async def test_many_scope_names_cost_a_few_redis_commands_at_most(
    stack: Stack, redis: Redis, cookieless: aiohttp.ClientSession, count: int
) -> None:
    s = await make_setup(redis, client_type="public", grants=["authorization_code", "password"])
    names = " ".join(f"never-defined-{n}" for n in range(count))
    form = {**code_request(s.client, s.scope), "scope": names}
    authorize = await commands_for(
        redis, fetch(cookieless, "POST", f"{stack.authorize}/authorize", data=form)
    )
    token = await commands_for(
        redis,
        post_form(
            cookieless,
            f"{stack.token}/token",
            {"grant_type": "password", "client_id": s.client.client_id, "scope": names},
        ),
    )
    # Refused on the client's registration, held in memory; a few names for the log.
    assert authorize <= 10, authorize
    assert token <= 10, token
