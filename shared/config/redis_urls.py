"""``REDIS_URL``: which Redis topology to use, and how to reach it.

One server (redis-py's own forms, the IANA ``redis`` and ``rediss`` schemes)::

    redis://[[username]:password@]host[:port][/db][?option=value...]
    rediss://...                      (TLS)
    unix://[[username]:password@]/path/to/socket[?db=N]

A master found through Redis Sentinel, in the ``redis+sentinel`` form that
Redis-Sentinel-Url introduced and other clients (Prefect, RedisVL) accept; the port of a
sentinel defaults to 26379::

    redis+sentinel://[[username]:password@]host[:port][,host[:port]...]/service_name[/db][?...]
    rediss+sentinel://...             (TLS to the master and to the sentinels)

A Redis Cluster, from any of its nodes (the port defaults to 6379; Redis Cluster has
database 0 only)::

    redis+cluster://[[username]:password@]host[:port][,host[:port]...][?option=value...]
    rediss+cluster://...              (TLS)

The credentials are the data nodes'. Sentinels that require authentication take the
``sentinel_username`` and ``sentinel_password`` options. Other options are redis-py's
connection options, limited to ``OPTIONS`` for the Sentinel and Cluster forms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from redis.asyncio.connection import parse_url

Kind = Literal["server", "sentinel", "cluster"]

SERVER_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_PORT = 26379
REDIS_PORT = 6379

# Connection options accepted in the query of a Sentinel or Cluster URL; redis-py's URL
# parser turns them into typed keyword arguments.
OPTIONS = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "health_check_interval",
        "max_connections",
        "ssl_ca_certs",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_cert_reqs",
        "ssl_check_hostname",
    }
)
SENTINEL_OPTIONS = frozenset({"sentinel_username", "sentinel_password"})


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed ``REDIS_URL``. For ``server`` only ``url`` matters: redis-py reads it."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sentinel_username: str | None = None
    sentinel_password: str | None = None


def parse(url: str) -> RedisTarget:
    """Parse and check a ``REDIS_URL``; ValueError says what is wrong (without the
    password)."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("not a URL; expected redis://host:port/db or a form in the README")
    if scheme in SERVER_SCHEMES:
        parse_url(url)  # redis-py's own checks, so a bad value fails at start
        return RedisTarget("server", url)
    if scheme in SENTINEL_SCHEMES:
        return _parse_topology("sentinel", url, SENTINEL_PORT)
    if scheme in CLUSTER_SCHEMES:
        return _parse_topology("cluster", url, REDIS_PORT)
    known = ", ".join(f"{s}://" for s in SERVER_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES)
    raise ValueError(f"unknown scheme {scheme}://; expected one of {known}")


def sentinel_kwargs(target: RedisTarget, options: dict[str, Any]) -> dict[str, Any]:
    """The sentinels' connection options: the same timeouts and TLS settings as the data
    nodes' (``options``), and credentials of their own."""
    kwargs = {
        name: value
        for name, value in options.items()
        if name.startswith(("socket_", "ssl_")) or name == "health_check_interval"
    }
    return kwargs | {
        "ssl": target.tls,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
    }


def _parse_topology(kind: Kind, url: str, default_port: int) -> RedisTarget:
    parts = urlsplit(url)
    if parts.fragment:
        raise ValueError("must not have a fragment")
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    nodes = tuple(_node(item, default_port) for item in hostlist.split(","))
    service_name, db = _path(kind, parts.path)
    options = _options(parts.query, SENTINEL_OPTIONS if kind == "sentinel" else frozenset())
    return RedisTarget(
        kind=kind,
        url=url,
        nodes=nodes,
        service_name=service_name,
        db=db,
        tls=parts.scheme.lower().startswith("rediss+"),
        username=username,
        password=password,
        sentinel_username=options.pop("sentinel_username", None),
        sentinel_password=options.pop("sentinel_password", None),
        options=options,
    )


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    username, colon, password = userinfo.partition(":")
    return (unquote(username) or None, (unquote(password) or None) if colon else None)


def _node(item: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad host {item!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError("every node needs a host (host:port, comma-separated)")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {item!r}")
    return host, int(port_text)


def _path(kind: Kind, path: str) -> tuple[str, int]:
    segments = [unquote(s) for s in path.split("/") if s]
    if kind == "sentinel":
        if not segments or len(segments) > 2:
            raise ValueError("the path must be /service_name or /service_name/db")
        return segments[0], _db(segments[1]) if len(segments) == 2 else 0
    if len(segments) > 1 or (segments and _db(segments[0]) != 0):
        raise ValueError("Redis Cluster has database 0 only; leave the path empty")
    return "", 0


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"database {text!r} is not a number")
    return int(text)


def _options(query: str, extra: frozenset[str]) -> dict[str, Any]:
    if not query:
        return {}
    # redis-py's parser casts the values (timeouts to float, flags to bool).
    parsed: dict[str, Any] = dict(parse_url(f"redis://localhost?{query}"))
    parsed.pop("host", None)
    unknown = sorted(set(parsed) - OPTIONS - extra)
    if unknown:
        raise ValueError(f"unsupported option(s) {', '.join(unknown)}")
    return parsed
