"""Unit tests: settings read from the environment (DESIGN "Configuration") and PKCE
(RFC 7636 §4.1, §4.2, §4.6, Appendix B)."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path

import pytest
from argon2.profiles import RFC_9106_LOW_MEMORY as ARGON2_CFFI_RFC_9106_LOW_MEMORY

from shared.config.settings import (
    WEAK_HASHING_FOR_TESTS,
    Settings,
    SettingsError,
    password_hashing_from_env,
)
from shared.domain.password_hashing import RFC_9106_LOW_MEMORY, PasswordHashing
from shared.domain.rates import OFF, Rate
from shared.security import crypto, pkce

HTTPS = {"TESSERA_ISSUER": "https://id.example.com"}


def refused(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    return str(caught.value)


# --- settings ----------------------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings.from_env(HTTPS)

    assert settings.issuer == "https://id.example.com"
    assert settings.code_lifetime == 600
    assert settings.access_token_lifetime == 3600
    assert settings.require_pkce_public is True
    assert settings.insecure_loopback is False
    assert settings.cookie_secure is True
    assert settings.token_endpoint == "https://id.example.com/token"
    assert settings.introspection_endpoint == "https://id.example.com/introspect"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_values_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TESSERA_ISSUER": "https://id.example.com/",
            "TESSERA_CODE_LIFETIME": "120",
            "TESSERA_ACCESS_TOKEN_LIFETIME": "900",
            "TESSERA_REQUIRE_PKCE_PUBLIC": "off",
            "REDIS_URL": "redis://redis.example:6380/2",
        }
    )

    assert settings.issuer == "https://id.example.com"  # trailing slash dropped
    assert settings.code_lifetime == 120
    assert settings.access_token_lifetime == 900
    assert settings.require_pkce_public is False
    assert settings.redis_url == "redis://redis.example:6380/2"


def test_missing_issuer() -> None:
    for env in ({}, {"TESSERA_ISSUER": ""}):
        message = refused(env)
        assert "TESSERA_ISSUER" in message
        assert "required" in message


def test_plain_http_issuer_without_the_development_switch() -> None:
    for issuer in ("http://127.0.0.1:8000", "http://localhost:8000", "http://id.example.com"):
        message = refused({"TESSERA_ISSUER": issuer})
        assert message.startswith("TESSERA_ISSUER=")
        assert "https" in message
        assert "TESSERA_INSECURE_LOOPBACK" in message


def test_http_non_loopback_issuer_even_with_the_development_switch() -> None:
    for issuer in ("http://id.example.com", "http://10.0.0.5:8000", "http://127.0.0.1.nip.io"):
        message = refused({"TESSERA_ISSUER": issuer, "TESSERA_INSECURE_LOOPBACK": "1"})
        assert message.startswith("TESSERA_ISSUER=")
        assert "loopback" in message


def test_http_endpoint_off_loopback_is_refused_too() -> None:
    message = refused({**HTTPS, "TESSERA_TOKEN_ENDPOINT": "http://id.example.com/token"})
    assert message.startswith("TESSERA_TOKEN_ENDPOINT=")


def test_loopback_http_with_the_development_switch_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="tessera.settings"):
        for issuer in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
            settings = Settings.from_env(
                {"TESSERA_ISSUER": issuer, "TESSERA_INSECURE_LOOPBACK": "true"}
            )
            assert settings.insecure_loopback is True
            assert settings.cookie_secure is False

    assert any("TESSERA_INSECURE_LOOPBACK" in r.getMessage() for r in caplog.records)


def test_issuer_that_is_not_an_absolute_url() -> None:
    for issuer in ("id.example.com", "ftp://id.example.com", "https://"):
        assert refused({"TESSERA_ISSUER": issuer}).startswith("TESSERA_ISSUER=")


def test_issuer_with_a_path() -> None:
    # Pages and metadata are served at the root of the issuer's host (RFC 8414 §3).
    for issuer in ("https://id.example.com/tenant", "https://id.example.com/a/b/"):
        message = refused({"TESSERA_ISSUER": issuer})
        assert message.startswith("TESSERA_ISSUER=")
        assert "must not have a path" in message
    assert Settings.from_env({"TESSERA_ISSUER": "https://id.example.com/"}).issuer == (
        "https://id.example.com"
    )


def test_logo_url_must_be_https() -> None:
    for logo in ("http://cdn.example.com/logo.png", "logo.png", "javascript:alert(1)"):
        message = refused({**HTTPS, "TESSERA_APPROVAL_LOGO_URL": logo})
        assert message.startswith("TESSERA_APPROVAL_LOGO_URL=")
        assert "https" in message
    logo = "https://cdn.example.com/logo.png"
    assert Settings.from_env({**HTTPS, "TESSERA_APPROVAL_LOGO_URL": logo}).approval_logo_url == logo


def test_template_dir_must_be_an_existing_directory(tmp_path: Path) -> None:
    assert Settings.from_env(HTTPS).template_dir == ""
    assert Settings.from_env({**HTTPS, "TESSERA_TEMPLATE_DIR": ""}).template_dir == ""
    a_file = tmp_path / "login.html"
    a_file.write_text("{{ brand.title }}")
    for value in (str(tmp_path / "missing"), str(a_file)):
        message = refused({**HTTPS, "TESSERA_TEMPLATE_DIR": value})
        assert message.startswith("TESSERA_TEMPLATE_DIR=")
        assert "not an existing, readable directory" in message
    chosen = Settings.from_env({**HTTPS, "TESSERA_TEMPLATE_DIR": str(tmp_path)})
    assert chosen.template_dir == str(tmp_path)


def test_issuer_with_query_or_fragment() -> None:
    # RFC 8414 §2
    for issuer in ("https://id.example.com?tenant=a", "https://id.example.com#x"):
        message = refused({"TESSERA_ISSUER": issuer})
        assert message.startswith("TESSERA_ISSUER=")
        assert "query or fragment" in message


def test_bad_integer_lifetime() -> None:
    for name in (
        "TESSERA_CODE_LIFETIME",
        "TESSERA_ACCESS_TOKEN_LIFETIME",
        "TESSERA_REFRESH_TOKEN_LIFETIME",
        "TESSERA_INTERACTION_LIFETIME",
        "TESSERA_SESSION_LIFETIME",
    ):
        for raw in ("ten", "1.5", "", "60s"):
            message = refused({**HTTPS, name: raw})
            assert message.startswith(f"{name}=")
            assert repr(raw) in message
            assert "whole number" in message
        for raw in ("0", "-600"):
            message = refused({**HTTPS, name: raw})
            assert message.startswith(f"{name}=")
            assert "at least 1 (seconds)" in message


def test_bad_boolean() -> None:
    for name in ("TESSERA_REQUIRE_PKCE_PUBLIC", "TESSERA_INSECURE_LOOPBACK"):
        for raw in ("maybe", "2", "enabled", ""):
            message = refused({**HTTPS, name: raw})
            assert message.startswith(f"{name}=")
            assert "true/false" in message


def test_boolean_spellings() -> None:
    for raw in ("1", "true", "YES", " on "):
        assert Settings.from_env({**HTTPS, "TESSERA_REQUIRE_PKCE_PUBLIC": raw}).require_pkce_public
    for raw in ("0", "False", "no", "OFF"):
        settings = Settings.from_env({**HTTPS, "TESSERA_REQUIRE_PKCE_PUBLIC": raw})
        assert settings.require_pkce_public is False


def test_bad_log_level() -> None:
    message = refused({**HTTPS, "TESSERA_LOG_LEVEL": "LOUD"})
    assert message.startswith("TESSERA_LOG_LEVEL=")
    assert "DEBUG" in message


def test_sign_in_limits() -> None:
    """README "Sign-in limits": the defaults, and each read from the environment."""
    defaults = Settings.from_env(HTTPS)
    assert (defaults.login_pair_rate, defaults.login_address_rate) == (
        Rate(5, 900),
        Rate(30, 900),
    )
    assert defaults.login_username_rate == Rate(10, 900)
    assert defaults.login_username_pace == 60
    assert defaults.login_known_address_lifetime == 30 * 24 * 3600
    assert (defaults.password_check_threads, defaults.password_check_queue) == (2, 8)

    settings = Settings.from_env(
        {
            **HTTPS,
            "TESSERA_LOGIN_PAIR_RATE": "3/600",
            "TESSERA_LOGIN_ADDRESS_RATE": "off",
            "TESSERA_LOGIN_USERNAME_RATE": "20/3600",
            "TESSERA_LOGIN_USERNAME_PACE": "120",
            "TESSERA_LOGIN_KNOWN_ADDRESS_LIFETIME": "86400",
            "TESSERA_PASSWORD_CHECK_THREADS": "4",
            "TESSERA_PASSWORD_CHECK_QUEUE": "0",
        }
    )
    assert (settings.login_pair_rate, settings.login_address_rate) == (Rate(3, 600), OFF)
    assert (settings.login_username_rate, settings.login_username_pace) == (Rate(20, 3600), 120)
    assert settings.login_known_address_lifetime == 86400
    assert (settings.password_check_threads, settings.password_check_queue) == (4, 0)

    assert "TESSERA_LOGIN_PAIR_RATE" in refused({**HTTPS, "TESSERA_LOGIN_PAIR_RATE": "5"})
    assert "TESSERA_LOGIN_USERNAME_PACE" in refused({**HTTPS, "TESSERA_LOGIN_USERNAME_PACE": "0"})
    assert "TESSERA_PASSWORD_CHECK_THREADS" in refused(
        {**HTTPS, "TESSERA_PASSWORD_CHECK_THREADS": "0"}
    )


def test_the_replaced_login_failure_settings_are_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Still set from an older release's configuration, they would silently do nothing."""
    with caplog.at_level(logging.WARNING, logger="tessera.settings"):
        Settings.from_env({**HTTPS, "TESSERA_LOGIN_MAX_FAILURES": "10"})
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith("TESSERA_LOGIN_MAX_FAILURES is no longer read; see ")
    assert "TESSERA_LOGIN_PAIR_RATE" in warning


