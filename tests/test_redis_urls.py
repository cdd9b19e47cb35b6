"""The REDIS_URL forms: one server, a Sentinel master, a Redis Cluster; and the messages
for bad ones, which never repeat the password."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster

from shared.config.redis_urls import parse
from shared.config.settings import Settings, SettingsError
from shared.storage.redis_store import SentinelMaster, connect


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://user:pw@redis.example.com:6380/2?ssl_cert_reqs=required",
        "unix:///run/redis.sock?db=1",
    ],
)
def test_one_server_urls_are_redis_pys(url: str) -> None:
    target = parse(url)
    assert target.kind == "server"
    assert target.url == url


def test_a_sentinel_url() -> None:
    target = parse(
        "redis+sentinel://:p%40ss@s1.example.com,s2.example.com:26380,[fd00::3]:26381"
        "/mymaster/3?socket_timeout=1.5&sentinel_password=sp"
    )
    assert target.kind == "sentinel"
    assert target.nodes == (
        ("s1.example.com", 26379),  # Sentinel's default port
        ("s2.example.com", 26380),
        ("fd00::3", 26381),
    )
    assert target.service_name == "mymaster"
    assert target.db == 3
    assert target.username is None
    assert target.password == "p@ss"
    assert target.sentinel_password == "sp"
    assert target.options == {"socket_timeout": 1.5}
    assert target.tls is False


def test_a_cluster_url_over_tls() -> None:
    target = parse(
        "rediss+cluster://tessera:secret@node-0.redis:7000,node-1.redis"
        "?ssl_ca_certs=/etc/redis-ca/ca.crt"
    )
    assert target.kind == "cluster"
    assert target.tls is True
    assert target.nodes == (("node-0.redis", 7000), ("node-1.redis", 6379))
    assert (target.username, target.password) == ("tessera", "secret")
    assert target.options == {"ssl_ca_certs": "/etc/redis-ca/ca.crt"}


async def test_connect_builds_the_client_of_each_form() -> None:
    # Nothing connects before the first command, so no server is needed here.
    single = connect("redis://127.0.0.1:1/0")
    sentinel = connect("redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster")
    cluster = connect("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    try:
        assert type(single) is Redis
        assert isinstance(sentinel, SentinelMaster)
        assert sentinel.sentinel_manager is not None
        sentinels = sentinel.sentinel_manager.sentinels
        ports = [s.connection_pool.connection_kwargs["port"] for s in sentinels]
        assert ports == [1, 2]
        assert isinstance(cluster, RedisCluster)
        assert set(cluster.nodes_manager.startup_nodes) == {"127.0.0.1:1", "127.0.0.1:2"}
    finally:
        for client in (single, sentinel, cluster):
            await client.aclose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:6379", "not a URL"),
        ("http://127.0.0.1:6379", "unknown scheme http://"),
        ("redis+sentinel://:hunter2@s1:26379", "/service_name"),
        ("redis+sentinel://:hunter2@s1:26379/mymaster/zero", "database 'zero'"),
        ("redis+sentinel://:hunter2@s1:26379,:26380/mymaster", "every node needs a host"),
        ("redis+cluster://:hunter2@n1:7000/1", "database 0 only"),
        ("redis+cluster://:hunter2@n1:70000", "bad port"),
        ("redis+cluster://:hunter2@n1:7000?sentinel_password=x", "sentinel_password"),
        ("redis+cluster://:hunter2@n1:7000?db=2", "unsupported option(s) db"),
        ("redis+cluster://:hunter2@n1?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_a_bad_url_stops_the_service_with_a_message_without_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TESSERA_ISSUER": "https://id.example.com", "REDIS_URL": url})
    text = str(raised.value)
    assert text.startswith("REDIS_URL: ")
    assert message in text
    assert "hunter2" not in text
