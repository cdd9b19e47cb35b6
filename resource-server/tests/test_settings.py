"""The resource server's settings (``ResourceServerSettings``): read from the
environment, and each bad value refused at start with a message naming it."""

from __future__ import annotations

import re

import pytest

from tessera_resource_server import ResourceServerSettings


def test_settings_from_the_environment() -> None:
    settings = ResourceServerSettings.from_env(
        {
            "RESOURCE_SERVER_ISSUER": "https://id.example.com",
            "RESOURCE_SERVER_INTROSPECTION_ENDPOINT": "http://tessera-introspect/introspect",
            "RESOURCE_SERVER_CLIENT_ID": "api",
            "RESOURCE_SERVER_CLIENT_SECRET": "secret",
            "RESOURCE_SERVER_CACHE_SECONDS": "2.5",
            "RESOURCE_SERVER_ENFORCE_SCOPE_RESOURCES": "yes",
            "RESOURCE_SERVER_JWKS_URI": "",
        }
    )
    assert settings.cache_seconds == 2.5
    assert settings.enforce_scope_resources is True
    assert settings.jwks_uri is None
    assert settings.expected_audience == "https://id.example.com"
    assert settings.scope_definitions_url == "http://tessera-introspect/scopes"


def jwks_env(**fields: str) -> dict[str, str]:
    """A resource server verifying JWTs, with ``fields`` as RESOURCE_SERVER_* variables."""
    env = {
        "RESOURCE_SERVER_ISSUER": "https://id",
        "RESOURCE_SERVER_JWKS_URI": "https://id/jwks.json",
    }
    return env | {f"RESOURCE_SERVER_{name.upper()}": value for name, value in fields.items()}


def test_the_jwks_refresh_limits_may_be_equal() -> None:
    settings = ResourceServerSettings.from_env(
        jwks_env(jwks_min_refresh_seconds="0.5", jwks_cache_seconds="0.5")
    )
    assert settings.jwks_min_refresh_seconds == settings.jwks_cache_seconds == 0.5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "RESOURCE_SERVER_ISSUER is required"),
        ({"RESOURCE_SERVER_ISSUER": "id.example.com"}, "issuer must be an http(s) URL"),
        ({"RESOURCE_SERVER_ISSUER": "https://id"}, "set introspection_endpoint, jwks_uri"),
        (
            {
                "RESOURCE_SERVER_ISSUER": "https://id",
                "RESOURCE_SERVER_INTROSPECTION_ENDPOINT": "http://i/introspect",
            },
            "client_id and client_secret are required",
        ),
        (
            {
                "RESOURCE_SERVER_ISSUER": "https://id",
                "RESOURCE_SERVER_JWKS_URI": "https://id/jwks.json",
                "RESOURCE_SERVER_CACHE_SECONDS": "soon",
            },
            "RESOURCE_SERVER_CACHE_SECONDS: not a valid float",
        ),
        (
            {
                "RESOURCE_SERVER_ISSUER": "https://id",
                "RESOURCE_SERVER_JWKS_URI": "https://id/jwks.json",
                "RESOURCE_SERVER_INTROSPECT_JWTS": "1",
            },
            "introspect_jwts needs introspection_endpoint",
        ),
        # 0, negative or NaN would let tokens with made-up kids refetch the JWK Set at will.
        *(
            (jwks_env(**{name: value}), f"{name} must be more than 0")
            for name in ("jwks_min_refresh_seconds", "jwks_cache_seconds")
            for value in ("0", "-5", "nan")
        ),
        (
            jwks_env(jwks_min_refresh_seconds="60", jwks_cache_seconds="30"),
            "jwks_min_refresh_seconds (60.0) must be at most jwks_cache_seconds (30.0)",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ResourceServerSettings.from_env(env)
