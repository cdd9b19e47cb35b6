"""Back-Channel Logout 1.0: when a person signs out (the sign-out page, or RP-Initiated
Logout) every client issued an ID token in that browser session and registered with a
back-channel logout URI gets a logout token (§2.4), posted as a form (§2.5) by the
authorize service's workers, away from the sign-out; removing an application on the
connected applications page tells it too. Each token is checked with a third-party JOSE
library (joserfc, Authlib's) against the stack's JWK Set. The receivers are aiohttp
servers of the test on loopback (the stack runs in development mode, where plain http to
loopback is allowed)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.authorize.backchannel_delivery import (
    ABANDONED,
    DROPPED,
    NOT_ALLOWED,
    BackchannelDeliveries,
    DeliveryPolicy,
    LogoutNotice,
    may_post_to,
)
from services.authorize.backchannel_logout import LOGOUT_TOKEN_LIFETIME
from shared.domain.openid import BACKCHANNEL_LOGOUT_EVENT, OPENID
from shared.storage import keys
from tests.flows import obtain_code
from tests.metrics_scrape import samples, value
from tests.records import Registered, Setup, make_client, make_user
from tests.relying_parties import (
    HANG,
    Hit,
    claims_of,
    end_session,
    id_token_of,
    logout_receiver,
    openid_setup,
    refused_url,
    signed_in_as,
)
from tests.replies import csrf_token, fetch
from tests.stack import Stack, logged_lines, production_settings

# Sign-out answers without waiting for any client: far sooner than one attempt may take.
SIGN_OUT_BOUND = 1.0
assert SIGN_OUT_BOUND < DeliveryPolicy().timeout_seconds / 4
# Long enough for a notice queued by the same sign-out to have arrived, were it sent.
QUIET_SECONDS = 0.5


async def sign_out(http: aiohttp.ClientSession, stack: Stack) -> float:
    """Sign out on the sign-out page; the seconds the form's answer took."""
    page = await fetch(http, "GET", f"{stack.authorize}/logout")
    form = {"csrf_token": csrf_token(page.text)}
    started = time.monotonic()
    answer = await fetch(http, "POST", f"{stack.authorize}/logout", data=form)
    took = time.monotonic() - started
    assert answer.status == 200
    assert "You have been signed out" in answer.text
    return took


