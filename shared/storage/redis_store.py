"""The Redis clients of Tessera: the auto-pipelined one of ``shared.storage.redis_access``
for request paths (opened and closed with a service, ``shared.web.base_app``), and
redis-py's (here ``connect``) for pub/sub, the CLI, the tests and administration.

``REDIS_URL`` names one server, a master behind Redis Sentinel, or a Redis Cluster (the
forms are in ``shared.config.redis_urls``). Tessera's code runs unchanged on all three: the keys
one operation touches together share a hash tag, so on a Cluster they share a slot.
"""

from __future__ import annotations

from typing import Any, TypeAlias, cast

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel

from shared.config import redis_urls
from shared.config.redis_urls import RedisTarget
from shared.storage import redis_access

# What every Redis client of Tessera is: the auto-pipelined client of the services'
# request paths, or redis-py's for a single server, a Sentinel master or a Redis Cluster.
# They share redis-py's command API.
RedisClient: TypeAlias = redis_access.Client | Redis | RedisCluster
# redis-py's clients (``connect``): what pub/sub, the CLI, administration and the tests
# use, with the server commands (CONFIG, INFO) the request-path client has no need of.
AdminClient: TypeAlias = Redis | RedisCluster

# Timeouts, so that a Redis that hangs fails requests (and /readyz) instead of holding
# them forever; options in the URL take precedence.
TIMEOUTS: dict[str, Any] = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "health_check_interval": 30,
}


class SentinelMaster(Redis):
    """The client of a Sentinel-monitored master. Closing it also closes the connections
    to the sentinels, which the master's own connection pool does not own."""

    # Not "sentinel": that is the client's method for the SENTINEL command.
    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


def connect(url: str) -> AdminClient:
    """A redis-py client for ``url`` (pub/sub, the CLI, administration, the tests). It
    connects on first use, so this never blocks or fails on an unreachable Redis;
    ValueError when the URL is malformed."""
    target = redis_urls.parse(url)
    if target.kind == "sentinel":
        return _sentinel_master(target)
    if target.kind == "cluster":
        return _cluster(target)
    return Redis.from_url(url, decode_responses=True, **TIMEOUTS)


def _cluster(target: RedisTarget) -> RedisCluster:
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=True,
        **{**TIMEOUTS, **target.options},
    )


def _sentinel_master(target: RedisTarget) -> SentinelMaster:
    options = {**TIMEOUTS, **target.options}
    sentinel = Sentinel(
        list(target.nodes), sentinel_kwargs=redis_urls.sentinel_kwargs(target, options)
    )
    master = sentinel.master_for(
        target.service_name,
        redis_class=SentinelMaster,
        db=target.db,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=True,
        **options,
    )
    master.sentinel_manager = sentinel
    return cast(SentinelMaster, master)
