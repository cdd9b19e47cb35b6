"""Unit tests: signing keys and their JWK Set (RFC 7517, RFC 7518 §6, RFC 7638), and JWT
access tokens (RFC 9068) signed and verified with them, attacks of RFC 8725 §2 included."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from tessera_resource_server.jwt_verification import VERIFY_CLAIMS, looks_like_jwt

from shared.security.jwt_access_tokens import SIGN_CLAIMS, sign, verify
from shared.security.signing_keys import (
    PRIVATE_MEMBERS,
    KeySet,
    SigningKey,
    SigningKeyError,
    generate_key_file,
    load_key_set,
)
from shared.storage import families

# The RSA key of RFC 7517 Appendix A.2, whose public half is the example of RFC 7638 §3.1.
RFC7517_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
    "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
    "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7517_D = (
    "X4cTteJY_gn4FYPsXB8rdXix5vwsg1FLN5E3EaG6RJoVH-HLLKD9M7dx5oo7GURknchnrRweUkC7hT5fJLM0WbFAK"
    "NLWY2vv7B6NqXSzUvxT0_YSfqijwp3RTzlBaCxWp4doFk5N2o8Gy_nHNKroADIkJ46pRUohsXywbReAdYaMwFs9tv8"
    "d_cPVY3i07a3t8MN6TNwm0dSawm9v47UiCl3Sk5ZiG7xojPLu4sbg1U2jx4IBTNBznbJSzFHK66jT8bgkuqsk0Gjsk"
    "DJk19Z4qwjwbsnn4j2WBii3RL-Us2lGVkY8fkFzme1z0HbIkfz0Y6mqnOYtqc0X4jfcKoAC8Q"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_int(value: str) -> int:
    return int.from_bytes(b64url_decode(value), "big")


def pem(private_key: object, fmt: serialization.PrivateFormat) -> bytes:
    assert isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return private_key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def rfc7517_rsa_key() -> rsa.RSAPrivateKey:
    n, e, d = b64url_int(RFC7517_N), 65537, b64url_int(RFC7517_D)
    p, q = rsa.rsa_recover_prime_factors(n, e, d)
    return rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, n),
    ).private_key()


@pytest.fixture(scope="module")
def rsa_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated RS256 key for the module: RSA generation is slow, copies are not."""
    path = tmp_path_factory.mktemp("rsa") / "rsa.pem"
    generate_key_file(path, "RS256")
    return path


def refused(path: Path) -> str:
    with pytest.raises(SigningKeyError) as caught:
        load_key_set(str(path))
    return str(caught.value)


# --- loading keys ------------------------------------------------------------------------


