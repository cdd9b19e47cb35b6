"""People's profile claims administered: ``tessera user add``, ``update`` and ``show``
(shared/admin/user_commands.py, a client of the admin API) and the admin API's
``/v1/users`` (services/admin/users.py), which refuse the same values with the same
messages (``shared.domain.user_claims``); what they set is what the UserInfo endpoint
then answers."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from redis.asyncio import Redis

from shared.security import crypto
from shared.storage import keys, users
from tests.command_line import assert_refused, tessera
from tests.flows import ADMIN, admin_json, authorize, code_request, exchange
from tests.records import make_client, make_user, unique
from tests.stack import Stack, logged_lines

LONG_PASSWORD = "a long enough password"
MERGE_PATCH = "application/merge-patch+json"  # RFC 7396 §4


async def admin_send(
    http: aiohttp.ClientSession, method: str, url: str, body: str | bytes, content_type: str
) -> tuple[int, Any]:
    """A call to the admin API with a body of ``content_type``: status and JSON body."""
    headers = {**ADMIN, "Content-Type": content_type}
    async with http.request(method, url, data=body, headers=headers) as r:
        assert r.headers["Cache-Control"] == "no-store"
        return r.status, orjson.loads(await r.read())


async def _record(redis: Redis, username: str) -> dict[str, Any]:
    stored: dict[str, Any] = orjson.loads(await redis.get(keys.user(username)) or "{}")
    return stored


# --- the command -----------------------------------------------------------------------


async def test_user_add_sets_claims_and_show_prints_them_without_the_password(
    stack: Stack, redis: Redis
) -> None:
    username = unique("zoe")

    run = await tessera(
        stack,
        "user",
        "add",
        username,
        "--password-stdin",
        "--name",
        "Zoë O'Brien",
        "--email",
        "zoe@example.com",
        "--email-verified",
        "--phone-number",
        "+353 1 234 5678",
        "--address-street-address",
        "1 Main St",
        "--address-country",
        "Ireland",
        stdin=LONG_PASSWORD + "\n",
    )

    assert run.status == 0, run.stderr
    stored = await _record(redis, username)
    assert stored["claims"] == {
        "name": "Zoë O'Brien",
        "email": "zoe@example.com",
        "email_verified": True,
        "phone_number": "+35312345678",
        "address": {"street_address": "1 Main St", "country": "Ireland"},
    }
    assert stored["updated_at"] == stored["created_at"]
    shown = await tessera(stack, "user", "show", username, "-o", "json")
    assert shown.status == 0, shown.stderr
    assert shown.json() == {
        "username": username,
        "sub": stored["sub"],
        "enabled": True,
        "created_at": stored["created_at"],
        "claims": stored["claims"],
        "updated_at": stored["updated_at"],
        "locked": False,
    }
    text = await tessera(stack, "user", "show", username)
    assert "password" not in text.stdout + shown.stdout
    assert stored["password_hash"] not in text.stdout + shown.stdout
    lines = dict(line.split(None, 1) for line in text.stdout.splitlines())
    assert lines["username"] == username
    assert lines["claims.email_verified"] == "yes"
    assert lines["claims.address.street_address"] == "1 Main St"
    assert lines["claims.phone_number"] == "+35312345678"


async def test_user_update_sets_clears_and_merges_the_address(stack: Stack, redis: Redis) -> None:
    username = await make_user(redis)
    await users.update_claims(
        redis,
        username,
        {"email": "zoe@example.com", "nickname": "Z", "address": {"locality": "Cork"}},
    )
    before = await _record(redis, username)

    run = await tessera(
        stack,
        "user",
        "update",
        username,
        "--locale",
        "en-IE",
        "--no-phone-number-verified",
        "--address-postal-code",
        "T12",
        "--clear",
        "email",
        "--clear",
        "address.locality",
        "-o",
        "json",
    )

    assert run.status == 0, run.stderr
    assert run.json()["claims"] == {
        "nickname": "Z",
        "locale": "en-IE",
        "phone_number_verified": False,
        "address": {"postal_code": "T12"},
    }
    stored = await _record(redis, username)
    assert stored["claims"] == run.json()["claims"]
    assert stored["password_hash"] == before["password_hash"]
    assert stored["updated_at"] >= before["updated_at"]
    run = await tessera(stack, "user", "update", username, "--clear", "address")
    assert run.status == 0, run.stderr
    assert "address" not in (await _record(redis, username))["claims"]


async def test_user_update_refusals_say_why_and_change_nothing(stack: Stack, redis: Redis) -> None:
    username = await make_user(redis)
    unknown = unique("nobody")
    for args, message in (
        (["update", username], "nothing to change: give a claim to set, or --clear CLAIM"),
        (["update", username, "--email", "zoe"], "claim 'email' 'zoe' is not an email address"),
        (["update", username, "--zoneinfo", "Nowhere"], "claim 'zoneinfo'"),
        (["update", username, "--picture", "http://x.example/p.png"], "must be an https URL"),
        (["update", username, "--birthdate", "1984-13-01"], "is not a date"),
        (["update", username, "--locale", "en_GB"], "write 'en-GB'"),
        (["update", username, "--email", "a@b.example", "--clear", "email"], "set and cleared"),
        (
            ["update", username, "--address-region", "Munster", "--clear", "address"],
            "set and cleared",
        ),
        (["update", username, "--clear", "updated_at"], "Invalid value for '--clear'"),
        (["update", unknown, "--name", "Nobody"], f"no user {unknown!r}"),
        (["show", unknown], f"no user {unknown!r}"),
    ):
        await assert_refused(stack, ["user", *args], message)
    await assert_refused(
        stack,
        ["user", "add", unique("zoe"), "--password-stdin", "--phone-number", "555-1234"],
        "not an E.164 number",
        stdin=LONG_PASSWORD + "\n",
    )


# --- the admin API ----------------------------------------------------------------------


async def test_the_admin_api_adds_shows_and_patches_a_user(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    username = unique("zoe")
    users_url = f"{stack.admin}/v1/users"
    body = {
        "username": username,
        "password": LONG_PASSWORD,
        "claims": {"name": "Zoë", "email": "zoe@example.com", "address": {"country": "IE"}},
    }

    async with http.post(users_url, json=body, headers=ADMIN) as r:
        assert r.status == 201
        assert r.headers["Location"] == f"/v1/users/{username}"
        created = await r.json()
    stored = await _record(redis, username)
    assert crypto.check_password(stored["password_hash"], LONG_PASSWORD)
    assert created == {
        "username": username,
        "sub": stored["sub"],
        "enabled": True,
        "created_at": stored["created_at"],
        "claims": body["claims"],
        "updated_at": stored["created_at"],
        "locked": False,
    }
    status, shown = await admin_json(http, "GET", f"{users_url}/{username}")
    assert (status, shown) == (200, created)

    patch = {"claims": {"email": None, "locale": "ga", "address": {"locality": "Galway"}}}
    status, changed = await admin_send(
        http, "PATCH", f"{users_url}/{username}", orjson.dumps(patch), MERGE_PATCH
    )

    assert status == 200, changed
    assert changed["claims"] == {
        "name": "Zoë",
        "locale": "ga",
        "address": {"country": "IE", "locality": "Galway"},
    }
    assert changed["updated_at"] >= created["updated_at"]
    assert (await _record(redis, username))["password_hash"] == stored["password_hash"]
    logged = orjson.dumps(await logged_lines(http, stack.token, "token")).decode()
    assert LONG_PASSWORD not in logged


async def test_the_admin_api_refuses_as_the_command_does(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    username = await make_user(redis)
    unknown = unique("nobody")
    url = f"{stack.admin}/v1/users"
    before = await redis.get(keys.user(username))
    for method, path, sent, status, message in (
        ("GET", f"/{unknown}", None, 404, f"no user {unknown!r}"),
        ("PATCH", f"/{unknown}", {"claims": {"name": "N"}}, 404, f"no user {unknown!r}"),
        (
            "PATCH",
            f"/{username}",
            {"claims": {"email": "zoe"}},
            422,
            "claim 'email' 'zoe' is not an email address (local@example.com)",
        ),
        (
            "PATCH",
            f"/{username}",
            {"claims": {"updated_at": 1}},
            422,
            "claim 'updated_at' is kept by Tessera and cannot be set",
        ),
        (
            "PATCH",
            f"/{username}",
            {"claims": {"address": {"city": "Cork"}}},
            422,
            "claim 'address' has no member 'city'",
        ),
        ("PATCH", f"/{username}", {"username": "mallory", "claims": {}}, 400, "username"),
        ("PATCH", f"/{username}", ["claims"], 400, "must be a JSON object"),
        (
            "POST",
            "",
            {"username": username, "password": LONG_PASSWORD},
            409,
            f"user {username!r} already exists",
        ),
        (
            "POST",
            "",
            {"username": unique("zoe"), "password": "short"},
            422,
            "password must be at least 8 characters",
        ),
        (
            "POST",
            "",
            {"username": unique("zoe"), "password": LONG_PASSWORD, "claims": {"gender": 1}},
            422,
            "claim 'gender' must be a string",
        ),
        ("POST", "", {"username": unique("zoe")}, 400, "password"),
    ):
        kwargs: dict[str, Any] = {} if sent is None else {"json": sent}
        answer_status, answer = await admin_json(http, method, f"{url}{path}", **kwargs)
        assert answer_status == status, answer
        assert message in answer["detail"], answer
    # A body that is no JSON, or not labelled so.
    for data, content_type, status in (
        ("{", "application/json", 400),
        ("claims=x", "text/plain", 415),
    ):
        answer_status, answer = await admin_send(
            http, "PATCH", f"{url}/{username}", data, content_type
        )
        assert (answer_status, answer["status"]) == (status, status)
    assert await redis.get(keys.user(username)) == before
    # The admin token is required, as everywhere on the admin API.
    async with http.get(f"{url}/{username}") as r:
        assert r.status == 401
    # The unknown name is logged as its fingerprint only.
    logged = orjson.dumps(await logged_lines(http, stack.token, "token")).decode()
    assert unknown not in logged


async def test_what_the_admin_api_sets_the_userinfo_endpoint_answers(
    stack: Stack, redis: Redis, http: aiohttp.ClientSession
) -> None:
    username = await make_user(redis)
    client = await make_client(redis, ["openid", "profile"])
    back = await authorize(http, stack, code_request(client, "openid profile"), username)
    issued = await exchange(http, stack, client, back["code"])
    assert issued.status == 200, issued.body
    bearer = {"Authorization": f"Bearer {issued.body['access_token']}"}

    async with http.get(f"{stack.token}/userinfo", headers=bearer) as r:
        before = await r.json()
    patch = {"claims": {"nickname": "Z", "zoneinfo": "Pacific/Auckland"}}
    status, changed = await admin_json(
        http, "PATCH", f"{stack.admin}/v1/users/{username}", json=patch
    )
    assert status == 200, changed
    async with http.get(f"{stack.token}/userinfo", headers=bearer) as r:
        after = await r.json()

    assert set(before) == {"sub"}  # nothing to release yet
    assert after == {
        "sub": before["sub"],
        "nickname": "Z",
        "zoneinfo": "Pacific/Auckland",
        "updated_at": changed["updated_at"],
    }