async def verified(
    http: aiohttp.ClientSession, stack: Stack, hit: Hit, client: Registered
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The logout token of ``hit``, verified as a client would (§2.6) with joserfc: the
    signature by the key its ``kid`` names in the stack's jwks_uri, ``typ`` logout+jwt,
    ``iss``, ``aud``, ``iat``, ``exp``, ``jti`` and the event; never a nonce."""
    assert hit.content_type == "application/x-www-form-urlencoded"
    assert list(hit.form) == ["logout_token"]
    async with http.get(f"{stack.token}/jwks.json") as r:
        assert r.status == 200
        jwks = await r.json()
    token = jose_jwt.decode(
        hit.form["logout_token"], KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"]
    )
    assert token.header["typ"] == "logout+jwt"
    assert token.header["kid"] in {key["kid"] for key in jwks["keys"]}
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": stack.issuer},
        aud={"essential": True, "value": client.client_id},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
        events={"essential": True},
    ).validate(token.claims)
    claims = token.claims
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert 0 < claims["exp"] - claims["iat"] <= LOGOUT_TOKEN_LIFETIME
    assert "nonce" not in claims  # §2.4: so that it cannot pass for an ID token
    return token.header, claims


async def outcomes(http: aiohttp.ClientSession, stack: Stack) -> dict[str, float]:
    """The authorize service's count of back-channel logouts by outcome."""
    async with http.get(f"{stack.authorize}/metrics") as r:
        scrape = samples(await r.text())
    return {
        outcome: value(scrape, "tessera_backchannel_logouts_total", outcome=outcome)
        for outcome in ("delivered", "refused", "failed", "dropped", "not_allowed")
    }


async def client_in(redis: Redis, setup: Setup, **options: Any) -> Setup:
    """Another openid client for the same person and scope."""
    scopes = [name for name in setup.scope.split() if name != OPENID]
    client = await make_client(redis, [OPENID, *scopes], **options)
    return Setup(setup.scope, setup.user, client)


# --- what is sent, and to whom ------------------------------------------------------------


async def test_signing_out_sends_each_client_of_the_session_a_logout_token(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    async with logout_receiver() as receiver, logout_receiver() as bystander:
        told = await openid_setup(redis, backchannel_logout_uri=receiver.url)
        # In the session without a back-channel URI, and with one but not in the session.
        silent = await client_in(redis, told)
        await client_in(redis, told, backchannel_logout_uri=bystander.url)
        id_token = await id_token_of(http, stack, told, nonce="n-0S6_WzA2Mj")
        await id_token_of(http, stack, silent)
        sid = claims_of(id_token)["sid"]
        assert await redis.exists(keys.session_clients(sid))

        await sign_out(http, stack)

        [hit] = await receiver.until_hits(1)
        _, claims = await verified(http, stack, hit, told.client)
        assert claims["sub"] == claims_of(id_token)["sub"]
        assert claims["sid"] == sid
        await asyncio.sleep(QUIET_SECONDS)
        assert len(receiver.hits) == 1
        assert bystander.hits == []
    assert not await redis.exists(keys.session_clients(sid))


async def test_another_person_signing_in_over_a_session_ends_it_and_tells_its_clients(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """prompt=login answered by someone else: the first person's session is over. The
    same person signing in again keeps the session, and no client is told anything."""
    async with logout_receiver() as receiver:
        told = await openid_setup(redis, backchannel_logout_uri=receiver.url)
        first = claims_of(await id_token_of(http, stack, told))
        again = claims_of(await id_token_of(http, stack, told, prompt="login"))
        assert again["sid"] == first["sid"]
        await asyncio.sleep(QUIET_SECONDS)
        assert receiver.hits == []

        someone_else = Setup(told.scope, await make_user(redis), told.client)
        other = claims_of(await id_token_of(http, stack, someone_else, prompt="login"))

        assert other["sid"] != first["sid"]
        [hit] = await receiver.until_hits(1)
        _, claims = await verified(http, stack, hit, told.client)
        assert (claims["sid"], claims["sub"]) == (first["sid"], first["sub"])


async def test_rp_initiated_logout_tells_every_client_as_it_knows_the_person(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Two clients of one session, one with pairwise subjects: each gets the session's
    sid and the sub it knows the person by."""
    async with logout_receiver() as first, logout_receiver() as second:
        public = await openid_setup(redis, backchannel_logout_uri=first.url)
        pairwise = await client_in(
            redis, public, backchannel_logout_uri=second.url, subject_type="pairwise"
        )
        public_token = await id_token_of(http, stack, public)
        pairwise_token = await id_token_of(http, stack, pairwise)
        assert claims_of(public_token)["sub"] != claims_of(pairwise_token)["sub"]

        ended = await end_session(http, stack, id_token_hint=public_token)
        assert ended.status == 200, ended.text
        assert await signed_in_as(http, stack) is None

        for receiver, setup, id_token in (
            (first, public, public_token),
            (second, pairwise, pairwise_token),
        ):
            [hit] = await receiver.until_hits(1)
            _, claims = await verified(http, stack, hit, setup.client)
            assert claims["sub"] == claims_of(id_token)["sub"]
            assert claims["sid"] == claims_of(id_token)["sid"]


async def test_removing_an_app_tells_it_to_end_every_session_of_the_person(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Its grants are revoked in whichever browser, so the token names the person (sub)
    and no session (§2.4: every session of that person at the client ends). The other
    client of the session is not told; at sign-out, only it is."""
    async with logout_receiver() as removed_app, logout_receiver() as other_app:
        removed = await openid_setup(redis, backchannel_logout_uri=removed_app.url)
        other = await client_in(redis, removed, backchannel_logout_uri=other_app.url)
        id_token = await id_token_of(http, stack, removed)
        await id_token_of(http, stack, other)

        page = await fetch(http, "GET", f"{stack.authorize}/connected-apps")
        form = {"csrf_token": csrf_token(page.text), "client_id": removed.client.client_id}
        answer = await fetch(http, "POST", f"{stack.authorize}/connected-apps", data=form)
        assert answer.status == 303

        [hit] = await removed_app.until_hits(1)
        _, claims = await verified(http, stack, hit, removed.client)
        assert claims["sub"] == claims_of(id_token)["sub"]
        assert "sid" not in claims
        await asyncio.sleep(QUIET_SECONDS)
        assert other_app.hits == []

        await sign_out(http, stack)
        await other_app.until_hits(1)
        await asyncio.sleep(QUIET_SECONDS)
        assert len(removed_app.hits) == 1


async def test_an_app_that_never_had_openid_is_not_told_who_removed_it(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A client approved without the openid scope never learnt the person's sub."""
    async with logout_receiver() as receiver:
        setup = await openid_setup(redis, backchannel_logout_uri=receiver.url)
        plain = setup.scope.replace(OPENID, "").strip()
        await obtain_code(http, stack, Setup(plain, setup.user, setup.client))

        page = await fetch(http, "GET", f"{stack.authorize}/connected-apps")
        form = {"csrf_token": csrf_token(page.text), "client_id": setup.client.client_id}
        answer = await fetch(http, "POST", f"{stack.authorize}/connected-apps", data=form)
        assert answer.status == 303
        await sign_out(http, stack)
        await asyncio.sleep(QUIET_SECONDS)
        assert receiver.hits == []


# --- delivery: never in the way, tried again, bounded -------------------------------------


async def test_dead_clients_do_not_delay_signing_out(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """One client refuses connections, another never answers: the sign-out is answered
    well within one attempt's timeout, while the worker is still waiting on the second."""
    async with logout_receiver(then=HANG) as hanging:
        refusing = await openid_setup(redis, backchannel_logout_uri=refused_url())
        silent = await client_in(redis, refusing, backchannel_logout_uri=hanging.url)
        await id_token_of(http, stack, refusing)
        await id_token_of(http, stack, silent)

        took = await sign_out(http, stack)

        assert took < SIGN_OUT_BOUND, took
        await hanging.until_hits(1)  # sent, and hanging there now
        assert await signed_in_as(http, stack) is None


async def test_network_errors_and_5xx_are_tried_again_until_delivered(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """503 twice, then 200: three attempts, each with the same token, a pause growing
    between them; counted once as delivered, and logged. A client that refuses every
    connection fails after the last attempt, counted and logged too."""
    before = await outcomes(http, stack)
    async with logout_receiver(503, 503) as flaky:
        setup = await openid_setup(redis, backchannel_logout_uri=flaky.url)
        unreachable = await client_in(redis, setup, backchannel_logout_uri=refused_url())
        await id_token_of(http, stack, setup)
        await id_token_of(http, stack, unreachable)
        await sign_out(http, stack)

        hits = await flaky.until_hits(3)
        assert len({hit.form["logout_token"] for hit in hits}) == 1
        pauses = [later.at - earlier.at for earlier, later in itertools.pairwise(hits)]
        policy = DeliveryPolicy()
        assert pauses[0] >= policy.backoff_seconds * 0.9, pauses
        assert pauses[1] >= policy.backoff_seconds * 2 * 0.9, pauses
        await verified(http, stack, hits[-1], setup.client)

    delivered = f"back-channel logout to client {setup.client.client_id} delivered: HTTP 200"
    failed = f"back-channel logout to client {unreachable.client.client_id} failed: "
    for _ in range(200):  # the failure is logged once the last attempt has failed
        lines = await logged_lines(http, stack.authorize, "authorize")
        messages = [line["message"] for line in lines]
        if any(m.startswith(failed) for m in messages):
            break
        await asyncio.sleep(0.05)
    assert delivered in messages
    assert any(m.startswith(failed) and m.endswith(f"{policy.attempts} attempts") for m in messages)
    after = await outcomes(http, stack)
    assert after["delivered"] - before["delivered"] >= 1
    assert after["failed"] - before["failed"] >= 1


async def test_a_4xx_is_not_tried_again_and_a_redirect_is_not_followed(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    before = await outcomes(http, stack)
    async with logout_receiver(then=400) as refusing, logout_receiver(then=307) as redirecting:
        setup = await openid_setup(redis, backchannel_logout_uri=refusing.url)
        moved = await client_in(redis, setup, backchannel_logout_uri=redirecting.url)
        await id_token_of(http, stack, setup)
        await id_token_of(http, stack, moved)
        await sign_out(http, stack)

        await refusing.until_hits(1)
        await redirecting.until_hits(1)
        # Past the first pause, when a second attempt would have come.
        await asyncio.sleep(DeliveryPolicy().backoff_seconds * 1.5)
        assert len(refusing.hits) == 1
        assert [hit.path for hit in redirecting.hits] == ["/backchannel-logout"]
    after = await outcomes(http, stack)
    assert after["refused"] - before["refused"] == 2


async def test_a_full_queue_drops_at_once_and_stopping_abandons_what_is_left() -> None:
    """The workers of one service, in this process: one worker, room for one notice. The
    first hangs at the client, the second waits, the third is dropped without waiting;
    stopping gives the queue its time, then abandons both."""
    settings = production_settings(
        "redis://127.0.0.1:1/0",
        TESSERA_ISSUER="http://127.0.0.1:9000",
        TESSERA_INSECURE_LOOPBACK="1",
    )
    registry = CollectorRegistry()
    policy = DeliveryPolicy(workers=1, queue_size=1, timeout_seconds=30, stop_seconds=0.2)
    deliveries = BackchannelDeliveries(settings, registry, policy)

    def counted(outcome: str) -> float | None:
        return registry.get_sample_value("tessera_backchannel_logouts_total", {"outcome": outcome})

    async with logout_receiver(then=HANG) as hanging:
        await deliveries.start()
        notices = [LogoutNotice(f"client-{n}", hanging.url, f"token-{n}") for n in range(3)]
        deliveries.send(notices[0])
        await hanging.until_hits(1)
        deliveries.send(notices[1])
        started = time.monotonic()
        deliveries.send(notices[2])
        assert time.monotonic() - started < 0.05
        assert counted(DROPPED) == 1
        await deliveries.stop()
        assert counted(ABANDONED) == 2
        assert len(hanging.hits) == 1


async def test_only_https_or_loopback_http_in_development_is_posted_to() -> None:
    production = production_settings("redis://127.0.0.1:1/0")
    development = production_settings(
        "redis://127.0.0.1:1/0",
        TESSERA_ISSUER="http://127.0.0.1:9000",
        TESSERA_INSECURE_LOOPBACK="1",
    )
    assert may_post_to("https://app.example.com/logout", production)
    assert not may_post_to("http://127.0.0.1:8080/logout", production)
    assert may_post_to("http://127.0.0.1:8080/logout", development)
    assert not may_post_to("http://app.example.com/logout", development)

    registry = CollectorRegistry()
    deliveries = BackchannelDeliveries(production, registry, DeliveryPolicy())
    async with logout_receiver() as receiver:
        await deliveries.start()
        deliveries.send(LogoutNotice("client", receiver.url, "token"))
        await deliveries.stop()
        assert receiver.hits == []
    outcome = {"outcome": NOT_ALLOWED}
    assert registry.get_sample_value("tessera_backchannel_logouts_total", outcome) == 1
