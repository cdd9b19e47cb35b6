"""The one JWT verifier (RFC 9068 §4, RFC 8725): what it accepts, each check that
refuses, which checks come before any key is looked up, and how a refusal names what the
sender chose."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from signers import AUDIENCE, ISSUER, Signer, access_claims, b64url, segment

from tessera_resource_server.jwt_verification import (
    MAX_TOKEN_LENGTH,
    VERIFY_CLAIMS,
    JwtRefused,
    VerificationKey,
    looks_like_jwt,
    read_header,
    verify,
)


def keys_of(*signers: Signer) -> dict[str, VerificationKey]:
    return {s.kid: s.verification_key for s in signers}


def refusal(token: str, keys: dict[str, VerificationKey], **options: Any) -> JwtRefused:
    with pytest.raises(JwtRefused) as refused:
        verify(token, keys, issuer=ISSUER, **options)
    return refused.value


def test_a_valid_token_gives_its_claims(signer: Signer) -> None:
    claims = access_claims()
    keys = keys_of(signer)

    assert verify(signer.sign(claims), keys, issuer=ISSUER) == claims
    assert verify(signer.sign(claims), keys, issuer=ISSUER, audience=AUDIENCE) == claims
    assert looks_like_jwt(signer.sign(claims))
    # RFC 9068 §4: "at+jwt" or "application/at+jwt"; media types ignore case.
    for typ in ("application/at+jwt", "AT+JWT"):
        assert verify(signer.sign(claims, typ=typ), keys, issuer=ISSUER) == claims


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "ES384", "PS256", None, ["ES256"]])
def test_an_algorithm_off_the_allowlist_is_refused_before_any_key(alg: object) -> None:
    header = segment({"alg": alg, "typ": "at+jwt", "kid": "es-key"})
    token = f"{header}.{segment(access_claims())}.{b64url(b'x' * 64)}"

    # read_header needs no key: a forgery costs no JWK Set fetch.
    with pytest.raises(JwtRefused, match=r"is not allowed \(RFC 8725 §3\.1\)"):
        read_header(token)


def test_hs256_with_the_public_key_as_hmac_secret_is_refused(es_signer: Signer) -> None:
    # RFC 8725 §2.1: a verifier that took alg from the token and handed it "the key"
    # would check an HMAC keyed with the public key, which everyone has.
    public_pem = es_signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'at+jwt', 'kid': es_signer.kid})}."
    signing_input += segment(access_claims())
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    refused = refusal(f"{signing_input}.{b64url(mac)}", keys_of(es_signer))

    assert refused.reason == "alg 'HS256' is not allowed (RFC 8725 §3.1)"


@pytest.mark.parametrize("typ", ["JWT", "application/jwt", "at+jwt+x", "", 5, None])
def test_a_wrong_typ_is_refused_before_any_key(es_signer: Signer, typ: object) -> None:
    # pyjwt leaves out a typ of None or "": a token without one.
    token = es_signer.sign(access_claims(), typ=typ)

    with pytest.raises(JwtRefused, match=r"is not at\+jwt \(RFC 9068 §4\)"):
        read_header(token)


@pytest.mark.parametrize("kid", [None, "", ["es-key"], 7])
def test_a_token_without_a_string_kid_is_refused(es_signer: Signer, kid: object) -> None:
    claims = access_claims()
    header = {"alg": "ES256", "typ": "at+jwt"} | ({} if kid is None else {"kid": kid})
    token = es_signer.sign_as_is(header, claims)

    refused = refusal(token, keys_of(es_signer))

    # Recent pyjwt refuses a kid that is no string as it reads the header.
    assert refused.reason in ("no kid", "malformed header: InvalidTokenError")
    # The control: the same hand-made token with our kid is accepted.
    named = es_signer.sign_as_is(header | {"kid": es_signer.kid}, claims)
    assert verify(named, keys_of(es_signer), issuer=ISSUER) == claims


def test_an_unknown_kid_is_named_only_as_shown(es_signer: Signer) -> None:
    secret_looking = "sk_live_0123456789abcdef"
    token = es_signer.sign(access_claims(), kid=secret_looking)

    with pytest.raises(JwtRefused) as refused:
        verify(token, keys_of(es_signer), issuer=ISSUER, shown=lambda value: "<hidden>")

    assert refused.value.reason == "unknown kid <hidden>"
    assert secret_looking not in str(refused.value)
    assert refused.value.kid is None
    # A word of the protocol is named as it is; what the sender made up goes to shown.
    with pytest.raises(JwtRefused, match="typ 'jwt' is not at"):
        read_header(es_signer.sign(access_claims(), typ="JWT"), shown=lambda value: "<hidden>")
    with pytest.raises(JwtRefused, match="typ <hidden> is not at"):
        read_header(es_signer.sign(access_claims(), typ="x-y"), shown=lambda value: "<hidden>")


def test_the_alg_must_be_the_key_s_own(es_signer: Signer, rs_signer: Signer) -> None:
    # Signed with the RSA key, but named as the EC key.
    crossed = rs_signer.sign(access_claims(), kid=es_signer.kid)

    refused = refusal(crossed, keys_of(es_signer, rs_signer))

    assert refused.reason == "alg RS256 is not the key's ES256 (RFC 8725 §2.1)"
    assert refused.kid == es_signer.kid


def test_a_forbidden_alg_or_typ_aimed_at_our_key_names_that_key(es_signer: Signer) -> None:
    """Refused before any key is looked up (RFC 8725 §3.1), and still the refusal says
    which of our keys the forgery named: a log reader sees what was targeted."""
    header = {"kid": es_signer.kid, "typ": "at+jwt"}
    hs256 = jwt.encode(access_claims(), "s" * 32, algorithm="HS256", headers=header)
    plain_jwt = es_signer.sign(access_claims(), typ="JWT")

    for forged in (hs256, plain_jwt):
        assert refusal(forged, keys_of(es_signer)).kid == es_signer.kid
    unknown = jwt.encode(access_claims(), "s" * 32, algorithm="HS256", headers={"kid": "not-ours"})
    assert refusal(unknown, keys_of(es_signer)).kid is None


def test_another_key_under_our_kid_is_refused(es_signer: Signer) -> None:
    intruder = Signer(es_signer.kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    refused = refusal(intruder.sign(access_claims()), keys_of(es_signer))

    assert refused.reason.startswith("InvalidSignatureError")
    assert refused.kid == es_signer.kid


@pytest.mark.parametrize(
    ("changes", "options", "error"),
    [
        ({"iss": "https://evil.example.com"}, {}, "InvalidIssuerError"),
        ({"aud": "https://other.example.com"}, {"audience": AUDIENCE}, "InvalidAudienceError"),
        ({"exp": int(time.time()) - 120}, {"leeway": 30}, "ExpiredSignatureError"),
        ({"nbf": int(time.time()) + 120}, {"leeway": 30}, "ImmatureSignatureError"),
    ],
    ids=["iss", "aud", "exp", "nbf"],
)
def test_each_claim_check_refuses(
    es_signer: Signer, changes: dict[str, Any], options: dict[str, Any], error: str
) -> None:
    token = es_signer.sign(access_claims(**changes))

    assert refusal(token, keys_of(es_signer), **options).reason.startswith(error)


def test_leeway_admits_a_token_just_expired(es_signer: Signer) -> None:
    claims = access_claims(exp=int(time.time()) - 10)
    token = es_signer.sign(claims)

    assert verify(token, keys_of(es_signer), issuer=ISSUER, leeway=30) == claims
    assert refusal(token, keys_of(es_signer)).reason.startswith("ExpiredSignatureError")


@pytest.mark.parametrize("name", VERIFY_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(es_signer: Signer, name: str) -> None:
    token = es_signer.sign(access_claims(**{name: None}))

    assert refusal(token, keys_of(es_signer)).reason.startswith("MissingRequiredClaimError")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "opaque.token",
        "a.b.c.d",
        "é.é.é",
        "a" * (MAX_TOKEN_LENGTH + 1) + ".b.c",
        f"{b64url(b'[' * 5000)}.{segment({})}.{b64url(b's')}",
        f"{b64url(b'not json')}.{segment({})}.{b64url(b's')}",
    ],
    ids=["empty", "opaque", "four-parts", "non-ascii", "too-long", "nested", "not-json"],
)
def test_what_is_no_jwt_at_all_is_refused_as_malformed(es_signer: Signer, token: str) -> None:
    refused = refusal(token, keys_of(es_signer))

    assert refused.malformed
    assert refused.kid is None


def test_a_tampered_payload_is_refused(signer: Signer) -> None:
    header, _, signature = signer.sign(access_claims()).split(".")
    raised = segment(access_claims(sub="admin", scope="admin"))

    refused = refusal(f"{header}.{raised}.{signature}", keys_of(signer))

    assert refused.reason.startswith("InvalidSignatureError")
    assert not refused.malformed


def test_a_verification_key_is_made_only_for_what_its_alg_allows(
    es_signer: Signer, rs_signer: Signer
) -> None:
    """RFC 8725 §3.1, RFC 7518 §3.3, §3.4: whoever builds the keys, the verifier never
    holds a key of the wrong type, curve or size for its alg."""
    es_key, rs_key = es_signer.public_key, rs_signer.public_key
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point
    short_rsa = short.public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    for alg, key in (
        ("ES256", rs_key),
        ("RS256", es_key),
        ("RS256", short_rsa),
        ("ES256", p384),
        ("HS256", es_key),
        ("none", rs_key),
    ):
        with pytest.raises(ValueError, match="kid-1"):
            VerificationKey("kid-1", alg, key)
    assert VerificationKey("kid-1", "ES256", es_key).key is es_key
