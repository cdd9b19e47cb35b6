"""``GET /jwks.json``: the public keys of JWT access tokens (RFC 7517 §5, RFC 9068 §4).

Every key in TESSERA_SIGNING_KEYS is published, the one signing now and those that
signed tokens still alive, so resource servers can verify tokens across a key rotation.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from shared.web.app_keys import SIGNING_KEYS
from shared.web.cors import vary_on_origin

# Short enough that a resource server sees a new key soon after it is added; resource
# servers should also refetch on a kid they do not know.
CACHE_SECONDS = 300


async def jwks(request: web.Request) -> web.Response:
    key_set = request.app[SIGNING_KEYS]
    body = key_set.jwks() if key_set is not None else {"keys": []}
    return web.Response(
        body=orjson.dumps(body),
        content_type="application/json",
        headers=vary_on_origin({"Cache-Control": f"public, max-age={CACHE_SECONDS}"}),
    )
