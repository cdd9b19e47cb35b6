"""``/v1/clients``: registered clients in RFC 7591 §2's names, with Tessera's own fields.

A confidential client's ``token_endpoint_auth_method`` is ``client_secret_basic`` or
``client_secret_post`` (it may use either, RFC 6749 §2.3.1); ``none`` is a public client.
The refresh_token grant is a client's ``refresh_count`` (webMethods Integration Server's
refresh count): ``refresh_token`` among ``grant_types`` exactly when it is above 0, set to
``DEFAULT_REFRESH_COUNT`` when the grant is asked for without a count. A PATCH is a JSON
Merge Patch (RFC 7396) of the writable fields (``null`` sets a field's default), checked
as a new client is. ``client_id`` and ``client_secret`` given on creation import an
existing registration.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.admin import bodies, changes, pagination
from services.admin.problems import invalid
from shared.storage import clients, management, scopes
from shared.storage.clients import Client
from shared.web.app_keys import REDIS, SETTINGS
from shared.web.base_app import json_response

RESOURCE = "client"
DEFAULT_REFRESH_COUNT = 10
AUTH_METHODS = clients.AUTH_METHODS
GRANT_TYPES = clients.REGISTERED_GRANT_TYPES
TOKEN_FORMATS = ("opaque", "jwt")
# What a request may set, and create alone: the registration to import.
WRITABLE = (
    "client_name",
    "client_version",
    "description",
    "logo_uri",
    "token_endpoint_auth_method",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "grant_types",
    "scope",
    "default_scope",
    "refresh_count",
    "access_token_lifetime",
    "access_token_format",
    "require_pkce",
    "remember_consent",
    "introspect",
    "enabled",
    "subject_type",
    "sector_identifier",
)
IMPORTED = ("client_id", "client_secret")


def view(client: Client) -> dict[str, Any]:
    """A client as the API shows it: never a secret or its digest."""
    if client.is_public:
        method = clients.NO_CLIENT_AUTH
    else:
        method = client.token_endpoint_auth_method or clients.SECRET_METHODS[0]
    grants = [*client.grants, *([clients.REFRESH_GRANT] if client.refresh_count > 0 else [])]
    response_types = [
        kind
        for grant, kind in (("authorization_code", "code"), ("implicit", "token"))
        if grant in client.grants
    ]
    formats = {None: None, True: "jwt", False: "opaque"}
    return {
        "client_id": client.client_id,
        "client_name": client.name,
        "client_version": client.version,
        "description": client.description,
        "logo_uri": client.logo_uri,
        "token_endpoint_auth_method": method,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "grant_types": grants,
        "response_types": response_types,
        "scope": " ".join(client.scopes),
        "default_scope": " ".join(client.default_scopes),
        "refresh_count": client.refresh_count,
        "access_token_lifetime": client.access_token_lifetime,
        "access_token_format": formats[client.jwt_access_tokens],
        "require_pkce": client.require_pkce,
        "remember_consent": client.remember_consent,
        "introspect": client.introspect,
        "enabled": client.enabled,
        "subject_type": client.subject_type,
        "sector_identifier": client.sector_identifier,
        "created_at": client.created_at,
        "client_id_issued_at": client.created_at,
        # RFC 7591 §3.2.1: 0, the secret does not expire.
        "client_secret_expires_at": 0,
        "secret_rotated_at": client.secret_rotated_at,
        "previous_secret_expires_at": client.previous_secret_expires_at,
    }


def _settings(fields: bodies.Fields, current: Client | None) -> dict[str, Any]:
    """The storage settings (``clients.SETTABLE``'s names) the request's fields set: all
    of them on creation (``current`` None), those named on a patch."""
    given = fields.body
    found: dict[str, Any] = {}

    def named(name: str) -> bool:
        return current is None or name in given

    if named("client_name"):
        found["name"] = fields.text("client_name")
    if named("client_version"):
        found["version"] = fields.text("client_version")
    if named("description"):
        found["description"] = fields.text("description")
    if named("logo_uri"):
        found["logo_uri"] = fields.text("logo_uri")
    if named("token_endpoint_auth_method"):
        method = fields.choice("token_endpoint_auth_method", AUTH_METHODS, AUTH_METHODS[0])
        found["type"] = "public" if method == clients.NO_CLIENT_AUTH else "confidential"
        found["token_endpoint_auth_method"] = "" if method == clients.NO_CLIENT_AUTH else method
    for name in ("redirect_uris", "post_logout_redirect_uris"):
        if named(name):
            found[name] = fields.texts(name)
    if named("backchannel_logout_uri"):
        found["backchannel_logout_uri"] = fields.text("backchannel_logout_uri")
    if named("scope"):
        found["scopes"] = scopes.parse_scope(fields.text("scope"))
    if named("default_scope"):
        found["default_scopes"] = scopes.parse_scope(fields.text("default_scope"))
    if named("access_token_lifetime"):
        found["access_token_lifetime"] = fields.whole("access_token_lifetime", None)
    if named("access_token_format"):
        raw = fields.body.get("access_token_format")
        if raw is not None and raw not in TOKEN_FORMATS:
            fields.errors.append(
                {"field": "access_token_format", "message": "must be opaque, jwt or null"}
            )
            raw = None
        found["jwt_access_tokens"] = None if raw is None else raw == "jwt"
    if named("require_pkce"):
        found["require_pkce"] = fields.choice(
            "require_pkce", clients.REQUIRE_PKCE_CHOICES, "global"
        )
    for name in ("remember_consent", "introspect"):
        if named(name):
            found[name] = fields.boolean(name, False)
    if named("enabled"):
        found["enabled"] = fields.boolean("enabled", True)
    if named("subject_type"):
        found["subject_type"] = fields.choice("subject_type", clients.SUBJECT_TYPES, "public")
    if named("sector_identifier"):
        found["sector_identifier"] = fields.text("sector_identifier")
    _grants_and_refresh(fields, current, found)
    return found


def _grants_and_refresh(
    fields: bodies.Fields, current: Client | None, found: dict[str, Any]
) -> None:
    """``grant_types`` and ``refresh_count`` agree: the refresh_token grant is a count
    above 0. Named together they must agree; the grant alone sets the count (to
    DEFAULT_REFRESH_COUNT when it had none) or clears it; the count alone decides."""
    given_grants = current is None or "grant_types" in fields
    given_count = "refresh_count" in fields and fields.body["refresh_count"] is not None
    count = fields.whole("refresh_count", 0)
    if not given_grants:
        if given_count:
            found["refresh_count"] = count
        return
    grants = fields.texts("grant_types") if "grant_types" in fields else ["authorization_code"]
    unknown = [grant for grant in grants if grant not in GRANT_TYPES]
    if unknown:
        fields.errors.append({"field": "grant_types", "message": f"unknown: {', '.join(unknown)}"})
    refresh = clients.REFRESH_GRANT in grants
    found["grants"] = [grant for grant in grants if grant != clients.REFRESH_GRANT]
    if given_count:
        if refresh != (count is not None and count > 0):
            fields.errors.append(
                {
                    "field": "refresh_count",
                    "message": "is above 0 exactly when grant_types holds refresh_token",
                }
            )
        found["refresh_count"] = count
    elif refresh:
        kept = current.refresh_count if current is not None else 0
        found["refresh_count"] = kept or DEFAULT_REFRESH_COUNT
    else:
        found["refresh_count"] = 0


def _keep(request: web.Request) -> Any:
    """The filter of ``?client_name&enabled&grant_type&scope`` (exact matches; a scope
    matches the clients allowed it)."""
    query = request.query
    name = query.get("client_name")
    enabled = query.get("enabled")
    if enabled is not None and enabled not in ("true", "false"):
        raise invalid("enabled must be true or false", "enabled")
    grant = query.get("grant_type")
    if grant is not None and grant not in GRANT_TYPES:
        raise invalid(f"grant_type must be one of {', '.join(GRANT_TYPES)}", "grant_type")
    scope = query.get("scope")

    def keep(client: Client) -> bool:
        return (
            (name is None or client.name == name)
            and (enabled is None or client.enabled == (enabled == "true"))
            and (grant is None or client.allows_grant(grant))
            and (scope is None or scope in client.scopes)
        )

    return keep


async def list_clients(request: web.Request) -> web.Response:
    found = await clients.page(
        request.app[REDIS],
        after=pagination.cursor(request),
        limit=pagination.limit(request),
        keep=_keep(request),
    )
    return pagination.page([view(client) for client in found.items], found.last)


async def create_client(request: web.Request) -> web.Response:
    fields = bodies.Fields(await bodies.json_object(request), (*WRITABLE, *IMPORTED))
    settings = _settings(fields, None)
    client_id = fields.text("client_id") if "client_id" in fields else None
    secret = fields.text("client_secret") if "client_secret" in fields else None
    if "client_name" not in fields:
        fields.errors.append({"field": "client_name", "message": "is required"})
    fields.done()
    client, secret = await clients.create(
        request.app[REDIS],
        name=settings.pop("name"),
        client_type=settings.pop("type"),
        redirect_uris=settings.pop("redirect_uris"),
        grants=settings.pop("grants"),
        scope_names=settings.pop("scopes"),
        client_id=client_id,
        secret=secret,
        **settings,
    )
    shown = view(client)
    await changes.record(
        request, action="create", resource=RESOURCE, resource_id=client.client_id, after=shown
    )
    body = {**shown, "client_secret": secret} if secret is not None else shown
    location = f"/v1/clients/{client.client_id}"
    return json_response(body, status=201, headers={"Location": location})


async def show_client(request: web.Request) -> web.Response:
    client = await clients.existing(request.app[REDIS], request.match_info["client_id"])
    return json_response(view(client))


async def update_client(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    client_id = request.match_info["client_id"]
    body = await bodies.json_object(request, media_types=(bodies.MERGE_PATCH, bodies.JSON))
    current = await clients.existing(redis, client_id)
    fields = bodies.Fields(body, WRITABLE, patch=True)
    settings = _settings(fields, current)
    fields.done()
    before, after = await clients.update(redis, client_id, settings)
    await changes.record_update(
        request, resource=RESOURCE, resource_id=client_id, before=view(before), after=view(after)
    )
    return json_response(view(after))


async def delete_client(request: web.Request) -> web.Response:
    redis = request.app[REDIS]
    client_id = request.match_info["client_id"]
    before = await clients.existing(redis, client_id)
    await management.delete_client(redis, client_id)
    await changes.record(
        request, action="delete", resource=RESOURCE, resource_id=client_id, before=view(before)
    )
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    client_id = request.match_info["client_id"]
    fields = bodies.Fields(await bodies.json_object(request), ("overlap_seconds", "client_secret"))
    overlap = fields.whole("overlap_seconds", request.app[SETTINGS].secret_rotation_overlap)
    secret = fields.text("client_secret") if "client_secret" in fields else None
    fields.done()
    assert overlap is not None  # a default is given
    before, after, new_secret = await clients.rotate_secret(
        request.app[REDIS], client_id, overlap=overlap, secret=secret
    )
    await changes.record(
        request,
        action="rotate_secret",
        resource=RESOURCE,
        resource_id=client_id,
        before=view(before),
        after=view(after),
    )
    return json_response(
        {
            "client_id": client_id,
            "client_secret": new_secret,
            "previous_secret_expires_at": after.previous_secret_expires_at,
        }
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/clients", list_clients)
    router.add_post("/v1/clients", create_client)
    router.add_get("/v1/clients/{client_id}", show_client)
    router.add_patch("/v1/clients/{client_id}", update_client)
    router.add_delete("/v1/clients/{client_id}", delete_client)
    router.add_post("/v1/clients/{client_id}/secret", rotate_secret)
