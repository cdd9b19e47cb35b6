"""An example resource server: a small notes API protected by Tessera's tokens with the
resource-server library, ``tessera_resource_server`` (RFC 6750, RFC 7662, RFC 9068). It
uses the library as any API would, through its public names only, and nothing of
Tessera's server.

- ``GET /notes`` and ``GET /notes/{note_id}`` need ``notes:read``;
- ``POST /notes`` (JSON ``{"text": "..."}``) needs ``notes:write``;
- ``/healthz`` and ``/readyz`` are public.

Scopes say what a client may do; which notes are whose is this API's own rule, the
resource-owner check of webMethods Integration Server: a note belongs to the token's subject, and
another subject's note is "not found" rather than "forbidden", so its existence stays
private. Notes live in memory: this is a demonstration, not a store.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

import orjson
from aiohttp import web
from tessera_resource_server import (
    ACCESS_TOKEN,
    RESOURCE_SERVER,
    AccessToken,
    ResourceServerSettings,
    protect,
    public,
    requires_scope,
)

READ, WRITE = "notes:read", "notes:write"
# The resources each scope covers, as `tessera scope add --resource` takes them: what
# `make run` registers, so that the API may also enforce Tessera's definitions.
SCOPE_RESOURCES = {
    READ: ["GET /notes", "GET /notes/{note_id}"],
    WRITE: ["POST /notes"],
}
MAX_TEXT = 10_000


@dataclass(frozen=True)
class Note:
    id: str
    owner: str
    text: str


NOTES = web.AppKey("notes", dict[str, Note])


def _owner(token: AccessToken) -> str:
    # RFC 9068 §2.2: sub is the resource owner, or the client for client credentials.
    owner = token.sub or token.client_id
    if owner is None:
        raise web.HTTPForbidden(text="the token names no subject")
    return owner


def _json(data: object, status: int = 200) -> web.Response:
    # Per-user data: never cached by a shared cache.
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@requires_scope(READ)
async def list_notes(request: web.Request) -> web.Response:
    token = request[ACCESS_TOKEN]
    owner = _owner(token)
    mine = [asdict(note) for note in request.app[NOTES].values() if note.owner == owner]
    return _json({"owner": token.username or owner, "notes": mine})


@requires_scope(READ)
async def read_note(request: web.Request) -> web.Response:
    note = request.app[NOTES].get(request.match_info["note_id"])
    if note is None or note.owner != _owner(request[ACCESS_TOKEN]):
        raise web.HTTPNotFound(text="no such note")
    return _json(asdict(note))


@requires_scope(WRITE)
async def add_note(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        body = None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        raise web.HTTPBadRequest(text='send {"text": "..."} with 1 to 10000 characters')
    note = Note(secrets.token_hex(8), _owner(request[ACCESS_TOKEN]), text)
    request.app[NOTES][note.id] = note
    return _json(asdict(note), status=201)


@public
async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


@public
async def readyz(request: web.Request) -> web.Response:
    # Not ready until every request can be decided (the scope definitions, if enforced).
    if not request.app[RESOURCE_SERVER].ready:
        return _json({"status": "starting"}, status=503)
    return _json({"status": "ready"})


def create_app(settings: ResourceServerSettings) -> web.Application:
    app = web.Application()
    app[NOTES] = {}
    app.router.add_get("/notes", list_notes)
    app.router.add_get("/notes/{note_id}", read_note)
    app.router.add_post("/notes", add_note)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    protect(app, settings)
    return app
