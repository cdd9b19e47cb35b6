"""Reading a JWK Set (RFC 7517 §5): the keys a resource server may verify with, and the
ones it skips (RFC 7518 §3.1, §3.3, §3.4; RFC 8725 §3.1)."""

from __future__ import annotations

import logging
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from signers import Signer

from tessera_resource_server.jwks import parse_jwks


def test_the_signing_keys_are_read_by_kid(es_signer: Signer, rs_signer: Signer) -> None:
    keys = parse_jwks({"keys": [es_signer.jwk(), rs_signer.jwk()]})

    assert set(keys) == {es_signer.kid, rs_signer.kid}
    assert keys[es_signer.kid] == es_signer.verification_key
    assert keys[rs_signer.kid].alg == "RS256"


def test_a_key_without_alg_gets_its_type_s_algorithm(es_signer: Signer) -> None:
    # RFC 7517 §4.4: "alg" is optional.
    jwk = {name: value for name, value in es_signer.jwk().items() if name != "alg"}

    assert parse_jwks({"keys": [jwk]})[es_signer.kid].alg == "ES256"


def weak_rsa_jwk() -> dict[str, Any]:
    # The point: a key too short to verify with.
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    return Signer("weak", "RS256", key).jwk()


@pytest.mark.parametrize(
    ("make_jwk", "logged"),
    [
        (lambda es: {**es.jwk(), "kid": None}, "without a kid"),
        (lambda es: {**es.jwk(), "use": "enc"}, "not an allowed signing key"),
        (lambda es: {**es.jwk(), "alg": "HS256"}, "not an allowed signing key"),
        (lambda es: {**es.jwk(), "alg": ["ES256"]}, "not an allowed signing key"),
        (lambda es: {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}, "not an allowed signing key"),
        (
            lambda es: {
                **Signer("p384", "ES256", ec.generate_private_key(ec.SECP384R1())).jwk(),
                "alg": "ES256",
            },
            "not an allowed signing key",
        ),
        (lambda es: {**es.jwk(), "x": "not-a-coordinate"}, "cannot be read"),
        (lambda es: weak_rsa_jwk(), "shorter than 2048 bits"),
    ],
    ids=["no-kid", "use-enc", "hs256", "alg-list", "oct", "p384", "bad-x", "rsa-1024"],
)
def test_an_unusable_key_is_skipped_with_a_log_line(
    es_signer: Signer, make_jwk: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tessera.resource_server"):
        keys = parse_jwks({"keys": [make_jwk(es_signer), es_signer.jwk()]})

    assert list(keys) == [es_signer.kid]  # the good key beside it is still read
    assert logged in caplog.text


def test_a_private_key_in_the_set_is_not_used(caplog: pytest.LogCaptureFixture) -> None:
    # RFC 7518 §6.2.2: with "d", the JWK is the private key, which pyjwt reads as such.
    private = jwt.get_algorithm_by_name("ES256").to_jwk(
        ec.generate_private_key(ec.SECP256R1()), as_dict=True
    )
    assert "d" in private
    jwk = {**private, "kid": "leaked", "alg": "ES256", "use": "sig"}

    with caplog.at_level(logging.WARNING, logger="tessera.resource_server"):
        keys = parse_jwks({"keys": [jwk]})

    assert keys == {}
    assert "is not a public key" in caplog.text


@pytest.mark.parametrize("document", [{}, {"keys": "none"}, {"keys": [None, 5]}])
def test_a_set_without_a_list_of_keys_gives_none(document: dict[str, Any]) -> None:
    assert parse_jwks(document) == {}
