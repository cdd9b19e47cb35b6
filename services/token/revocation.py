"""``POST /revoke``: token revocation (RFC 7009).

Revoking either token of a grant revokes the grant's whole family, the access token and
the refresh token together, as webMethods Integration Server does (RFC 7009 §2.1 lets a
server do so). A client may revoke only its own tokens. Another client's token gets the
same 200 and no effect as an unknown one: RFC 7009 §2.1 asks for an error there, which
would confirm the value is a live token, so Tessera differs on purpose (README).
"""

from __future__ import annotations

import logging

from aiohttp import web

from shared.domain.oauth_errors import invalid_request
from shared.storage import families, tokens
from shared.web.app_keys import TESSERA
from shared.web.base_app import NO_STORE
from shared.web.client_auth import authenticate_client
from shared.web.forms import read_form
from shared.web.logs import security_event

log = logging.getLogger("tessera.token")


async def revoke(request: web.Request) -> web.Response:
    tessera = request.app[TESSERA]
    params = await read_form(request)
    client = await authenticate_client(request, params)
    token = params.get("token")
    if token is None:
        raise invalid_request("The token parameter is required.")
    # token_type_hint (RFC 7009 §2.1) only says where to look first; both kinds are
    # looked up whatever it says, so it never changes the outcome.
    record = await tokens.find_any(tessera, token)
    if record is None:
        log.info("revocation by client %s: token unknown, expired or revoked", client.client_id)
    elif record.client_id != client.client_id:
        security_event(
            "revocation_refused", client_id=client.client_id, token_client_id=record.client_id
        )
    else:
        await families.revoke_grant(tessera.redis, record.grant)
        log.info("client %s revoked grant family %s", client.client_id, record.family)
    return web.Response(status=200, headers=NO_STORE)