def test_passwords_are_hashed_with_rfc_9106_s_second_recommended_set_by_default() -> None:
    """RFC 9106 §4: where 2 GiB a check is too much, argon2id with t=3 passes, p=4 lanes,
    64 MiB, a 128-bit salt and a 256-bit tag. Only the tests lower it."""
    rfc_9106 = PasswordHashing(time_cost=3, memory_kib=2**16, parallelism=4)
    assert Settings.from_env(HTTPS).password_hashing == rfc_9106
    assert password_hashing_from_env({}) == rfc_9106
    assert RFC_9106_LOW_MEMORY == rfc_9106
    profile = ARGON2_CFFI_RFC_9106_LOW_MEMORY  # argon2-cffi's own spelling of the set
    assert (profile.time_cost, profile.memory_cost, profile.parallelism) == (3, 2**16, 4)

    params, salt, tag = crypto.hash_password("a long password").rsplit("$", 3)[-3:]
    assert params == "m=65536,t=3,p=4"
    assert len(base64.b64decode(salt + "==")) * 8 == 128
    assert len(base64.b64decode(tag + "==")) * 8 == 256


def test_password_hash_parameters_are_read_and_validated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cheap = {
        "TESSERA_PASSWORD_HASH_TIME_COST": "1",
        "TESSERA_PASSWORD_HASH_MEMORY_KIB": "16",
        "TESSERA_PASSWORD_HASH_PARALLELISM": "2",
        WEAK_HASHING_FOR_TESTS: "1",
    }
    with caplog.at_level(logging.WARNING, logger="tessera.settings"):
        settings = Settings.from_env({**HTTPS, **cheap})
    assert settings.password_hashing == PasswordHashing(1, 16, 2)
    assert password_hashing_from_env(cheap) == PasswordHashing(1, 16, 2)
    # Lowered, the services say so at start.
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "TESSERA_PASSWORD_HASH_*" in warning
    assert "never in production" in warning

    for name, value in [
        ("TESSERA_PASSWORD_HASH_TIME_COST", "0"),
        ("TESSERA_PASSWORD_HASH_MEMORY_KIB", "64MiB"),
        ("TESSERA_PASSWORD_HASH_PARALLELISM", "-1"),
    ]:
        assert refused({**HTTPS, name: value}).startswith(f"{name}={value!r}")
    # RFC 9106 §3.1: at least 8 KiB of memory per lane.
    message = refused({**HTTPS, **cheap, "TESSERA_PASSWORD_HASH_MEMORY_KIB": "15"})
    assert message.startswith("TESSERA_PASSWORD_HASH_MEMORY_KIB=15: must be at least 8 KiB")
    with pytest.raises(SettingsError, match="TESSERA_PASSWORD_HASH_PARALLELISM"):
        password_hashing_from_env({"TESSERA_PASSWORD_HASH_PARALLELISM": "x"})


