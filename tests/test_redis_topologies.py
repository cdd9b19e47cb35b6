"""The three services on a Redis Cluster and on a Sentinel-monitored Redis: the
authorization code flow, introspection, and a replayed code revoking its grant family
(RFC 6749 §4.1.2), with the same code as on one server."""

from __future__ import annotations

import asyncio
from binascii import crc_hqx
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
import redis as sync_redis
from redis.asyncio import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from devtools.local_processes import (
    ProcessGroup,
    ensure_signing_key,
    free_port,
    start_redis,
)
from shared.storage import clients, families, keys, scopes, users
from shared.storage.redis_store import AdminClient, SentinelMaster, connect
from shared.web.client_cache import ClientCache
from shared.web.client_changes import ClientChanges
from tests.assertions import assert_error
from tests.flows import exchange, introspect, new_verifier, obtain_code, origin_allowed, s256
from tests.records import PASSWORD, Setup, make_client, make_resource_server, make_setup, unique
from tests.redis_topologies import SENTINEL_SERVICE, start_cluster, start_sentinel
from tests.stack import TEST_PASSWORD_HASHING, Stack, start_stack
from tests.waiting import until_origin


@dataclass(frozen=True)
class Topology:
    kind: str
    redis_url: str
    # The ports of the data nodes: the cluster's masters, or the one monitored master.
    data_ports: list[int]
    stack: Stack


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def topology(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    kind: str = request.param
    group = ProcessGroup()
    try:
        data = tmp_path_factory.mktemp(kind)
        if kind == "cluster":
            data_ports = start_cluster(group, data)
            redis_url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in data_ports)
        else:
            data_ports = [free_port()]
            start_redis(group, data_ports[0], data / "master", persistent=False)
            sentinel_port = start_sentinel(group, data / "sentinel", data_ports[0])
            redis_url = f"redis+sentinel://127.0.0.1:{sentinel_port}/{SENTINEL_SERVICE}/0"
        yield Topology(
            kind,
            redis_url,
            data_ports,
            start_stack(group, redis_url, ensure_signing_key(data / "keys"), log_prefix=f"{kind}-"),
        )
    finally:
        group.stop()


@pytest.fixture
async def store(topology: Topology) -> AsyncIterator[AdminClient]:
    client = connect(topology.redis_url)
    yield client
    await client.aclose()


def keys_per_data_node(topology: Topology) -> list[int]:
    counts = []
    for port in topology.data_ports:
        with sync_redis.Redis(port=port) as node:
            counts.append(node.dbsize())
    return counts


async def test_the_client_is_the_topologys(topology: Topology, store: AdminClient) -> None:
    if topology.kind == "cluster":
        assert isinstance(store, RedisCluster)
        assert await store.ping()  # the client learns the cluster's layout on first use
        masters = {(node.host, node.port) for node in store.get_primaries()}
        assert masters == {("127.0.0.1", port) for port in topology.data_ports}
    else:
        assert isinstance(store, SentinelMaster)
        assert await store.ping()
        pool = store.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        master = await (
            pool.get_master_address()  # type: ignore[no-untyped-call]  # unannotated in redis-py
        )
        assert master == ("127.0.0.1", topology.data_ports[0])


async def test_code_flow_introspection_and_replay(
    topology: Topology, store: AdminClient, http: aiohttp.ClientSession
) -> None:
    stack = topology.stack
    setup = await make_setup(store, client_type="public")
    api = await make_resource_server(store, [setup.scope])
    verifier = new_verifier()

    code = await obtain_code(
        http, stack, setup, code_challenge=s256(verifier), code_challenge_method="S256"
    )
    issued = await exchange(http, stack, setup.client, code, auth="none", code_verifier=verifier)
    assert issued.status == 200, issued.body
    token = issued.body["access_token"]
    info = await introspect(http, stack, api, token)
    assert info.status == 200
    assert info.body["active"] is True
    assert info.body["client_id"] == setup.client.client_id
    assert info.body["username"] == setup.user
    assert info.body["scope"] == setup.scope

    # The replay runs the family revocation script, which deletes keys it reads from the
    # family's member set: on a cluster that works only because they share one slot.
    replay = await exchange(http, stack, setup.client, code, auth="none", code_verifier=verifier)
    assert_error(replay, 400, "invalid_grant")
    revoked = await introspect(http, stack, api, token)
    assert revoked.body == {"active": False}

    family = families.family_of(token)
    assert family is not None
    assert await store.exists(keys.family_revoked(family)) == 1
    if topology.kind == "cluster":
        # The flow's keys (clients, scopes, users, sessions, the family) spread over the
        # masters, so the test crossed slots and nodes, as production does.
        assert sum(1 for count in keys_per_data_node(topology) if count) >= 2


