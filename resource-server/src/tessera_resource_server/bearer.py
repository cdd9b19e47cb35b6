"""Reading the bearer token of a request (RFC 6750 §2).

Only the Authorization header (§2.1) is read. A token in the query (§2.3) would end up
in access logs and browser history (§5.3), so it is refused, as is a request that sends
a token by more than one method (§2: "Clients MUST NOT use more than one method") or
sends two Authorization headers. The form-body method (§2.2) is not read: the
middleware does not consume request bodies.
"""

from __future__ import annotations

import re

from aiohttp import hdrs, web

from tessera_resource_server.challenges import bearer_invalid_request

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
QUERY_PARAMETER = "access_token"  # RFC 6750 §2.3


def bearer_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, None when the request carries no
    bearer credentials, or BearerError ``invalid_request`` (400) when it is malformed."""
    headers = request.headers.getall(hdrs.AUTHORIZATION, [])
    in_query = QUERY_PARAMETER in request.rel_url.query
    if len(headers) > 1:
        raise bearer_invalid_request("two Authorization headers")
    if in_query:
        if headers:
            raise bearer_invalid_request("a token in both the header and the query (RFC 6750 §2)")
        raise bearer_invalid_request("a token in the query (RFC 6750 §2.3 is not supported)")
    if not headers:
        return None
    scheme, _, credentials = headers[0].strip().partition(" ")
    # RFC 7235 §2.1: the scheme is case-insensitive. Another scheme (Basic, say) is no
    # bearer credential at all: RFC 6750 §3.1 then asks for a challenge without error.
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip()
    if _B64TOKEN.fullmatch(token) is None:
        # Never the value in the cause: it goes to the log.
        raise bearer_invalid_request("the Bearer credentials are not a b64token (RFC 6750 §2.1)")
    return token
