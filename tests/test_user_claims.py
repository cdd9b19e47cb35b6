"""A person's profile claims (OpenID Connect Core §5.1): what each claim may hold
(shared/domain/user_claims.py), and how they are stored and changed
(shared/storage/users.py): on a new user, and by a merge patch applied in Redis at once,
so that concurrent changes are all kept."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from shared.domain import user_claims
from shared.domain.domain_errors import Invalid, NotFound
from shared.security import crypto
from shared.storage import keys, users
from tests.records import PASSWORD, make_user, unique
from tests.stack import TEST_PASSWORD_HASHING

# --- what each claim may hold -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("name", "Zoë O'Brien-Łukasiewicz", None),
        ("preferred_username", "zoe@work / home", None),  # §5.1: any JSON string
        ("gender", "non-binary", None),  # §5.1: values other than female and male may be used
        ("email", "zoe.o+tessera@mail.example.co.uk", None),
        ("email", "zoë@bücher.example", None),
        ("email_verified", False, None),
        ("phone_number_verified", True, None),
        ("phone_number", "+14255551212", None),
        # §5.1's own examples: the separators are dropped, E.164 is what is stored.
        ("phone_number", "+1 (425) 555-1212", "+14255551212"),
        ("phone_number", "+56 (2) 687 2400", "+5626872400"),
        ("phone_number", "+1 (604) 555-1234;ext=5678", "+16045551234;ext=5678"),
        ("picture", "https://cdn.example.com/zoe.png?size=128", None),
        ("website", "https://zoe.example", None),
        ("profile", "https://people.example.com/zoe", None),
        ("locale", "en-US", None),
        ("locale", "fr", None),
        ("locale", "zh-Hant-TW", None),
        ("zoneinfo", "Europe/Paris", None),
        ("zoneinfo", "America/Argentina/Buenos_Aires", None),
        ("birthdate", "1984-02-29", None),
        ("birthdate", "0000-02-29", None),  # the year withheld (§5.1)
        ("birthdate", "1984", None),
        (
            "address",
            {"street_address": "1 Main St\nFlat 2", "locality": "Springfield", "country": "US"},
            None,
        ),
        ("address", {"formatted": "1 Main St\r\nSpringfield"}, None),
    ],
)
def test_a_well_formed_claim_is_kept(name: str, value: Any, stored: Any) -> None:
    assert user_claims.check(name, value) == (value if stored is None else stored)


@pytest.mark.parametrize(
    ("name", "value", "refusal"),
    [
        ("nickname", 42, "must be a string"),
        ("nickname", "", "must not be empty"),
        ("nickname", "   ", "must not be empty"),
        ("nickname", "x" * 257, "longer than 256"),
        ("name", "Zoë\nO'Brien", "control characters"),
        ("name", "Zoë\x00", "control characters"),
        ("email_verified", "true", "true or false"),
        ("phone_number_verified", 1, "true or false"),
        ("email", "zoe", "not an email address"),
        ("email", "zoe@example", "not an email address"),
        ("email", "zoe@@example.com", "not an email address"),
        ("email", "@example.com", "not an email address"),
        ("email", "zo e@example.com", "not an email address"),
        ("email", "zoe@example..com", "not an email address"),
        ("email", "x" * 65 + "@example.com", "not an email address"),
        ("phone_number", "4255551212", "not an E.164 number"),
        ("phone_number", "+0 425 555 1212", "not an E.164 number"),
        ("phone_number", "+1 425 555 1212 9999 9", "not an E.164 number"),
        ("phone_number", "+1 425-CALL-NOW", "not an E.164 number"),
        ("phone_number", "+14255551212;x=1", "extension"),
        ("picture", "http://cdn.example.com/zoe.png", "https URL"),
        ("picture", "javascript:alert(1)", "https URL"),
        ("website", "https://zoe@evil.example/", "user name or password"),
        ("profile", "/people/zoe", "not an absolute URL"),
        ("profile", "https://people.example.com/zoe smith", "not an absolute URL"),
        ("website", "https://" + "x" * 2048 + ".example", "longer than 2048"),
        ("locale", "en_US", "write 'en-US'"),
        ("locale", "english (US)", "BCP 47"),
        ("zoneinfo", "Mars/Olympus_Mons", "time zone"),
        ("zoneinfo", "../../etc/passwd", "time zone"),
        ("birthdate", "1984-02-30", "not a date"),
        ("birthdate", "1983-02-29", "not a date"),
        ("birthdate", "29/02/1984", "YYYY-MM-DD"),
        ("birthdate", "0000", "says nothing"),
        ("address", "1 Main St", "must be an object"),
        ("address", {}, "must have a member"),
        ("address", {"street": "1 Main St"}, "no member 'street'"),
        ("address", {"locality": 7}, "'address.locality' must be a string"),
        ("address", {"locality": "Spring\nfield"}, "control characters"),
        ("address", {"formatted": "1 Main St\rSpringfield"}, "control characters"),
        ("updated_at", 1, "kept by Tessera"),
        ("sub", "someone-else", "kept by Tessera"),
        ("favourite_colour", "blue", "not a standard claim"),
    ],
)
def test_a_malformed_claim_is_refused_naming_it(name: str, value: Any, refusal: str) -> None:
    with pytest.raises(Invalid, match=refusal) as caught:
        user_claims.check(name, value)
    assert repr(name) in caught.value.message or f"'{name}." in caught.value.message


def test_a_change_clears_with_none_and_changes_the_address_member_by_member() -> None:
    changes = {"email": None, "address": {"locality": "Paris", "region": None}, "locale": "fr"}

    assert user_claims.checked_changes(changes) == changes
    with pytest.raises(Invalid, match="no claim to change"):
        user_claims.checked_changes({})
    with pytest.raises(Invalid, match="kept by Tessera"):
        user_claims.checked_changes({"updated_at": None})
    with pytest.raises(Invalid, match="not a standard claim"):
        user_claims.checked_changes({"favourite_colour": None})
    # A new user's claims have nothing to clear: a member must be a string there.
    with pytest.raises(Invalid, match="must be a string"):
        user_claims.checked_claims({"address": {"locality": None}})


def test_released_claims_are_those_asked_for_that_the_profile_holds() -> None:
    profile = {"name": "Zoë", "email": "zoe@example.com", "email_verified": False}
    names = user_claims.approved_claims(["openid", "profile"])

    # email is the email scope's: not approved, not released, whatever the profile holds.
    assert user_claims.released(profile, 1700000000, names) == {
        "name": "Zoë",
        "updated_at": 1700000000,
    }
    assert user_claims.released(profile, 0, ["email_verified", "updated_at", "password"]) == {
        "email_verified": False
    }


def test_a_claim_asked_for_by_name_is_released_only_within_the_approved_scopes() -> None:
    """Core §5.5's claims parameter names claims; the person approved scopes (§5.4)."""
    asked = ["email", "name", "email", "phone_number", "sub"]
    assert user_claims.approved_claims(["openid", "email", "profile"], asked) == [
        "email",
        "name",
    ]
    assert user_claims.approved_claims(["openid"], asked) == []