def test_password_hashing_below_rfc_9106_needs_the_test_switch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A deployment cannot weaken its stored hashes by a stray variable: fewer passes or
    less memory than RFC 9106 recommends are refused, in the services and in the CLI
    (which reads password_hashing_from_env), unless the test suite's switch is on."""
    for weaker in (
        {"TESSERA_PASSWORD_HASH_TIME_COST": "2"},
        {"TESSERA_PASSWORD_HASH_MEMORY_KIB": "32768"},
    ):
        assert WEAK_HASHING_FOR_TESTS in refused({**HTTPS, **weaker})
        with pytest.raises(SettingsError, match="below RFC 9106"):
            password_hashing_from_env(weaker)
    # Stronger than recommended (or other lanes) is the operator's choice, and quiet.
    stronger = {
        "TESSERA_PASSWORD_HASH_TIME_COST": "4",
        "TESSERA_PASSWORD_HASH_MEMORY_KIB": "131072",
        "TESSERA_PASSWORD_HASH_PARALLELISM": "2",
    }
    with caplog.at_level(logging.WARNING, logger="tessera.settings"):
        settings = Settings.from_env({**HTTPS, **stronger})
    assert settings.password_hashing == PasswordHashing(4, 131072, 2)
    assert not [r for r in caplog.records if "PASSWORD_HASH" in r.getMessage()]


