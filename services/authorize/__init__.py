"""The authorize service: ``/authorize`` and the login and approval pages (RFC 6749 §4.1.1)."""