# --- stored on the user record ----------------------------------------------------------


async def _record(redis: Redis, username: str) -> dict[str, Any]:
    stored: dict[str, Any] = orjson.loads(await redis.get(keys.user(username)) or "{}")
    return stored


async def test_a_new_user_holds_its_checked_claims_and_when_they_were_set(redis: Redis) -> None:
    username = unique("zoe")

    user = await users.add(
        redis,
        username,
        PASSWORD,
        TEST_PASSWORD_HASHING,
        claims={"phone_number": "+33 1 23 45 67 89", "email": "zoe@example.com", "name": None},
    )

    assert user.claims == {"phone_number": "+33123456789", "email": "zoe@example.com"}
    assert user.updated_at == user.created_at
    stored = await _record(redis, username)
    assert stored["claims"] == user.claims
    assert stored["updated_at"] == user.created_at
    assert await users.get(redis, username) == user
    # Without claims there is nothing to date.
    bare = await users.add(redis, unique("bare"), PASSWORD, TEST_PASSWORD_HASHING)
    assert (bare.claims, bare.updated_at) == ({}, 0)


async def test_a_new_user_with_a_bad_claim_is_not_stored(redis: Redis) -> None:
    username = unique("zoe")

    with pytest.raises(Invalid, match="'email'"):
        await users.add(
            redis, username, PASSWORD, TEST_PASSWORD_HASHING, claims={"email": "not-an-address"}
        )

    assert await redis.exists(keys.user(username)) == 0
    assert username not in await redis.smembers(keys.USER_INDEX)