def test_generated_key_file_is_private_pkcs8_and_loads_as_es256(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    generated = generate_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key_set = load_key_set(str(path))
    assert key_set.keys == (key_set.signing,)
    assert key_set.signing.kid == generated.kid
    assert key_set.signing.alg == "ES256"
    jwk = key_set.signing.public_jwk
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    numbers = key_set.signing.private_key.public_key().public_numbers()
    assert isinstance(numbers, ec.EllipticCurvePublicNumbers)
    assert (b64url_int(jwk["x"]), b64url_int(jwk["y"])) == (numbers.x, numbers.y)
    assert key_set.by_kid(generated.kid) is key_set.signing
    assert key_set.by_kid("no-such-kid") is None


def test_generate_never_overwrites_and_knows_only_es256_and_rs256(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    generate_key_file(path)
    before = path.read_bytes()

    with pytest.raises(SigningKeyError, match="already exists"):
        generate_key_file(path)
    assert path.read_bytes() == before
    with pytest.raises(SigningKeyError, match="HS256"):
        generate_key_file(tmp_path / "other.pem", "HS256")
    assert not (tmp_path / "other.pem").exists()


def test_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    # RFC 7638 §3.1 gives the thumbprint of this key; "RSA PRIVATE KEY" (PKCS#1) PEM.
    path = tmp_path / "rfc.pem"
    path.write_bytes(pem(rfc7517_rsa_key(), serialization.PrivateFormat.TraditionalOpenSSL))
    assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")

    key = load_key_set(str(path)).signing

    assert key.kid == RFC7638_THUMBPRINT
    assert key.alg == "RS256"
    assert key.public_jwk == {
        "kty": "RSA",
        "n": RFC7517_N,
        "e": "AQAB",
        "kid": RFC7638_THUMBPRINT,
        "alg": "RS256",
        "use": "sig",
    }


def test_ec_kid_hashes_the_required_members_in_order(tmp_path: Path) -> None:
    # RFC 7638 §3.2: {"crv","kty","x","y"} in that order, no whitespace. "EC PRIVATE KEY" PEM.
    path = tmp_path / "ec.pem"
    path.write_bytes(
        pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL)
    )
    assert path.read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY-----")

    key = load_key_set(str(path)).signing

    jwk = key.public_jwk
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    assert key.kid == expected.rstrip(b"=").decode()


def test_ec_coordinates_keep_their_leading_zero_octets(tmp_path: Path) -> None:
    # RFC 7518 §6.2.1.2: x and y are always 32 octets for P-256, so a coordinate below
    # 2**248 starts with a zero octet. Scan private scalars 1, 2, ... for such a key.
    scalar = next(
        d
        for d in range(1, 5000)
        if ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers().x < 2**248
    )
    private_key = ec.derive_private_key(scalar, ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(pem(private_key, serialization.PrivateFormat.PKCS8))

    jwk = load_key_set(str(path)).signing.public_jwk

    x = b64url_decode(jwk["x"])
    assert len(x) == 32
    assert x[0] == 0
    assert int.from_bytes(x, "big") == private_key.public_key().public_numbers().x
    assert len(b64url_decode(jwk["y"])) == 32


def test_directory_signing_key_is_the_last_by_name(tmp_path: Path, rsa_key_file: Path) -> None:
    # Created out of order, so only the names decide.
    middle = generate_key_file(tmp_path / "2026-01-01.pem")
    shutil.copy(rsa_key_file, tmp_path / "2026-06-01.pem")
    first = generate_key_file(tmp_path / "2025-12-01.pem")
    # Not keys: ignored, though they would not load.
    (tmp_path / "README.txt").write_text("rotate by adding a file that sorts later\n")
    (tmp_path / ".2027-01-01.pem").write_text("not a key\n")
    (tmp_path / "2027-01-01.pem.bak").write_text("not a key\n")

    key_set = load_key_set(str(tmp_path))

    last = load_key_set(str(tmp_path / "2026-06-01.pem")).signing
    assert key_set.signing.kid == last.kid
    assert key_set.signing.alg == "RS256"
    assert [key.kid for key in key_set.keys] == [first.kid, middle.kid, last.kid]
    assert [jwk["kid"] for jwk in key_set.jwks()["keys"]] == [first.kid, middle.kid, last.kid]
    assert [jwk["alg"] for jwk in key_set.jwks()["keys"]] == ["ES256", "ES256", "RS256"]


def test_jwks_publishes_public_members_only(tmp_path: Path, rsa_key_file: Path) -> None:
    generate_key_file(tmp_path / "a.pem")
    shutil.copy(rsa_key_file, tmp_path / "b.pem")
    key_set = load_key_set(str(tmp_path))

    jwks = key_set.jwks()

    assert [set(jwk) for jwk in jwks["keys"]] == [
        {"kty", "crv", "x", "y", "kid", "alg", "use"},
        {"kty", "n", "e", "kid", "alg", "use"},
    ]
    for jwk in jwks["keys"]:
        assert not set(jwk) & PRIVATE_MEMBERS
        assert not set(jwk) & {"d", "p", "q", "dp", "dq", "qi"}
        assert jwk["use"] == "sig"
    # A resource server reads the set with an ordinary JOSE library: the keys parse.
    parsed = jwt.PyJWKSet.from_dict(jwks)
    assert [key.key_id for key in parsed.keys] == [key.kid for key in key_set.keys]
    # The published set is a copy: changing it changes nothing in the key set.
    jwks["keys"][0]["d"] = "leaked"
    assert "d" not in key_set.jwks()["keys"][0]


@pytest.mark.parametrize(
    ("make_key", "problem"),
    [
        (lambda: ec.generate_private_key(ec.SECP384R1()), "secp384r1"),
        (
            # The point of the test: a key too short to sign with.
            lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505
            "1024 bits",
        ),
    ],
    ids=["ec-p384", "rsa-1024"],
)
def test_unsupported_key_types_are_refused(
    tmp_path: Path, make_key: Callable[[], object], problem: str
) -> None:
    path = tmp_path / "weak.pem"
    path.write_bytes(pem(make_key(), serialization.PrivateFormat.PKCS8))

    message = refused(path)

    assert "weak.pem" in message
    assert problem in message


def test_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ed.pem"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    message = refused(path)

    assert "ed.pem" in message
    assert "only EC P-256 and RSA" in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "exactly one PEM"),
        (b"garbage\x00\xff not a key", "exactly one PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", "not a PEM"),
    ],
    ids=["empty", "garbage", "bad-der"],
)
def test_malformed_files_are_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)

    message = refused(path)

    assert "bad.pem" in message
    assert problem in message


