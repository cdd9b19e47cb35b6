"""One module per grant type, each with ``GRANT_TYPE`` and one async ``handle``.

The token endpoint picks the handler from ``HANDLERS`` by the ``grant_type`` parameter.
"""

from __future__ import annotations

from services.token.grants import authorization_code
from services.token.grants.base import GrantHandler

HANDLERS: dict[str, GrantHandler] = {
    authorization_code.GRANT_TYPE: authorization_code.handle,
}
