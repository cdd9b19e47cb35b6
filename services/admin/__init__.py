"""The admin API (``/v1``): clients, scopes, users, approvals, tokens and the audit trail,
served by the token service process on a port of its own (``TESSERA_ADMIN_PORT``)."""
