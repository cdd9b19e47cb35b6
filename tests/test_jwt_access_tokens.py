"""Unit tests: signing keys and their JWK Set (RFC 7517, RFC 7518 §6, RFC 7638)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from shared.signing_keys import (
    PRIVATE_MEMBERS,
    KeySet,
    SigningKeyError,
    generate_key_file,
    load_key_set,
)

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
