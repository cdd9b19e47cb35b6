"""The token service: ``POST /token`` (RFC 6749 §3.2) for client applications."""
