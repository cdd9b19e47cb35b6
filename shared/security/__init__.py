"""Security: hashing and random values, signing keys, JWT access tokens, PKCE, log
fingerprints."""
