"""Storage: the only code that talks to Redis, with the key schema and the Lua scripts."""