async def test_an_update_sets_clears_and_merges_the_address_and_dates_the_change(
    redis: Redis,
) -> None:
    username = unique("zoe")
    await users.add(
        redis,
        username,
        PASSWORD,
        TEST_PASSWORD_HASHING,
        claims={
            "name": "Zoë",
            "email": "zoe@example.com",
            "address": {"locality": "Lyon", "country": "France"},
        },
    )
    await redis.set(
        keys.user(username), orjson.dumps({**await _record(redis, username), "updated_at": 1})
    )

    user = await users.update_claims(
        redis,
        username,
        {
            "email": None,
            "locale": "fr-FR",
            "address": {"locality": "Paris", "postal_code": "75001"},
        },
    )

    assert user.claims == {
        "name": "Zoë",
        "locale": "fr-FR",
        "address": {"locality": "Paris", "country": "France", "postal_code": "75001"},
    }
    assert user.updated_at > 1
    assert await users.get(redis, username) == user

    # An address whose last members are cleared is no address at all.
    user = await users.update_claims(
        redis, username, {"address": {"locality": None, "country": None, "postal_code": None}}
    )
    assert user.claims == {"name": "Zoë", "locale": "fr-FR"}
    user = await users.update_claims(redis, username, {"name": None, "locale": None})
    assert user.claims == {}
    assert (await _record(redis, username))["claims"] == {}


async def test_an_update_of_an_unknown_user_is_not_found_and_stores_nothing(redis: Redis) -> None:
    username = unique("nobody")

    with pytest.raises(NotFound) as caught:
        await users.update_claims(redis, username, {"name": "Nobody"})

    assert (caught.value.kind, caught.value.name) == ("user", username)
    assert await redis.exists(keys.user(username)) == 0


async def test_a_refused_update_changes_nothing(redis: Redis) -> None:
    username = await make_user(redis)
    await users.update_claims(redis, username, {"name": "Zoë"})
    before = await redis.get(keys.user(username))

    with pytest.raises(Invalid, match="'zoneinfo'"):
        await users.update_claims(redis, username, {"name": "Z", "zoneinfo": "Nowhere/Else"})

    assert await redis.get(keys.user(username)) == before


async def test_concurrent_updates_are_all_kept(redis: Redis) -> None:
    """Each update is applied to the record as stored (one script): twenty at once, each
    of its own claim or address member, lose none of the others."""
    username = await make_user(redis)
    changes: list[dict[str, Any]] = [
        {"name": "Zoë"},
        {"given_name": "Zoë"},
        {"family_name": "O'Brien"},
        {"middle_name": "Ann"},
        {"nickname": "Z"},
        {"preferred_username": "zoe"},
        {"gender": "female"},
        {"birthdate": "1984"},
        {"email": "zoe@example.com"},
        {"email_verified": True},
        {"phone_number": "+14255551212"},
        {"phone_number_verified": False},
        {"locale": "en-GB"},
        {"zoneinfo": "Europe/London"},
        {"picture": "https://cdn.example.com/z.png"},
        {"website": "https://zoe.example"},
        {"profile": "https://people.example.com/zoe"},
        *({"address": {member: member.upper()}} for member in ("locality", "region", "country")),
    ]

    await asyncio.gather(*(users.update_claims(redis, username, change) for change in changes))

    user = await users.get(redis, username)
    assert user is not None
    expected: dict[str, Any] = {"address": {}}
    for change in changes:
        for name, value in change.items():
            if name == "address":
                expected["address"].update(value)
            else:
                expected[name] = value
    assert user.claims == expected


async def test_an_update_keeps_the_password_and_fields_of_a_newer_release(redis: Redis) -> None:
    """The script changes the claims and updated_at and writes every other field back as
    it was: the password hash (which a password change may have just replaced), and a
    field a newer release added."""
    username = await make_user(redis)
    record = await _record(redis, username)
    new_hash = crypto.hash_password("a brand new password", TEST_PASSWORD_HASHING)
    newer = {**record, "password_hash": new_hash, "mfa": {"totp": True, "since": 1700000000}}
    await redis.set(keys.user(username), orjson.dumps(newer))

    await users.update_claims(redis, username, {"nickname": "Z"})

    stored = await _record(redis, username)
    assert stored["password_hash"] == new_hash
    assert stored["mfa"] == {"totp": True, "since": 1700000000}
    assert (stored["username"], stored["sub"], stored["created_at"]) == (
        record["username"],
        record["sub"],
        record["created_at"],
    )
    assert stored["claims"] == {"nickname": "Z"}


async def test_an_update_of_a_record_from_before_claims_adds_them(redis: Redis) -> None:
    """A user added by a release that knew no claims has neither field."""
    username = await make_user(redis)
    record = await _record(redis, username)
    del record["claims"], record["updated_at"]
    await redis.set(keys.user(username), orjson.dumps(record))
    old = await users.get(redis, username)
    assert old is not None and (old.claims, old.updated_at) == ({}, 0)

    user = await users.update_claims(redis, username, {"address": {"country": "NZ"}})

    assert user.claims == {"address": {"country": "NZ"}}
    assert user.updated_at > 0
    assert user.password_hash == old.password_hash