def test_an_unknown_username_is_checked_against_a_hash_of_the_same_parameters() -> None:
    """Else a wrong username would answer faster or slower than a wrong password."""
    assert crypto.dummy_password_hash(RFC_9106_LOW_MEMORY) == crypto.DUMMY_PASSWORD_HASH
    cheap = PasswordHashing(time_cost=1, memory_kib=8, parallelism=1)
    dummy = crypto.dummy_password_hash(cheap)
    assert dummy.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert crypto.dummy_password_hash(cheap) == dummy  # made once
    assert crypto.check_password(None, "any password", cheap) is False
    user = crypto.hash_password("the password", cheap)
    assert crypto.check_password(user, "the password", cheap) is True


def test_settings_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=re.escape("TESSERA_ISSUER")):
        Settings.from_env({})


# --- PKCE --------------------------------------------------------------------------------

# RFC 7636 Appendix B
APPENDIX_B_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
APPENDIX_B_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_rfc_7636_appendix_b() -> None:
    assert pkce.s256(APPENDIX_B_VERIFIER) == APPENDIX_B_CHALLENGE


def test_verify_s256_with_the_appendix_b_vector() -> None:
    assert pkce.verify(APPENDIX_B_VERIFIER, APPENDIX_B_CHALLENGE, "S256") is True
    # The challenge used as a verifier does not pass (no downgrade to plain).
    assert pkce.verify(APPENDIX_B_CHALLENGE, APPENDIX_B_CHALLENGE, "S256") is False
    # Nor does the verifier against itself under S256.
    assert pkce.verify(APPENDIX_B_VERIFIER, APPENDIX_B_VERIFIER, "S256") is False
    # One character off fails.
    assert pkce.verify(APPENDIX_B_VERIFIER[:-1] + "j", APPENDIX_B_CHALLENGE, "S256") is False