def test_public_encrypted_and_doubled_pems_are_refused(tmp_path: Path) -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "public.pem"
    public.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    doubled = tmp_path / "doubled.pem"
    doubled.write_bytes(pem(private_key, serialization.PrivateFormat.PKCS8) * 2)

    assert "not a PEM private key" in refused(public)
    assert "encrypted" in refused(encrypted)
    assert "exactly one PEM" in refused(doubled)


def test_missing_unreadable_and_empty_sources_are_refused(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path / "absent.pem")

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no keys here\n")
    message = refused(tmp_path / "empty")
    assert "empty" in message
    assert "no *.pem" in message

    # A .pem entry that is not a file is a mistake to report, not to skip.
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "key.pem").mkdir()
    message = refused(tmp_path / "odd")
    assert "key.pem" in message
    assert "cannot read" in message


def test_the_same_key_twice_is_refused(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "a.pem")
    shutil.copy(tmp_path / "a.pem", tmp_path / "b.pem")

    message = refused(tmp_path)

    assert "b.pem" in message
    assert "a.pem" in message
    assert "same key" in message


def test_key_set_checks_its_own_invariants(tmp_path: Path) -> None:
    one = generate_key_file(tmp_path / "one.pem")
    two = generate_key_file(tmp_path / "two.pem")

    with pytest.raises(ValueError, match="signing key"):
        KeySet(signing=one, keys=(two,))
    with pytest.raises(ValueError, match="same kid"):
        KeySet(signing=one, keys=(one, one))


# --- JWT access tokens (RFC 9068) --------------------------------------------------------

ISSUER = "https://id.example.com"
AUDIENCE = "https://api.example.com"


def access_claims(**changes: object) -> dict[str, object]:
    """The claims the token endpoint puts in a token; a change to None drops the claim."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": "9f1c2d3e4b5a",
        "client_id": "c0ffee",
        "scope": "orders:read orders:write",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: object) -> str:
    return b64url(json.dumps(value).encode())


def encode(key: SigningKey, claims: dict[str, object], **header: object) -> str:
    """A token signed with the key's own private key and algorithm, header as given."""
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers=headers)


