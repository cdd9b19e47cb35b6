"""Who is asking: the client's network address, as rate limits and logs see it.

Directly connected, it is the peer. Behind the proxies of TESSERA_TRUSTED_PROXIES (a
TLS-terminating ingress) the peer is the proxy, and the client's address is in
``X-Forwarded-For``, to which each proxy appends the address it received the request
from. Only the entries our trusted proxies appended are believed: the header is read from
the right, skipping trusted proxies, and the first other address is the client (anything
further left the client could have written itself).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from shared.config.settings import Settings

# An IPv6 client commonly holds a whole /64 (RFC 6177 assigns end sites at least that),
# so limits count the /64: one address each would let a single host walk around them.
_IPV6_LIMIT_PREFIX = 64


def is_trusted_proxy(settings: Settings, address: str | None) -> bool:
    if not address or not settings.trusted_proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_proxies)


def _address_of(entry: str) -> str | None:
    """The address in one X-Forwarded-For entry: ``203.0.113.5``, or with the port some
    proxies add, ``203.0.113.5:4711`` and ``[2001:db8::5]:4711``; None for anything else."""
    entry = entry.strip()
    if entry.startswith("["):
        entry = entry[1:].partition("]")[0]
    elif entry.count(":") == 1:
        entry = entry.partition(":")[0]
    try:
        return str(ipaddress.ip_address(entry))
    except ValueError:
        return None


def client_address(request: web.Request, settings: Settings) -> str:
    """The address of the client that sent ``request`` ("unknown" when there is none,
    as for a Unix socket)."""
    address = request.remote or "unknown"
    if not is_trusted_proxy(settings, address):
        return address
    # Several header lines are one comma-separated list (RFC 9110 §5.3).
    hops = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
    for entry in reversed(hops):
        hop = _address_of(entry)
        if hop is None:
            # Not an address a proxy of ours wrote: the last believable one stands.
            return address
        if not is_trusted_proxy(settings, hop):
            return hop
        address = hop
    return address


def limit_subject(request: web.Request, settings: Settings) -> str:
    """The client's address as rate limits count it: IPv4 whole, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(client_address(request, settings))
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{_IPV6_LIMIT_PREFIX}", strict=False))
    return str(ip)
