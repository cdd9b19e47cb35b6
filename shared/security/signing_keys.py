"""Keys that sign JWT access tokens: loaded from PEM files, published as a JWK Set.

A key is an EC P-256 key (ES256) or an RSA key of at least 2048 bits (RS256), RFC 7518
§3.1. Its ``kid`` is its JWK thumbprint (RFC 7638), so the same key always has the same
id and no operator has to invent one. Its public half is a JWK (RFC 7517 §4, RFC 7518
§6.2 and §6.3) published in the JWK Set at ``/jwks.json`` (RFC 7517 §5).

Rotation: the keys may be a directory of ``*.pem`` files. Every key in the directory is
published and accepted; the one named by TESSERA_SIGNING_KEY signs, by default the file
whose name sorts last. An operator rotates in two steps, so that no service and no
resource server's cached JWK Set meets a token signed by a key it has not seen: add the
new file while TESSERA_SIGNING_KEY names the old one, and restart; once every replica and
cache has the new key, name the new file and restart again. The old file goes once the
last token it signed has expired.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.utils import base64url_encode, to_base64url_uint
from tessera_resource_server.jwt_verification import MIN_RSA_BITS, PublicKey, VerificationKey

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

GENERATED_RSA_BITS = 3072
# RFC 7517 §4 and RFC 7518 §6.2.2, §6.3.2: the members that would give the key away.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class SigningKeyError(ValueError):
    """A key file or directory cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)
    public_jwk: dict[str, str]

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()


@dataclass(frozen=True)
class KeySet:
    """The key that signs new tokens, and every key whose tokens are still accepted."""

    signing: SigningKey
    keys: tuple[SigningKey, ...]

    def __post_init__(self) -> None:
        kids = [key.kid for key in self.keys]
        if self.signing.kid not in kids:
            raise ValueError("the signing key must be one of the key set's keys")
        if len(set(kids)) != len(kids):
            raise ValueError("two keys in the key set have the same kid")

    def by_kid(self, kid: str) -> SigningKey | None:
        for key in self.keys:
            if key.kid == kid:
                return key
        return None

    @cached_property
    def verification_keys(self) -> Mapping[str, VerificationKey]:
        """The public keys by kid, for the JWT verifier (``jwt_access_tokens.verify``)."""
        return {key.kid: VerificationKey(key.kid, key.alg, key.public_key) for key in self.keys}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set document (RFC 7517 §5): public keys only."""
        return {"keys": [dict(key.public_jwk) for key in self.keys]}


def load_key_set(path: str | os.PathLike[str], signing_file: str = "") -> KeySet:
    """Load one PEM private key file, or every ``*.pem`` file of a directory.

    In a directory, hidden files (Kubernetes mounts Secrets with ``..data`` entries) and
    files without the ``.pem`` suffix are ignored; the file named ``signing_file`` signs,
    or when it is empty the file whose name sorts last.
    """
    root = Path(path)
    if root.is_dir():
        try:
            files = sorted(
                (p for p in root.iterdir() if p.suffix == ".pem" and not p.name.startswith(".")),
                key=lambda p: p.name,
            )
        except OSError as exc:
            raise SigningKeyError(f"{root}: cannot list the directory: {exc.strerror}") from exc
        if not files:
            raise SigningKeyError(f"{root}: no *.pem key files in the directory")
    else:
        files = [root]

    loaded: dict[str, Path] = {}
    keys: list[SigningKey] = []
    for file in files:
        key = _load_file(file)
        if key.kid in loaded:
            raise SigningKeyError(
                f"{file}: the same key as {loaded[key.kid].name} (kid {key.kid}); "
                "remove one of the two files"
            )
        loaded[key.kid] = file
        keys.append(key)
    if not signing_file:
        return KeySet(signing=keys[-1], keys=tuple(keys))
    named = [key for key, file in zip(keys, files, strict=True) if file.name == signing_file]
    if not named:
        raise SigningKeyError(
            f"{root}: no key file named {signing_file!r} to sign with (TESSERA_SIGNING_KEY)"
        )
    return KeySet(signing=named[0], keys=tuple(keys))


def generate_key_file(path: Path, alg: str = "ES256") -> SigningKey:
    """Write a new unencrypted PKCS#8 PEM private key, readable by its owner only.

    An existing file is never overwritten: replacing a key would invalidate every token
    it signed.
    """
    private_key: PrivateKey
    if alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
    else:
        raise SigningKeyError(f"{path}: cannot generate a key for {alg!r}: use ES256 or RS256")
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path}: already exists; a key file is never overwritten") from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot create: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), 0o600)  # exactly 0600, whatever the umask
        out.write(pem)
    return _signing_key(private_key, Path(path))


def _load_file(path: Path) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read: {exc.strerror}") from exc
    # One key per file, so that a second key pasted into the same file is not silently
    # ignored (the PEM reader takes the first block).
    if data.count(b"-----BEGIN ") != 1:
        raise SigningKeyError(f"{path}: expected exactly one PEM private key block")
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningKeyError(
            f"{path}: the private key is encrypted; store it unencrypted"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"{path}: not a PEM private key (PKCS#8 PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"
        ) from None
    return _signing_key(private_key, path)


def _signing_key(private_key: object, source: Path) -> SigningKey:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise SigningKeyError(
                f"{source}: EC key on curve {private_key.curve.name}; only P-256 (ES256) is used"
            )
        alg = "ES256"
    elif isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise SigningKeyError(
                f"{source}: RSA key of {private_key.key_size} bits; "
                f"RS256 needs at least {MIN_RSA_BITS} (RFC 7518 §3.3)"
            )
        alg = "RS256"
    else:
        raise SigningKeyError(
            f"{source}: a {type(private_key).__name__}; only EC P-256 and RSA keys are used"
        )
    members = _public_members(private_key.public_key())
    kid = _thumbprint(members)
    public_jwk = {**members, "kid": kid, "alg": alg, "use": "sig"}
    return SigningKey(kid=kid, alg=alg, private_key=private_key, public_jwk=public_jwk)


def _public_members(public_key: PublicKey) -> dict[str, str]:
    """The required public members of the key's JWK (RFC 7638 §3.2)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        # RFC 7518 §6.2.1.2: x and y are the full-length octet strings of SEC1 §2.3.5, which
        # the uncompressed point 04 || X || Y carries. (pyjwt before 2.10 dropped leading
        # zero octets in to_jwk, which gives a wrong thumbprint for about 1 key in 128.)
        point = public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        size = (len(point) - 1) // 2
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": base64url_encode(point[1 : 1 + size]).decode(),
            "y": base64url_encode(point[1 + size :]).decode(),
        }
    numbers = public_key.public_numbers()
    # RFC 7518 §6.3.1: n and e as unsigned big-endian integers in the fewest octets.
    return {
        "kty": "RSA",
        "n": to_base64url_uint(numbers.n).decode(),
        "e": to_base64url_uint(numbers.e).decode(),
    }


def _thumbprint(members: dict[str, str]) -> str:
    """RFC 7638 §3: SHA-256 of the required members as JSON, sorted, without whitespace."""
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()
