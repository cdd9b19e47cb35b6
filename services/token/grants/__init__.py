"""One module per grant type, each with ``GRANT_TYPE`` and one async ``handle``.

The token endpoint picks the handler from ``HANDLERS`` by the ``grant_type`` parameter.
"""

from __future__ import annotations

from services.token.grants import authorization_code, client_credentials, password, refresh
from services.token.grants.base import GrantHandler

HANDLERS: dict[str, GrantHandler] = {
    authorization_code.GRANT_TYPE: authorization_code.handle,
    client_credentials.GRANT_TYPE: client_credentials.handle,
    password.GRANT_TYPE: password.handle,
    refresh.GRANT_TYPE: refresh.handle,
}

# The grants whose requests carry a scope parameter (RFC 6749 §4.3.2, §4.4.2, §6).
TAKE_SCOPE = frozenset({client_credentials.GRANT_TYPE, password.GRANT_TYPE, refresh.GRANT_TYPE})
