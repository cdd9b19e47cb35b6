"""Fixtures: an ES256 and an RS256 signing key (tests/signers.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from signers import Signer


@pytest.fixture(scope="session")
def es_signer() -> Signer:
    return Signer("es-key", "ES256", ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="session")
def rs_signer() -> Signer:
    # One RSA key for the session: generating one is slow.
    return Signer("rs-key", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(params=["ES256", "RS256"])
def signer(request: pytest.FixtureRequest, es_signer: Signer, rs_signer: Signer) -> Signer:
    return es_signer if request.param == "ES256" else rs_signer
