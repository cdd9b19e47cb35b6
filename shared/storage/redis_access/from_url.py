"""A client for a ``REDIS_URL`` (the forms of ``shared.config.redis_urls``): one server, a
Sentinel-monitored master, or a Redis Cluster."""

from __future__ import annotations

import ssl
from typing import Any

from redis import exceptions
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel

from shared.config import redis_urls
from shared.storage.redis_access.cluster import ClusterRouter
from shared.storage.redis_access.commands import Client
from shared.storage.redis_access.connection import Address
from shared.storage.redis_access.node import Node, Options, Outages
from shared.storage.redis_access.server import ServerRouter

DEFAULT_PORT = 6379


def connect(
    url: str,
    *,
    timeout: float = 0.5,
    max_in_flight: int = 1024,
    outages: Outages | None = None,
) -> Client:
    """A client for ``url``; it connects on first use, so this does no I/O. ``timeout``
    bounds connecting and every reply (the URL's socket timeouts are redis-py's, for
    the administration and pub/sub clients)."""
    target = redis_urls.parse(url)
    if target.kind == "server":
        fields: dict[str, Any] = dict(parse_url(url))
        options = Options(
            username=fields.get("username"),
            password=fields.get("password"),
            db=int(fields.get("db", 0)),
            ssl_context=_ssl_context(fields)
            if fields.get("connection_class") is SSLConnection
            else None,
            timeout=timeout,
            max_in_flight=max_in_flight,
        )
        address = (
            Address(path=fields["path"])
            if "path" in fields
            else Address(fields.get("host", "localhost"), int(fields.get("port", DEFAULT_PORT)))
        )
        return Client(ServerRouter(Node.at(address, options, outages)))
    options = Options(
        username=target.username,
        password=target.password,
        db=target.db,
        ssl_context=_ssl_context(target.options) if target.tls else None,
        timeout=timeout,
        max_in_flight=max_in_flight,
        require_master=target.kind == "sentinel",
    )
    if target.kind == "cluster":
        startup = [Address(host, port) for host, port in target.nodes]
        return Client(ClusterRouter(startup, options, outages))
    sentinel = Sentinel(
        list(target.nodes),
        sentinel_kwargs=redis_urls.sentinel_kwargs(
            target, {"socket_timeout": timeout, "socket_connect_timeout": timeout, **target.options}
        ),
    )
    return Client(SentinelRouter(sentinel, target.service_name, options, outages))


class SentinelRouter(ServerRouter):
    """The master that the sentinels name, asked anew at every (re)connection."""

    def __init__(
        self, sentinel: Sentinel, service_name: str, options: Options, outages: Outages | None
    ) -> None:
        self._sentinel = sentinel

        async def locate() -> Address:
            try:
                host, port = await sentinel.discover_master(service_name)
            except exceptions.RedisError as exc:
                raise exceptions.ConnectionError(f"no master for {service_name!r}: {exc}") from None
            return Address(host, int(port))

        super().__init__(Node(locate, options, outages))

    async def aclose(self) -> None:
        await super().aclose()
        for client in self._sentinel.sentinels:
            await client.aclose()


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """TLS as redis-py sets it up from the same options (``ssl_ca_certs``,
    ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``, ``ssl_check_hostname``):
    certificates verified unless ``ssl_cert_reqs=none``."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    requirement = str(options.get("ssl_cert_reqs", "required")).lower()
    if requirement == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = bool(options.get("ssl_check_hostname", True))
        if requirement == "optional":
            context.verify_mode = ssl.CERT_OPTIONAL
    return context