async def test_cross_slot_reads_and_metadata(
    topology: Topology, store: AdminClient, http: aiohttp.ClientSession
) -> None:
    """Listing clients and reading scopes pipeline GETs of keys in many slots; a cluster
    pipeline splits them by node."""
    setup = await make_setup(store)
    other = await make_setup(store)

    listed = {client.client_id for client in await clients.list_all(store)}

    assert {setup.client.client_id, other.client.client_id} <= listed
    metadata_url = f"{topology.stack.authorize}/.well-known/oauth-authorization-server"
    async with http.get(metadata_url) as r:
        assert r.status == 200
        assert {setup.scope, other.scope} <= set((await r.json())["scopes_supported"])


async def test_a_client_change_reaches_the_services_caches(
    topology: Topology, store: AdminClient, http: aiohttp.ClientSession
) -> None:
    """The services keep clients in memory and forget one when its change is published
    (shared/web/client_cache.py); on a cluster the message crosses nodes."""
    setup = await make_setup(store)
    api = await make_resource_server(store, [setup.scope])
    assert (await introspect(http, topology.stack, api, "unknown")).status == 200  # cached
    await clients.set_enabled(store, api.client_id, False)
    # The change is announced, and heard a few milliseconds later: the next requests.
    for _ in range(250):
        refused = await introspect(http, topology.stack, api, "unknown")
        if refused.status != 200:
            break
        await asyncio.sleep(0.02)
    assert_error(refused, 401, "invalid_client")


async def test_browser_origins_follow_client_changes_on_the_topology(
    topology: Topology, store: AdminClient, http: aiohttp.ClientSession
) -> None:
    """The token and authorize services read every client when they start listening (a
    pipeline across slots on a cluster), then each one whose change is announced."""
    origin = f"https://{unique('spa')}.example.com"
    setup = await make_setup(store, client_type="public", redirect_uris=[f"{origin}/callback"])
    await until_origin(http, topology.stack, origin, allowed=True)

    # The subscriptions dropped: no origin until the services listen again and read all.
    for port in topology.data_ports:
        with sync_redis.Redis(port=port) as node:
            node.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await until_origin(http, topology.stack, origin, allowed=False)
    await until_origin(http, topology.stack, origin, allowed=True)

    await clients.set_enabled(store, setup.client.client_id, False)
    await until_origin(http, topology.stack, origin, allowed=False)
    assert not await origin_allowed(http, topology.stack, origin)


async def test_the_client_cache_hears_changes_on_the_topology(
    topology: Topology, store: AdminClient
) -> None:
    setup = await make_setup(store)
    cache = ClientCache(store)
    changes = ClientChanges(store, [cache])
    changes.start()
    try:
        for _ in range(100):
            if cache.listening:
                break
            await asyncio.sleep(0.05)
        assert cache.listening
        assert await cache.get(setup.client.client_id) is not None
        assert len(cache) == 1
        await clients.set_enabled(store, setup.client.client_id, False)
        for _ in range(100):
            if len(cache) == 0:
                break
            await asyncio.sleep(0.02)
        assert len(cache) == 0  # the published change reached it
    finally:
        await changes.stop()


async def test_names_holding_a_hash_tag_work_and_choose_no_slot(
    topology: Topology, store: AdminClient, http: aiohttp.ClientSession
) -> None:
    """DESIGN: no caller-chosen string decides a slot. A scope and a username that name a
    live grant family's hash tag (valid names: RFC 6749 §3.3 allows braces in a scope)
    work through a whole code flow, and each key holding one is hashed whole by the
    cluster's own nodes, so none joins the family's slot."""
    first = await make_setup(store)
    code = await obtain_code(http, topology.stack, first)
    issued = await exchange(http, topology.stack, first.client, code)
    family = families.family_of(issued.body["access_token"])
    assert family is not None
    tagged = f"{{g:{family}}}"
    scope, user = f"read{tagged}x", f"alice{tagged}"
    await scopes.add(store, scope, "A scope whose name holds a hash tag")
    await users.add(store, user, PASSWORD, TEST_PASSWORD_HASHING)
    client = await make_client(store, [scope])
    api = await make_resource_server(store, [scope])

    # Another browser, not signed in as the first flow's person.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        code = await obtain_code(browser, topology.stack, Setup(scope, user, client))
    reply = await exchange(http, topology.stack, client, code)
    assert reply.status == 200, reply.body
    info = await introspect(http, topology.stack, api, reply.body["access_token"])
    assert (info.body["active"], info.body["scope"], info.body["username"]) == (True, scope, user)

    named = [keys.scope(scope), keys.user(user), keys.user_families(user), keys.consents(user)]
    for key in named:
        assert await store.exists(key) == 1, key
    if topology.kind == "cluster":
        with sync_redis.Redis(port=topology.data_ports[0]) as node:
            family_slot = node.cluster("KEYSLOT", keys.family_revoked(family))
            for key in named:
                # Spelled as earlier releases did, the key would join the family's slot.
                assert node.cluster("KEYSLOT", key.replace("{}", "", 1)) == family_slot
                assert node.cluster("KEYSLOT", key) == crc_hqx(key.encode(), 0) % 16384
