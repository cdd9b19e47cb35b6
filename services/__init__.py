"""Tessera's three services: authorize (browser), token (clients), introspect (resource servers)."""
