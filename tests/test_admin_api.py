"""The admin API (services/admin) against the session's stack: its credentials, problem
details, every resource's operations and what they do to sign-ins and tokens, pages and
filters, and the audit trail of every change, which never holds a secret."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from shared.storage import audit
from tests.flows import (
    ADMIN,
    admin_json,
    authorize,
    code_request,
    exchange,
    is_active,
    live_tokens,
    obtain_code,
    sign_in,
    token_request,
)
from tests.metrics_scrape import samples
from tests.metrics_scrape import value as sample_value
from tests.records import (
    PASSWORD,
    REDIRECT_URI,
    Registered,
    make_client,
    make_resource_server,
    make_scope,
    make_setup,
    make_user,
    unique,
)
from tests.replies import Reply, basic_auth, page_message
from tests.secrets_ledger import SECRETS_USED
from tests.stack import ADMIN_TOKEN, Stack

LOGIN_FAILED = "The username or password is incorrect."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def api(
    http: aiohttp.ClientSession, stack: Stack, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    return await admin_json(http, method, f"{stack.admin}{path}", **kwargs)


async def new_client(http: aiohttp.ClientSession, stack: Stack, **fields: Any) -> dict[str, Any]:
    """A client registered through the API; its secret is in the ledger."""
    body = {"client_name": unique("App"), "redirect_uris": [REDIRECT_URI], **fields}
    status, created = await api(http, stack, "POST", "/v1/clients", json=body)
    assert status == 201, created
    if "client_secret" in created:
        SECRETS_USED.add(created["client_secret"])
    return dict(created)


async def _basic_token(
    http: aiohttp.ClientSession, stack: Stack, client_id: str, secret: str, form: dict[str, str]
) -> Reply:
    async with http.post(
        f"{stack.token}/token", data=form, headers=basic_auth(client_id, secret)
    ) as r:
        return Reply(r.status, r.headers, await r.json())


async def audit_events(
    http: aiohttp.ClientSession, stack: Stack, since: float
) -> list[dict[str, Any]]:
    """Every audit event since ``since`` (seconds), through all its pages."""
    found: list[dict[str, Any]] = []
    params = {"since": str(since), "limit": "50"}
    while True:
        status, page = await api(http, stack, "GET", "/v1/audit", params=params)
        assert status == 200, page
        found += page["items"]
        if page["next_cursor"] is None:
            return found
        params = {"cursor": page["next_cursor"], "limit": "50"}


# --- credentials --------------------------------------------------------------------------


async def test_a_request_without_a_valid_credential_is_401_with_a_challenge(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
    ):
        async with http.get(f"{stack.admin}/v1/clients", headers=headers) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="tessera-admin"'
            assert r.headers["Content-Type"] == "application/problem+json"
            body = await r.json()
            assert (body["type"], body["title"], body["status"]) == (
                "about:blank",
                "Unauthorized",
                401,
            )
            assert ADMIN_TOKEN not in await r.text()
    # The description of the API needs none.
    async with http.get(f"{stack.admin}/openapi.json") as r:
        assert r.status == 200
        assert (await r.json())["openapi"] == "3.1.0"


async def test_an_access_token_with_tessera_admin_is_a_credential_and_the_actor(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    since = time.time()
    ops = await make_client(redis, ["tessera:admin"], grants=["client_credentials"])
    assert ops.secret
    reply = await _basic_token(
        http,
        stack,
        ops.client_id,
        ops.secret,
        {"grant_type": "client_credentials", "scope": "tessera:admin"},
    )
    assert reply.status == 200, reply.body
    token = reply.body["access_token"]

    status, scope = await api(
        http, stack, "POST", "/v1/scopes", json={"name": unique("ops")}, headers=bearer(token)
    )

    assert status == 201, scope
    (event,) = [
        e for e in await audit_events(http, stack, since) if e["resource_id"] == scope["name"]
    ]
    assert event["actor"] == f"client:{ops.client_id}"
    # The scope taken from the client, its token administers no more.
    await api(http, stack, "PATCH", f"/v1/clients/{ops.client_id}", json={"scope": ""})
    status, body = await api(http, stack, "GET", "/v1/scopes", headers=bearer(token))
    assert status == 403, body
    # The client disabled, its token is no credential (as introspection would say).
    await api(http, stack, "PATCH", f"/v1/clients/{ops.client_id}", json={"enabled": False})
    status, body = await api(http, stack, "GET", "/v1/scopes", headers=bearer(token))
    assert status == 401, body


async def test_a_token_without_the_scope_is_403_and_an_id_token_401(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    machine = await make_client(redis, [read], grants=["client_credentials"])
    assert machine.secret
    reply = await _basic_token(
        http,
        stack,
        machine.client_id,
        machine.secret,
        {"grant_type": "client_credentials", "scope": read},
    )
    assert reply.status == 200, reply.body

    async with http.get(
        f"{stack.admin}/v1/clients", headers=bearer(reply.body["access_token"])
    ) as r:
        assert r.status == 403
        assert r.headers["Content-Type"] == "application/problem+json"
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
        assert 'scope="tessera:admin"' in r.headers["WWW-Authenticate"]

    # An ID token is no access token (RFC 9068 §4); a person's access token is no
    # admin's (and no client that people sign in to may be allowed tessera:admin).
    user = await make_user(redis)
    client = await make_client(redis, ["openid"])
    back = await authorize(http, stack, code_request(client, "openid"), user)
    tokens = await exchange(http, stack, client, back["code"])
    assert tokens.status == 200, tokens.body
    status, _ = await api(
        http, stack, "GET", "/v1/clients", headers=bearer(tokens.body["id_token"])
    )
    assert status == 401
    status, _ = await api(
        http, stack, "GET", "/v1/clients", headers=bearer(tokens.body["access_token"])
    )
    assert status == 403


# --- problem details ----------------------------------------------------------------------


async def test_every_refusal_is_problem_details(stack: Stack, http: aiohttp.ClientSession) -> None:
    status, body = await api(http, stack, "GET", "/v1/nothing-here")
    assert (status, body["title"], body["type"]) == (404, "Not Found", "about:blank")

    async with http.put(f"{stack.admin}/v1/clients", headers=ADMIN, json={}) as r:
        assert r.status == 405
        assert r.headers["Content-Type"] == "application/problem+json"
        assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}

    async with http.post(
        f"{stack.admin}/v1/scopes", headers={**ADMIN, "Content-Type": "text/plain"}, data="x"
    ) as r:
        assert r.status == 415
        assert (await r.json())["status"] == 415
    async with http.post(
        f"{stack.admin}/v1/scopes",
        headers={**ADMIN, "Content-Type": "application/json", "Content-Encoding": "gzip"},
        data=b"{}",
    ) as r:
        assert r.status == 415

    status, body = await api(
        http,
        stack,
        "POST",
        "/v1/scopes",
        data=b"{not json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert (status, body["detail"]) == (400, "The body is not JSON.")
    status, body = await api(http, stack, "POST", "/v1/scopes", json=[1])
    assert status == 400
    status, body = await api(
        http, stack, "POST", "/v1/clients", json={"client_name": 3, "redirect_uris": "x", "nope": 1}
    )
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {"client_name", "redirect_uris", "nope"}
    status, body = await api(http, stack, "GET", "/v1/clients", params={"limit": "0"})
    assert (status, body["errors"][0]["field"]) == (400, "limit")
    status, body = await api(http, stack, "GET", "/v1/clients", params={"cursor": "!!"})
    assert (status, body["errors"][0]["field"]) == (400, "cursor")

    async with http.post(
        f"{stack.admin}/v1/scopes",
        headers={**ADMIN, "Content-Type": "application/json"},
        data=io.BytesIO(b'{"name": "' + b"x" * (1024 * 1024 + 1) + b'"}'),
    ) as r:
        assert r.status == 413
        assert r.headers["Content-Type"] == "application/problem+json"


# --- clients ------------------------------------------------------------------------------


async def test_clients_are_created_read_listed_filtered_patched_and_deleted(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    name = unique("Listed")
    created = [
        await new_client(http, stack, client_name=name, scope=read, default_scope=read)
        for _ in range(3)
    ]
    first = created[0]
    assert first["token_endpoint_auth_method"] == "client_secret_basic"
    assert first["grant_types"] == ["authorization_code"]
    assert first["response_types"] == ["code"]
    assert (first["client_secret_expires_at"], first["client_id_issued_at"]) == (
        0,
        first["created_at"],
    )
    status, shown = await api(http, stack, "GET", f"/v1/clients/{first['client_id']}")
    assert status == 200
    assert shown == {k: v for k, v in first.items() if k != "client_secret"}

    # Pages of one, through the cursor, sorted by client id.
    seen: list[str] = []
    params = {"client_name": name, "limit": "1"}
    while True:
        status, page = await api(http, stack, "GET", "/v1/clients", params=params)
        assert status == 200
        seen += [client["client_id"] for client in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"client_name": name, "limit": "1", "cursor": page["next_cursor"]}
    assert seen == sorted(client["client_id"] for client in created)

    # Filters: enabled, grant type, scope.
    await api(http, stack, "PATCH", f"/v1/clients/{first['client_id']}", json={"enabled": False})
    for params, expected in (
        ({"enabled": "false"}, [first["client_id"]]),
        ({"grant_type": "authorization_code", "scope": read}, sorted(seen)),
        ({"grant_type": "client_credentials"}, []),
        ({"scope": "openid"}, []),
    ):
        status, page = await api(
            http, stack, "GET", "/v1/clients", params={"client_name": name, **params}
        )
        assert [c["client_id"] for c in page["items"]] == expected, params

    # A merge patch: named fields set, null restores a default, the rest kept.
    url = f"/v1/clients/{created[1]['client_id']}"
    status, patched = await api(
        http,
        stack,
        "PATCH",
        url,
        json={"description": "Billing", "grant_types": ["authorization_code", "refresh_token"]},
        headers={**ADMIN, "Content-Type": "application/merge-patch+json"},
    )
    assert status == 200, patched
    assert patched["grant_types"] == ["authorization_code", "refresh_token"]
    assert patched["refresh_count"] == 10
    assert patched["client_name"] == name
    status, patched = await api(
        http,
        stack,
        "PATCH",
        url,
        json={"description": None, "refresh_count": 0, "grant_types": ["authorization_code"]},
    )
    assert (patched["description"], patched["refresh_count"]) == ("", 0)
    # Checked as a new client: refused naming the field, nothing changed.
    for change, field in (
        ({"redirect_uris": ["http://app.example.com/cb"]}, "redirect_uris"),
        ({"scope": "no-such-scope-anywhere", "default_scope": ""}, "scope"),
        ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method"),
        ({"refresh_count": 3}, None),
    ):
        status, body = await api(http, stack, "PATCH", url, json=change)
        if field is None:
            assert status == 200  # a count alone turns the refresh_token grant on
            continue
        assert status == 422, (change, body)
        assert body["errors"][0]["field"] == field
    status, kept = await api(http, stack, "GET", url)
    assert kept["redirect_uris"] == [REDIRECT_URI]
    assert kept["grant_types"] == ["authorization_code", "refresh_token"]

    status, _ = await api(http, stack, "DELETE", url)
    assert status == 204
    status, body = await api(http, stack, "GET", url)
    assert status == 404


async def test_an_existing_registration_is_imported_with_its_id_and_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    client_id = f"wm-{unique('a1b2')}"
    secret = "imported-" + unique("secret")
    SECRETS_USED.add(secret)
    body = {
        "client_id": client_id,
        "client_secret": secret,
        "client_name": "Moved over",
        "grant_types": ["client_credentials"],
        "scope": read,
    }
    status, created = await api(http, stack, "POST", "/v1/clients", json=body)
    assert status == 201, created
    assert (created["client_id"], created["client_secret"]) == (client_id, secret)

    reply = await _basic_token(
        http, stack, client_id, secret, {"grant_type": "client_credentials", "scope": read}
    )
    assert reply.status == 200, reply.body

    status, _ = await api(http, stack, "POST", "/v1/clients", json=body)
    assert status == 409
    for given, field in (
        ({"client_id": "-starts-with-a-dash"}, "client_id"),
        ({"client_id": "has space"}, "client_id"),
        ({"client_id": unique("ok"), "client_secret": "short"}, "client_secret"),
        (
            {
                "client_id": unique("ok"),
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
                "redirect_uris": [REDIRECT_URI],
            },
            "client_secret",
        ),
    ):
        status, refused = await api(http, stack, "POST", "/v1/clients", json={**body, **given})
        assert status == 422, (given, refused)
        assert refused["errors"][0]["field"] == field


async def test_a_rotated_secret_works_beside_the_new_one_for_the_overlap_only(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    created = await new_client(
        http, stack, grant_types=["client_credentials"], scope=read, redirect_uris=[]
    )
    client_id, old = created["client_id"], created["client_secret"]
    form = {"grant_type": "client_credentials", "scope": read}

    status, rotated = await api(
        http, stack, "POST", f"/v1/clients/{client_id}/secret", json={"overlap_seconds": 2}
    )
    assert status == 200, rotated
    new = rotated["client_secret"]
    SECRETS_USED.add(new)
    assert new != old
    assert rotated["previous_secret_expires_at"] >= int(time.time()) + 1
    for secret in (old, new):
        assert (await _basic_token(http, stack, client_id, secret, form)).status == 200

    # Past the overlap, the old one is refused as any wrong secret; the new one works.
    await asyncio.sleep(max(0.0, rotated["previous_secret_expires_at"] - time.time()) + 0.1)
    refused = await _basic_token(http, stack, client_id, old, form)
    assert (refused.status, refused.body["error"]) == (401, "invalid_client")
    assert (await _basic_token(http, stack, client_id, new, form)).status == 200

    # Without an overlap the replaced secret is refused at once; one given is taken.
    given = "a-given-secret-" + unique("x")
    SECRETS_USED.add(given)
    status, rotated = await api(
        http,
        stack,
        "POST",
        f"/v1/clients/{client_id}/secret",
        json={"overlap_seconds": 0, "client_secret": given},
    )
    assert (status, rotated["client_secret"], rotated["previous_secret_expires_at"]) == (
        200,
        given,
        None,
    )
    assert (await _basic_token(http, stack, client_id, new, form)).status == 401
    assert (await _basic_token(http, stack, client_id, given, form)).status == 200
    status, shown = await api(http, stack, "GET", f"/v1/clients/{client_id}")
    assert shown["secret_rotated_at"] >= created["created_at"]

    public = await new_client(http, stack, token_endpoint_auth_method="none")
    status, _ = await api(http, stack, "POST", f"/v1/clients/{public['client_id']}/secret", json={})
    assert status == 409


# --- scopes -------------------------------------------------------------------------------


async def test_scopes_are_defined_changed_and_deleted_and_built_in_ones_stay(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    name = unique("orders:read")
    status, scope = await api(
        http, stack, "POST", "/v1/scopes", json={"name": name, "description": "Read orders"}
    )
    assert (status, scope) == (
        201,
        {"name": name, "description": "Read orders", "resources": [], "built_in": False},
    )
    status, body = await api(http, stack, "POST", "/v1/scopes", json={"name": name})
    assert status == 409
    status, scope = await api(
        http, stack, "PATCH", f"/v1/scopes/{name}", json={"resources": ["get /orders"]}
    )
    assert (status, scope["resources"], scope["description"]) == (
        200,
        ["GET /orders"],
        "Read orders",
    )
    status, body = await api(
        http, stack, "PATCH", f"/v1/scopes/{name}", json={"resources": ["FETCH"]}
    )
    assert (status, body["errors"][0]["field"]) == (422, "resources")

    status, admin_scope = await api(http, stack, "GET", "/v1/scopes/tessera:admin")
    assert status == 200
    assert admin_scope["built_in"] is True
    assert admin_scope["description"] == "Administer Tessera: clients, scopes, users and tokens"
    for method, body in (("PATCH", {"description": "x"}), ("DELETE", None)):
        status, _ = await api(http, stack, method, "/v1/scopes/tessera:admin", json=body)
        assert status == 409
    status, page = await api(http, stack, "GET", "/v1/scopes", params={"limit": "500"})
    assert {"tessera:admin", "openid", name} <= {s["name"] for s in page["items"]}

    status, _ = await api(http, stack, "DELETE", f"/v1/scopes/{name}")
    assert status == 204
    status, _ = await api(http, stack, "GET", f"/v1/scopes/{name}")
    assert status == 404


# --- users --------------------------------------------------------------------------------


async def password_tokens(
    http: aiohttp.ClientSession,
    stack: Stack,
    client: Registered,
    username: str,
    password: str,
    scope: str,
) -> Reply:
    form = {"grant_type": "password", "username": username, "password": password, "scope": scope}
    return await token_request(http, stack, client, form)


async def test_users_are_created_listed_patched_and_their_password_set(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    username = unique("carol")
    status, user = await api(
        http,
        stack,
        "POST",
        "/v1/users",
        json={
            "username": username,
            "password": PASSWORD,
            "claims": {"name": "Carol", "email_verified": True},
        },
    )
    assert status == 201, user
    assert (user["claims"], user["enabled"], user["locked"]) == (
        {"name": "Carol", "email_verified": True},
        True,
        False,
    )
    assert "password_hash" not in user
    status, body = await api(
        http, stack, "POST", "/v1/users", json={"username": username, "password": PASSWORD}
    )
    assert status == 409
    status, body = await api(
        http, stack, "POST", "/v1/users", json={"username": unique("d"), "password": "short"}
    )
    assert (status, body["errors"][0]["field"]) == (422, "password")
    status, body = await api(
        http,
        stack,
        "POST",
        "/v1/users",
        json={"username": unique("d"), "password": PASSWORD, "claims": {"shoe_size": "9"}},
    )
    assert (status, body["errors"][0]["field"]) == (422, "claims")
    assert "shoe_size" in body["detail"]

    status, user = await api(
        http,
        stack,
        "PATCH",
        f"/v1/users/{username}",
        json={"claims": {"name": None, "locale": "fr"}},
    )
    assert status == 200
    assert user["claims"] == {"email_verified": True, "locale": "fr"}
    assert user["updated_at"] >= user["created_at"]

    read = await make_scope(redis)
    client = await make_client(redis, [read], grants=["password"], redirect_uris=[])
    assert (await password_tokens(http, stack, client, username, PASSWORD, read)).status == 200
    new_password = "a new long password"
    SECRETS_USED.add(new_password)
    status, _ = await api(
        http, stack, "PUT", f"/v1/users/{username}/password", json={"password": new_password}
    )
    assert status == 204
    assert (await password_tokens(http, stack, client, username, PASSWORD, read)).status == 400
    assert (await password_tokens(http, stack, client, username, new_password, read)).status == 200


async def test_a_disabled_person_cannot_sign_in_and_loses_their_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    rs = await make_resource_server(redis, [s.scope])
    code = await obtain_code(http, stack, s)
    tokens = await exchange(http, stack, s.client, code)
    assert await is_active(http, stack, rs, tokens.body["access_token"])

    status, user = await api(http, stack, "PATCH", f"/v1/users/{s.user}", json={"enabled": False})

    assert (status, user["enabled"]) == (200, False)
    # The browser's session, signed in before, gets nothing more.
    back = await authorize(http, stack, code_request(s.client, s.scope), s.user)
    assert back["error"] == "access_denied"
    assert not await is_active(http, stack, rs, tokens.body["access_token"])
    assert await live_tokens(http, stack, user=s.user) == []
    status, page = await api(
        http, stack, "GET", "/v1/users", params={"enabled": "false", "limit": "500"}
    )
    assert s.user in [u["username"] for u in page["items"]]
    # The sign-in page answers as for a wrong password, the right one given.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(
            f"{stack.authorize}/authorize",
            params=code_request(s.client, s.scope),
            allow_redirects=False,
        ) as r:
            login = r.headers["Location"]
        answer = await sign_in(browser, stack, login, s.user, PASSWORD)
        assert answer.status == 200
        assert page_message(await answer.text()) == LOGIN_FAILED

    status, user = await api(http, stack, "PATCH", f"/v1/users/{s.user}", json={"enabled": True})
    assert user["enabled"] is True
    code = await obtain_code(http, stack, s)
    assert (await exchange(http, stack, s.client, code)).status == 200


async def test_deleting_a_person_forgets_their_approvals_and_revokes_their_tokens(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, remember_consent=True)
    rs = await make_resource_server(redis, [s.scope])
    tokens = await exchange(http, stack, s.client, await obtain_code(http, stack, s))
    status, page = await api(http, stack, "GET", "/v1/approvals", params={"username": s.user})
    assert [a["client_id"] for a in page["items"]] == [s.client.client_id]

    status, _ = await api(http, stack, "DELETE", f"/v1/users/{s.user}")

    assert status == 204
    assert not await is_active(http, stack, rs, tokens.body["access_token"])
    status, page = await api(
        http, stack, "GET", "/v1/approvals", params={"client_id": s.client.client_id}
    )
    assert page["items"] == []
    status, _ = await api(http, stack, "GET", f"/v1/users/{s.user}")
    assert status == 404
    status, _ = await api(http, stack, "DELETE", f"/v1/users/{s.user}")
    assert status == 404


async def test_a_locked_person_is_unlocked(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    read = await make_scope(redis)
    user = await make_user(redis)
    client = await make_client(redis, [read], grants=["password"], redirect_uris=[])
    # The per-(username, address) limit: 5 failures in 15 minutes (README, sign-in limits).
    for _ in range(5):
        assert (await password_tokens(http, stack, client, user, "wrong guess", read)).status == 400
    status, shown = await api(http, stack, "GET", f"/v1/users/{user}")
    assert shown["locked"] is True
    assert (await password_tokens(http, stack, client, user, PASSWORD, read)).status == 429

    status, _ = await api(http, stack, "POST", f"/v1/users/{user}/unlock")

    assert status == 204
    status, shown = await api(http, stack, "GET", f"/v1/users/{user}")
    assert shown["locked"] is False
    assert (await password_tokens(http, stack, client, user, PASSWORD, read)).status == 200


# --- approvals and tokens -----------------------------------------------------------------


async def test_removing_an_approval_revokes_what_it_granted_that_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis, refresh_count=1)
    rs = await make_resource_server(redis, [s.scope])
    tokens = await exchange(http, stack, s.client, await obtain_code(http, stack, s))
    status, page = await api(
        http,
        stack,
        "GET",
        "/v1/approvals",
        params={"username": s.user, "client_id": s.client.client_id},
    )
    (approval,) = page["items"]
    assert (approval["scope"], approval["username"]) == ([s.scope], s.user)
    assert approval["last_used_at"] >= approval["granted_at"]

    status, _ = await api(http, stack, "DELETE", f"/v1/approvals/{s.user}/{s.client.client_id}")

    assert status == 204
    assert not await is_active(http, stack, rs, tokens.body["access_token"])
    refreshed = await token_request(
        http,
        stack,
        s.client,
        {"grant_type": "refresh_token", "refresh_token": tokens.body["refresh_token"]},
    )
    assert refreshed.status == 400
    status, page = await api(http, stack, "GET", "/v1/approvals", params={"username": s.user})
    assert page["items"] == []
    status, _ = await api(http, stack, "DELETE", f"/v1/approvals/{s.user}/{s.client.client_id}")
    assert status == 404
    status, _ = await api(http, stack, "GET", "/v1/approvals")
    assert status == 400


async def test_tokens_are_listed_in_pages_and_revoked_by_client(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    s = await make_setup(redis)
    rs = await make_resource_server(redis, [s.scope])
    issued = [
        (await exchange(http, stack, s.client, await obtain_code(http, stack, s))).body[
            "access_token"
        ]
        for _ in range(3)
    ]
    params = {"client_id": s.client.client_id, "limit": "2"}
    status, first = await api(http, stack, "GET", "/v1/tokens", params=params)
    assert len(first["items"]) == 2 and first["next_cursor"]
    status, second = await api(
        http, stack, "GET", "/v1/tokens", params={**params, "cursor": first["next_cursor"]}
    )
    assert (len(second["items"]), second["next_cursor"]) == (1, None)
    listed = first["items"] + second["items"]
    assert len({t["family"] for t in listed}) == 3
    assert all(token not in str(listed) for token in issued)

    status, body = await api(
        http, stack, "POST", "/v1/tokens/revoke", json={"client_id": s.client.client_id}
    )
    assert (status, body) == (200, {"revoked_grants": 3})
    assert not any([await is_active(http, stack, rs, token) for token in issued])


# --- the audit trail and the metric -------------------------------------------------------


async def test_every_change_is_audited_with_its_actor_and_never_a_secret(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    since = time.time() - 1
    read = await make_scope(redis)
    secret = "an-imported-secret-" + unique("s")
    SECRETS_USED.add(secret)
    created = await new_client(
        http, stack, client_id=unique("audited"), client_secret=secret, scope=read
    )
    client_id = created["client_id"]
    await api(http, stack, "PATCH", f"/v1/clients/{client_id}", json={"description": "d"})
    _, rotated = await api(http, stack, "POST", f"/v1/clients/{client_id}/secret", json={})
    SECRETS_USED.add(rotated["client_secret"])
    username, password = unique("dora"), "dora's long password"
    SECRETS_USED.add(password)
    await api(http, stack, "POST", "/v1/users", json={"username": username, "password": password})
    await api(
        http, stack, "PUT", f"/v1/users/{username}/password", json={"password": password + "!"}
    )
    await api(http, stack, "POST", f"/v1/users/{username}/unlock")
    await api(http, stack, "PATCH", f"/v1/users/{username}", json={"enabled": False})
    await api(http, stack, "DELETE", f"/v1/users/{username}")
    await api(http, stack, "DELETE", f"/v1/clients/{client_id}")

    events = [
        e
        for e in await audit_events(http, stack, since)
        if e["resource_id"] in (client_id, username)
    ]

    assert [(e["action"], e["resource"]) for e in events] == [
        ("create", "client"),
        ("update", "client"),
        ("rotate_secret", "client"),
        ("create", "user"),
        ("set_password", "user"),
        ("unlock", "user"),
        ("update", "user"),
        ("delete", "user"),
        ("delete", "client"),
    ]
    assert {e["actor"] for e in events} == {"bootstrap"}
    assert events[1]["before"]["description"] == "" and events[1]["after"]["description"] == "d"
    assert events[0]["time"].endswith("Z")
    text = str(events)
    for shown in (secret, rotated["client_secret"], password, password + "!", ADMIN_TOKEN):
        assert shown not in text
    for field in ("secret_hash", "previous_secret_hash", "password_hash", "password"):
        assert f"'{field}'" not in text
    assert all("client_secret" not in (e["after"] or {}) for e in events)

    # Counted: the token service's /metrics shows the admin API's changes and requests.
    async with http.get(f"{stack.token}/metrics") as r:
        scrape = samples(await r.text())
    assert (
        sample_value(
            scrape, "tessera_admin_changes_total", resource="client", action="rotate_secret"
        )
        >= 1
    )
    assert (
        sample_value(
            scrape, "tessera_http_requests_total", method="GET", route="/v1/audit", status="200"
        )
        >= 1
    )


async def test_the_audit_stream_drops_secrets_whatever_it_is_passed(redis: Redis) -> None:
    event = await audit.record(
        redis,
        actor="bootstrap",
        action="update",
        resource="client",
        resource_id=unique("c"),
        before={"secret_hash": "h1", "nested": [{"password": "p", "kept": 1}]},
        after={"previous_secret_hash": "h2", "client_secret": "s", "name": "n"},
        max_events=1000,
    )
    read = await audit.read(redis, since_ms=event.time_ms, after=None, count=1000)
    (kept,) = [found for found in read if found.id == event.id]
    assert kept.before == {"nested": [{"kept": 1}]}
    assert kept.after == {"name": "n"}


@pytest.mark.parametrize("since", ["yesterday", "2026-01-01T00:00:00", "-5", "nan"])
async def test_a_bad_since_is_400(stack: Stack, http: aiohttp.ClientSession, since: str) -> None:
    status, body = await api(http, stack, "GET", "/v1/audit", params={"since": since})
    assert (status, body["errors"][0]["field"]) == (400, "since")


async def test_a_page_of_500_people_is_listed_within_the_redis_clients_connections(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """Each person's sign-in limits are read for ``locked``: a full page must not ask for
    all of them at once (redis-py's pool holds 100 connections)."""
    for _ in range(6):  # 300 people, 50 at a time (the test's own pool is bounded too)
        await asyncio.gather(*(make_user(redis) for _ in range(50)))
    status, page = await api(http, stack, "GET", "/v1/users", params={"limit": "500"})
    assert status == 200, page
    assert len(page["items"]) >= 300
    assert all(isinstance(item["locked"], bool) for item in page["items"])


async def test_tessera_admin_is_for_clients_acting_for_themselves_alone(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    """A client allowed a grant with a person in it would let anyone who signs in hold an
    admin token."""
    for grants in (["authorization_code"], ["password"], ["client_credentials", "password"]):
        status, body = await api(
            http,
            stack,
            "POST",
            "/v1/clients",
            json={
                "client_name": unique("Ops"),
                "redirect_uris": [REDIRECT_URI],
                "grant_types": grants,
                "scope": "tessera:admin",
            },
        )
        assert status == 422, (grants, body)
        assert body["errors"][0]["field"] == "scope"


async def test_numbers_beyond_their_bounds_are_refused_not_a_server_error(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    client = await new_client(http, stack, grant_types=["authorization_code"])
    path = f"/v1/clients/{client['client_id']}"
    for huge in (90 * 24 * 3600 + 1, 2**62, 2**64 - 1):
        status, body = await api(
            http, stack, "POST", f"{path}/secret", json={"overlap_seconds": huge}
        )
        assert status in (400, 422), (huge, body)
    for field, huge in (("access_token_lifetime", 2**62), ("refresh_count", 2**40)):
        status, body = await api(http, stack, "PATCH", path, json={field: huge})
        assert status in (400, 422), (field, body)
