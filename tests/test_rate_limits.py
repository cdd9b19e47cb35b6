"""The rate-limit counter (shared/storage/rate_limits.py) against a real Redis, and the client
address it counts by (shared/web/client_address.py)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from redis.asyncio import Redis

from shared.domain.rates import OFF, Rate
from shared.storage import keys, rate_limits, redis_access
from shared.web.client_address import client_address, limit_subject
from shared.web.recent_refusals import RecentRefusals
from tests.records import unique
from tests.stack import Stack, production_settings


async def test_a_window_lets_count_events_pass_then_refuses_until_it_ends(redis: Redis) -> None:
    subject, rate = unique("subject"), Rate(3, 60)
    passed = [await rate_limits.hit(redis, "test", rate, subject) for _ in range(3)]
    refused = await rate_limits.hit(redis, "test", rate, subject)
    assert passed == [None, None, None]
    assert refused is not None and 1 <= refused <= 60
    # The window belongs to this subject alone, and lives no longer than the window.
    assert await rate_limits.hit(redis, "test", rate, unique("other")) is None
    assert 0 < await redis.pttl(keys.rate_counter("test", subject)) <= 60_000


async def test_exhausted_reads_without_counting(redis: Redis) -> None:
    subject, rate = unique("subject"), Rate(2, 60)
    for _ in range(5):
        assert await rate_limits.exhausted(redis, "test", rate, subject) is None
    await rate_limits.hit(redis, "test", rate, subject)
    await rate_limits.hit(redis, "test", rate, subject)
    assert await rate_limits.exhausted(redis, "test", rate, subject) is None
    await rate_limits.hit(redis, "test", rate, subject)
    assert await rate_limits.exhausted(redis, "test", rate, subject) is not None


async def test_the_services_redis_client_counts_reads_and_gives_back_alike(
    stack: Stack, redis: Redis
) -> None:
    """Through the request path's auto-pipelined client (shared.storage.redis_access), as the
    services count, not only redis-py."""
    client = redis_access.connect(stack.redis_url)
    try:
        subject, rate = unique("subject"), Rate(1, 60)
        assert await rate_limits.hit(client, "test", rate, subject) is None
        assert await rate_limits.exhausted(client, "test", rate, subject) is None
        assert await rate_limits.hit(client, "test", rate, subject) is not None
        assert await rate_limits.exhausted(client, "test", rate, subject) is not None
        # A success given back: one fewer in the same window.
        await rate_limits.give_back(client, "test", subject)
        assert await rate_limits.exhausted(client, "test", rate, subject) is None
        assert 0 < await redis.pttl(keys.rate_counter("test", subject)) <= 60_000
    finally:
        await client.aclose()


async def test_nothing_is_given_back_to_an_ended_window(redis: Redis) -> None:
    subject = unique("subject")
    await rate_limits.give_back(redis, "test", subject)
    # No counter of -1 without a TTL, which would stay for ever.
    assert await redis.exists(keys.rate_counter("test", subject)) == 0


async def test_an_ended_window_starts_afresh(redis: Redis) -> None:
    subject, rate = unique("subject"), Rate(1, 1)
    await rate_limits.hit(redis, "test", rate, subject)
    assert await rate_limits.hit(redis, "test", rate, subject) == 1
    await redis.delete(keys.rate_counter("test", subject))  # what the window's end does
    assert await rate_limits.hit(redis, "test", rate, subject) is None


async def test_an_off_limit_stores_nothing(redis: Redis) -> None:
    subject = unique("subject")
    for _ in range(3):
        assert await rate_limits.hit(redis, "test", OFF, subject) is None
    assert await redis.exists(keys.rate_counter("test", subject)) == 0


def test_recent_refusals_end_and_stay_bounded() -> None:
    refusals = RecentRefusals(capacity=3)
    refusals.refuse("a", 60)
    assert refusals.refused("a") is not None
    assert refusals.refused("b") is None
    for subject in "bcde":
        refusals.refuse(subject, 60)
    assert refusals.refused("a") is None and refusals.refused("b") is None  # oldest dropped
    assert all(refusals.refused(subject) for subject in "cde")
    refusals.refuse("gone", 0)
    assert refusals.refused("gone") is None
    assert refusals.any_held()


def test_recent_refusals_forget_all_once_the_last_ended() -> None:
    refusals = RecentRefusals()
    assert not refusals.any_held()
    refusals.refuse("a", 0)
    assert not refusals.any_held()


def _request(remote: str, forwarded: list[str] | None = None) -> web.Request:
    headers = [("X-Forwarded-For", value) for value in forwarded or []]
    return make_mocked_request("GET", "/", headers=headers, transport=_Transport(remote))


class _Transport:
    def __init__(self, remote: str) -> None:
        self.remote = remote

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.remote, 1234) if name == "peername" else default


def test_a_direct_client_is_its_peer_whatever_it_forwards() -> None:
    settings = production_settings("redis://127.0.0.1:1/0", TESSERA_TRUSTED_PROXIES="10.0.0.0/8")
    assert client_address(_request("203.0.113.7", ["198.51.100.1"]), settings) == "203.0.113.7"


def test_behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    settings = production_settings("redis://127.0.0.1:1/0", TESSERA_TRUSTED_PROXIES="10.0.0.0/8")
    # The client wrote "1.2.3.4" itself; the ingress appended the address it saw.
    request = _request("10.0.0.2", ["1.2.3.4, 198.51.100.9", "10.0.0.1"])
    assert client_address(request, settings) == "198.51.100.9"
    # A hop that is no address stops the walk at the last believable one.
    assert client_address(_request("10.0.0.2", ["1.2.3.4, junk"]), settings) == "10.0.0.2"
    assert client_address(_request("10.0.0.2"), settings) == "10.0.0.2"


def test_a_port_a_proxy_adds_to_the_address_is_no_other_address() -> None:
    settings = production_settings("redis://127.0.0.1:1/0", TESSERA_TRUSTED_PROXIES="10.0.0.0/8")
    # Some ingresses (Azure Application Gateway, IIS ARR) write the client's port too.
    assert client_address(_request("10.0.0.2", ["203.0.113.5:4711"]), settings) == "203.0.113.5"
    v6 = client_address(_request("10.0.0.2", ["[2001:db8::5]:4711"]), settings)
    assert v6 == "2001:db8::5"
    assert client_address(_request("10.0.0.2", ["2001:db8::6"]), settings) == "2001:db8::6"
    assert client_address(_request("10.0.0.2", ["[junk]:1"]), settings) == "10.0.0.2"


def test_limits_count_an_ipv6_client_by_its_64() -> None:
    settings = production_settings("redis://127.0.0.1:1/0", TESSERA_TRUSTED_PROXIES="10.0.0.0/8")
    one = limit_subject(_request("2001:db8:1:2::1"), settings)
    other = limit_subject(_request("2001:db8:1:2:ffff::9"), settings)
    assert one == other == "2001:db8:1:2::/64"
    assert limit_subject(_request("::ffff:192.0.2.1"), settings) == "192.0.2.1"
    assert limit_subject(_request("192.0.2.1"), settings) == "192.0.2.1"
