"""Code shared by Tessera's three services: settings, the Redis store, errors, crypto."""
