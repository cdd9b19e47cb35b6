"""The framework's floor, measured beside Tessera in the same run: an aiohttp application
that reads the form and answers a small JSON object (with orjson, as Tessera does), doing
nothing else (``/nothing``), or one Redis GET through redis-py (``/one-get``) or through
Tessera's own pipelining Redis layer (``/one-get-pipelined``), on the same event loop
(uvloop) and with the same Redis client settings as the services. The gap between these
and Tessera's figures is what Tessera's own work costs; the gap between the two GETs is
what the layer saves.

Run as ``python -m bench.floor --port P`` with ``REDIS_URL`` set.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator

import uvloop
from aiohttp import web
from redis.asyncio import Redis, RedisCluster

from shared.storage import redis_access
from shared.storage.redis_store import connect
from shared.web.base_app import json_response

KEY = "tessera:bench:floor"  # never set: each GET answers nil, as a miss does
REDIS: web.AppKey[Redis | RedisCluster] = web.AppKey("redis")
PIPELINED: web.AppKey[redis_access.Client] = web.AppKey("pipelined")


async def nothing(request: web.Request) -> web.Response:
    await request.post()
    return json_response({"active": True})


async def one_get(request: web.Request) -> web.Response:
    await request.post()
    await request.app[REDIS].get(KEY)
    return json_response({"active": True})


async def one_get_pipelined(request: web.Request) -> web.Response:
    await request.post()
    await request.app[PIPELINED].get(KEY)
    return json_response({"active": True})


async def ready(_request: web.Request) -> web.Response:
    return json_response({"status": "ready"})


def create_app(redis_url: str) -> web.Application:
    async def redis_context(app: web.Application) -> AsyncIterator[None]:
        app[REDIS] = connect(redis_url)
        app[PIPELINED] = redis_access.connect(redis_url)
        yield
        await app[REDIS].aclose()
        await app[PIPELINED].aclose()

    app = web.Application()
    app.cleanup_ctx.append(redis_context)
    app.router.add_post("/nothing", nothing)
    app.router.add_post("/one-get", one_get)
    app.router.add_post("/one-get-pipelined", one_get_pipelined)
    app.router.add_get("/readyz", ready)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(
        create_app(os.environ["REDIS_URL"]),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
