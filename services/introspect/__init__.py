"""The introspection service: ``POST /introspect`` (RFC 7662) for resource servers."""