def test_verify_plain() -> None:
    assert pkce.verify(APPENDIX_B_VERIFIER, APPENDIX_B_VERIFIER, "plain") is True
    assert pkce.verify(APPENDIX_B_VERIFIER, APPENDIX_B_CHALLENGE, "plain") is False


def test_verifier_length_bounds() -> None:
    # RFC 7636 §4.1: 43 to 128 characters.
    assert pkce.is_valid_verifier("a" * 42) is False
    assert pkce.is_valid_verifier("a" * 43) is True
    assert pkce.is_valid_verifier("a" * 128) is True
    assert pkce.is_valid_verifier("a" * 129) is False
    assert pkce.is_valid_verifier("") is False


def test_a_verifier_out_of_bounds_never_verifies() -> None:
    for verifier in ("a" * 42, "a" * 129):
        assert pkce.verify(verifier, verifier, "plain") is False
        assert pkce.verify(verifier, pkce.s256(verifier), "S256") is False
    for verifier in ("a" * 43, "a" * 128):
        assert pkce.verify(verifier, verifier, "plain") is True
        assert pkce.verify(verifier, pkce.s256(verifier), "S256") is True


def test_verifier_alphabet() -> None:
    # RFC 7636 §4.1: unreserved characters only.
    assert pkce.is_valid_verifier("A-Za-z0-9._~" + "x" * 31) is True
    for bad in ("+", "/", "=", " ", "%", "\u00e9"):
        assert pkce.is_valid_verifier("x" * 42 + bad) is False


def test_a_trailing_newline_is_not_accepted() -> None:
    # RFC 7636 §4.1, §4.2: the whole value is 43-128 unreserved characters. A regex
    # anchored with "$" also matches just before a final newline, so this guards the
    # anchoring: a verifier or challenge ending in "\n" is malformed, and a 128-character
    # value plus "\n" is 129 characters long.
    for value in ("x" * 43 + "\n", "x" * 128 + "\n", APPENDIX_B_CHALLENGE + "\n"):
        assert pkce.is_valid_verifier(value) is False, repr(value)
        assert pkce.is_valid_challenge(value) is False, repr(value)
    assert pkce.verify(APPENDIX_B_VERIFIER + "\n", APPENDIX_B_VERIFIER + "\n", "plain") is False


def test_challenge_syntax() -> None:
    assert pkce.is_valid_challenge(APPENDIX_B_CHALLENGE) is True
    assert pkce.is_valid_challenge("a" * 42) is False
    assert pkce.is_valid_challenge("a" * 129) is False
    assert pkce.is_valid_challenge(APPENDIX_B_CHALLENGE + "=") is False


def test_s256_challenges_are_43_characters_without_padding() -> None:
    for verifier in ("a" * 43, "b" * 128, APPENDIX_B_VERIFIER):
        challenge = pkce.s256(verifier)
        assert len(challenge) == 43
        assert "=" not in challenge
        assert pkce.is_valid_challenge(challenge)


def test_methods() -> None:
    # RFC 7636 §4.2
    assert pkce.METHODS == ("plain", "S256")


def test_the_admin_credential_of_a_secret_made_from_a_file_has_no_line_end() -> None:
    """deploy/README.md: openssl rand -hex 32 > admin-token, then --from-file: the value
    ends in a newline no bearer header can carry."""
    credential = "c" * 64
    settings = Settings.from_env({**HTTPS, "TESSERA_ADMIN_TOKEN": credential + "\n"})
    assert settings.admin_token == credential


def test_a_secret_rotation_overlap_beyond_90_days_is_refused() -> None:
    assert "TESSERA_SECRET_ROTATION_OVERLAP" in refused(
        {**HTTPS, "TESSERA_SECRET_ROTATION_OVERLAP": str(90 * 24 * 3600 + 1)}
    )
