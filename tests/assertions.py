"""The assertions on Tessera's answers that more than one test file makes, each in one
place: errors as RFC 6749 §5.2 and the pages show them, token responses (§5.1), and the
redirects of a refused authorization."""

from __future__ import annotations

from tests.replies import Answer, Reply, page_message
from tests.stack import Stack

# The one public description of each error (shared.domain.oauth_errors): every cause of an
# invalid_grant reads the same, so a caller learns nothing about the grant.
INVALID_GRANT_DESCRIPTION = (
    "The authorization grant is invalid, expired, revoked, or was issued to another "
    "client or redirect URI."
)
INVALID_SCOPE_DESCRIPTION = "The requested scope is invalid, unknown, or not allowed."


def assert_error_page(
    answer: Answer, message: str, status: int = 400, *, error: str | None = None
) -> None:
    """An error shown to the person as a page, never a redirect (RFC 6749 §4.1.2.1), not
    cached; with ``error``, the page names that error code."""
    assert answer.status == status, answer.text
    assert "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.headers["Cache-Control"] == "no-store"
    assert page_message(answer.text) == message
    if error is not None:
        assert f"Error code: <code>{error}</code>" in answer.text


def assert_access_denied(back: dict[str, str], stack: Stack, state: str) -> None:
    """The query of the redirect back to the client says the person did not approve
    (RFC 6749 §4.1.2.1, RFC 9207)."""
    assert back["error"] == "access_denied"
    assert back["error_description"]
    assert back["state"] == state
    assert back["iss"] == stack.issuer
    assert "code" not in back


def assert_no_store(reply: Reply) -> None:
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Pragma"] == "no-cache"
    assert reply.headers["Content-Type"].startswith("application/json")


def assert_error(reply: Reply, status: int, error: str) -> None:
    """RFC 6749 §5.2: status, JSON body with error and error_description, no caching."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["error"] == error, reply.body
    assert isinstance(reply.body["error_description"], str)
    assert reply.body["error_description"]
    assert set(reply.body) == {"error", "error_description"}
    assert "access_token" not in reply.body
    assert_no_store(reply)
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    else:
        assert "WWW-Authenticate" not in reply.headers


def assert_invalid_client(reply: Reply) -> None:
    assert_error(reply, 401, "invalid_client")
    assert reply.body["error_description"] == "Client authentication failed."


def assert_invalid_grant(reply: Reply) -> None:
    assert_error(reply, 400, "invalid_grant")
    assert reply.body["error_description"] == INVALID_GRANT_DESCRIPTION


def assert_invalid_scope(reply: Reply) -> None:
    assert_error(reply, 400, "invalid_scope")
    assert reply.body["error_description"] == INVALID_SCOPE_DESCRIPTION


def assert_token_response(reply: Reply, *, refresh: bool, scope: str | None = None) -> None:
    """RFC 6749 §5.1: a Bearer access token, not cached, a refresh token only if due."""
    assert reply.status == 200, reply.body
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["access_token"]
    assert ("refresh_token" in reply.body) is refresh, reply.body
    if scope is not None:
        assert reply.body["scope"] == scope
    assert_no_store(reply)