def hand_signed(key: SigningKey, header: Mapping[str, object], claims: Mapping[str, object]) -> str:
    """A token with exactly this header, validly signed: for headers pyjwt will not write."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    algorithm = jwt.algorithms.get_default_algorithms()[key.alg]
    return f"{signing_input}.{b64url(algorithm.sign(signing_input.encode(), key.private_key))}"


def accepted(
    key_set: KeySet, token: str, *, audience: str | None = None, leeway: int = 0
) -> dict[str, object] | None:
    return verify(key_set, token, issuer=ISSUER, audience=audience, leeway=leeway)


@pytest.fixture
def es_keys(tmp_path: Path) -> KeySet:
    generate_key_file(tmp_path / "es.pem")
    return load_key_set(str(tmp_path / "es.pem"))


@pytest.fixture
def rs_keys(rsa_key_file: Path) -> KeySet:
    return load_key_set(str(rsa_key_file))


@pytest.fixture(params=["ES256", "RS256"])
def key_set(request: pytest.FixtureRequest, es_keys: KeySet, rs_keys: KeySet) -> KeySet:
    return es_keys if request.param == "ES256" else rs_keys


def test_sign_and_verify_round_trip(key_set: KeySet) -> None:
    claims = access_claims()

    token = sign(key_set, claims)

    assert looks_like_jwt(token)
    assert jwt.get_unverified_header(token) == {
        "typ": "at+jwt",  # RFC 9068 §2.1
        "alg": key_set.signing.alg,
        "kid": key_set.signing.kid,
    }
    assert accepted(key_set, token) == claims
    assert accepted(key_set, token, audience=AUDIENCE) == claims
    # The scope claim stays a space-separated string (RFC 9068 §2.2.3).
    assert jwt.decode(token, options={"verify_signature": False})["scope"] == claims["scope"]


def test_a_resource_server_verifies_with_the_published_jwks(key_set: KeySet) -> None:
    token = sign(key_set, access_claims())
    published = jwt.PyJWKSet.from_dict(json.loads(json.dumps(key_set.jwks())))

    key = published[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key.key, algorithms=[key_set.signing.alg], audience=AUDIENCE)

    assert claims["sub"] == "alice"


def test_sign_requires_the_rfc9068_claims(es_keys: KeySet) -> None:
    for name in SIGN_CLAIMS:
        with pytest.raises(ValueError, match=name):
            sign(es_keys, access_claims(**{name: None}))
    with pytest.raises(ValueError, match="space-separated"):
        sign(es_keys, access_claims(scope=["orders:read", "orders:write"]))


def test_verify_accepts_the_full_media_type_and_an_audience_list(es_keys: KeySet) -> None:
    key = es_keys.signing
    claims = access_claims(aud=["https://other.example.com", AUDIENCE])

    # RFC 9068 §4: "at+jwt" or "application/at+jwt"; media types ignore case.
    for typ in ("application/at+jwt", "AT+JWT"):
        assert accepted(es_keys, encode(key, claims, typ=typ), audience=AUDIENCE) == claims


def test_token_signed_by_another_key_under_our_kid_is_refused(es_keys: KeySet) -> None:
    intruder = ec.generate_private_key(ec.SECP256R1())
    claims = access_claims()
    forged = jwt.encode(
        claims,
        intruder,
        algorithm="ES256",
        headers={"typ": "at+jwt", "kid": es_keys.signing.kid},
    )

    assert accepted(es_keys, forged) is None
    assert accepted(es_keys, encode(es_keys.signing, claims)) == claims  # the control


def test_unknown_or_missing_kid_is_refused(es_keys: KeySet, tmp_path: Path) -> None:
    other = generate_key_file(tmp_path / "other.pem")
    claims = access_claims()

    assert accepted(es_keys, encode(other, claims)) is None
    headerless = jwt.encode(claims, es_keys.signing.private_key, "ES256", {"typ": "at+jwt"})
    assert "kid" not in jwt.get_unverified_header(headerless)
    assert accepted(es_keys, headerless) is None
    listed = {"alg": "ES256", "typ": "at+jwt", "kid": [es_keys.signing.kid]}
    assert accepted(es_keys, hand_signed(es_keys.signing, listed, claims)) is None
    # The control: the same hand-made token with a string kid is accepted.
    named = {"alg": "ES256", "typ": "at+jwt", "kid": es_keys.signing.kid}
    assert accepted(es_keys, hand_signed(es_keys.signing, named, claims)) == claims


def test_alg_none_is_refused(key_set: KeySet) -> None:
    payload = segment(access_claims())
    for alg in ("none", "None", "NONE"):
        header = segment({"alg": alg, "typ": "at+jwt", "kid": key_set.signing.kid})
        assert accepted(key_set, f"{header}.{payload}.") is None
        # The same with a signature that a careless verifier would ignore.
        assert accepted(key_set, f"{header}.{payload}.{b64url(b'x' * 64)}") is None


def test_hs256_with_the_public_key_as_hmac_secret_is_refused(key_set: KeySet) -> None:
    # RFC 8725 §2.1: a verifier that takes alg from the token and hands it "the key"
    # would check an HMAC keyed with the public key, which everyone has.
    public = key_set.signing.public_key
    secrets = [
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(key_set.signing.public_jwk).encode(),
    ]
    payload = segment(access_claims())
    header = segment({"alg": "HS256", "typ": "at+jwt", "kid": key_set.signing.kid})
    signing_input = f"{header}.{payload}".encode()
    for secret in secrets:
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        assert accepted(key_set, f"{header}.{payload}.{b64url(mac)}") is None


def test_rs256_token_under_an_es256_kid_is_refused(tmp_path: Path, rsa_key_file: Path) -> None:
    shutil.copy(rsa_key_file, tmp_path / "a.pem")
    generate_key_file(tmp_path / "b.pem")
    key_set = load_key_set(str(tmp_path))
    rs_key, es_key = key_set.keys
    assert (rs_key.alg, es_key.alg) == ("RS256", "ES256")
    claims = access_claims()

    # Signed with a key of the set, but named as the ES256 key.
    crossed = jwt.encode(claims, rs_key.private_key, "RS256", {"typ": "at+jwt", "kid": es_key.kid})

    assert accepted(key_set, crossed) is None
    assert accepted(key_set, encode(rs_key, claims)) == claims  # the control


def test_expired_token_is_refused_unless_within_leeway(es_keys: KeySet) -> None:
    now = int(time.time())
    claims = access_claims(iat=now - 400, exp=now - 30)
    token = sign(es_keys, claims)

    assert accepted(es_keys, token) is None
    assert accepted(es_keys, token, leeway=60) == claims


def test_token_not_yet_valid_is_refused(es_keys: KeySet) -> None:
    token = encode(es_keys.signing, access_claims(nbf=int(time.time()) + 600))

    assert accepted(es_keys, token) is None


def test_wrong_issuer_is_refused(es_keys: KeySet) -> None:
    for issuer in ("https://evil.example.com", ISSUER + "/", ISSUER.upper()):
        token = sign(es_keys, access_claims(iss=issuer))
        assert accepted(es_keys, token) is None


def test_audience_is_checked_when_given(es_keys: KeySet) -> None:
    claims = access_claims(aud="https://other.example.com")
    token = sign(es_keys, claims)

    assert accepted(es_keys, token, audience=AUDIENCE) is None
    assert accepted(es_keys, token, audience="https://other.example.com") == claims
    assert accepted(es_keys, token) == claims  # no audience asked for: any


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt+x", "application/jwt", "", 5, None])
def test_wrong_typ_is_refused(es_keys: KeySet, typ: object) -> None:
    key = es_keys.signing
    header: dict[str, object] = {"alg": "ES256", "kid": key.kid}
    if typ is not None:
        header["typ"] = typ

    assert accepted(es_keys, hand_signed(key, header, access_claims())) is None


@pytest.mark.parametrize("name", VERIFY_CLAIMS)
def test_token_missing_a_required_claim_is_refused(es_keys: KeySet, name: str) -> None:
    assert set(VERIFY_CLAIMS) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id"}
    token = encode(es_keys.signing, access_claims(**{name: None}))

    assert accepted(es_keys, token) is None


def test_tampered_tokens_are_refused(key_set: KeySet) -> None:
    claims = access_claims()
    token = sign(key_set, claims)
    header, payload, signature = token.split(".")

    raised = segment(access_claims(sub="admin", scope="admin"))
    retyped = segment(jwt.get_unverified_header(token) | {"typ": "application/at+jwt"})
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]

    assert accepted(key_set, f"{header}.{raised}.{signature}") is None
    assert accepted(key_set, f"{retyped}.{payload}.{signature}") is None
    assert accepted(key_set, f"{header}.{payload}.{flipped}") is None
    assert accepted(key_set, f"{header}.{payload}.") is None
    assert accepted(key_set, token) == claims  # the control


def test_garbage_is_refused_without_raising(es_keys: KeySet) -> None:
    kid = es_keys.signing.kid
    payload = segment(access_claims())
    signature = b64url(b"s" * 64)
    garbage = [
        "",
        " ",
        "a",
        "a.b",
        "..",
        "a.b.c",
        "a.b.c.d",
        "eyJ.eyJ.eyJ",
        "====.====.====",
        "é.é.é",
        "a\x00.b.c",
        "Bearer a.b.c",
        "a" * 100_000 + ".b.c",
        ".".join(["a" * 50_000] * 3),
        families.new_value(families.new_family(), 32),  # an opaque token
        f"{b64url(b'[' * 5000)}.{payload}.{signature}",  # deeply nested header
        f"{b64url(b'not json')}.{payload}.{signature}",
        f"{segment(['alg', 'ES256'])}.{payload}.{signature}",
        f"{segment({'alg': 'ES256', 'typ': 'at+jwt', 'kid': {'k': 1}})}.{payload}.{signature}",
        f"{segment({'alg': ['ES256'], 'typ': 'at+jwt', 'kid': kid})}.{payload}.{signature}",
        f"{segment({'alg': 'ES256', 'typ': ['at+jwt'], 'kid': kid})}.{payload}.{signature}",
        f"{segment({'alg': 'ES256', 'typ': 'at+jwt', 'kid': kid})}.{payload}.{signature}",
        f"{segment({'alg': 'ES256', 'typ': 'at+jwt', 'kid': kid})}.{payload}.%%%",
        f"{segment({'alg': 'ES256', 'typ': 'at+jwt', 'kid': kid})}.{payload}.{signature}=",
        f"{segment({'alg': 'ES256', 'typ': 'at+jwt', 'kid': kid, 'b64': False})}..{signature}",
    ]
    for token in garbage:
        assert accepted(es_keys, token) is None, token[:80]
        assert accepted(es_keys, token, audience=AUDIENCE) is None, token[:80]


def test_mutated_tokens_never_raise(key_set: KeySet) -> None:
    claims = access_claims()
    token = sign(key_set, claims)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é\x00"
    chance = random.Random(9068)
    unchanged = 0
    for _ in range(400):
        chars = list(token)
        for _ in range(chance.randint(1, 3)):
            chars[chance.randrange(len(chars))] = chance.choice(alphabet)
        mutated = "".join(chars)[: chance.randint(1, len(chars))]
        result = accepted(key_set, mutated)
        # Only a change to the spare bits of the signature's last base64 character can
        # leave the token meaning the same bytes; anything else must be refused.
        if result is not None:
            assert result == claims
            assert mutated.rsplit(".", 1)[0] == token.rsplit(".", 1)[0]
            unchanged += 1
    assert unchanged < 20


def test_old_tokens_verify_after_rotation_and_new_ones_carry_the_new_kid(
    tmp_path: Path,
) -> None:
    old_key = generate_key_file(tmp_path / "2026-01-01.pem")
    before = load_key_set(str(tmp_path))
    old_claims = access_claims(jti="old")
    old_token = sign(before, old_claims)
    assert jwt.get_unverified_header(old_token)["kid"] == old_key.kid

    new_key = generate_key_file(tmp_path / "2026-12-01.pem")
    after = load_key_set(str(tmp_path))
    new_claims = access_claims(jti="new")
    new_token = sign(after, new_claims)

    assert after.signing.kid == new_key.kid != old_key.kid
    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert accepted(after, old_token) == old_claims
    assert accepted(after, new_token) == new_claims
    assert [jwk["kid"] for jwk in after.jwks()["keys"]] == [old_key.kid, new_key.kid]
    # A replica still on the old set does not know the new key.
    assert accepted(before, new_token) is None

    # Once the operator removes the old file, its tokens are no longer accepted.
    (tmp_path / "2026-01-01.pem").unlink()
    retired = load_key_set(str(tmp_path))
    assert accepted(retired, old_token) is None
    assert accepted(retired, new_token) == new_claims


def test_a_new_key_is_published_before_it_signs(tmp_path: Path) -> None:
    # Step one of a rotation: the new key is in the directory, the old one still signs
    # (TESSERA_SIGNING_KEY), so every replica and cache can learn the new key first.
    old_key = generate_key_file(tmp_path / "2026-01-01.pem")
    new_key = generate_key_file(tmp_path / "2026-12-01.pem")

    published = load_key_set(str(tmp_path), "2026-01-01.pem")
    assert published.signing.kid == old_key.kid
    assert [jwk["kid"] for jwk in published.jwks()["keys"]] == [old_key.kid, new_key.kid]
    token = sign(published, access_claims(jti="during"))
    assert jwt.get_unverified_header(token)["kid"] == old_key.kid

    # Step two: the new key signs; what the old one signed still verifies.
    switched = load_key_set(str(tmp_path), "2026-12-01.pem")
    assert switched.signing.kid == new_key.kid
    assert accepted(switched, token) is not None

    with pytest.raises(SigningKeyError, match=r"no key file named '2027-01-01\.pem'"):
        load_key_set(str(tmp_path), "2027-01-01.pem")


def test_looks_like_jwt_tells_jwts_from_opaque_tokens(es_keys: KeySet) -> None:
    assert looks_like_jwt(sign(es_keys, access_claims()))
    assert looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")  # unsecured: still a JWT
    assert not looks_like_jwt(families.new_value(families.new_family(), 32))
    for value in ("", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.c\n", "a b.c.d", "é.b.c"):
        assert not looks_like_jwt(value), value


def test_refusals_are_logged_without_the_token(
    es_keys: KeySet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = sign(es_keys, access_claims(iss="https://evil.example.com"))
    header, payload, signature = token.split(".")
    stranger = generate_key_file(tmp_path / "stranger.pem")
    refusals = {
        "InvalidIssuerError": token,
        "InvalidSignatureError": sign(es_keys, access_claims())[:-4] + "AAAA",
        "unknown kid": encode(stranger, access_claims()),
        "malformed header": f"{b64url(b'{not json')}.{payload}.{signature}",
        "not a compact JWS": f"{header}.{payload}",
    }

    for reason, refused_token in refusals.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tessera.jwt"):
            assert accepted(es_keys, refused_token) is None
        messages = [r.getMessage() for r in caplog.records if r.name == "tessera.jwt"]
        assert len(messages) == 1, reason
        assert reason in messages[0]
        for part in refused_token.split("."):
            assert part not in messages[0], reason
