"""The Redis key schema: every key name, and the Lua scripts that touch several at once.

Nothing else in Tessera spells a key. Everything issued from one grant (one approval)
belongs to a grant family whose id is a hash tag, ``{g:<family>}``, so the code, the
tokens and the family's bookkeeping share one Redis Cluster slot: every script below
touches the keys of one slot only, as Redis Cluster requires.
"""

from __future__ import annotations

PREFIX = "tessera"

CLIENT_INDEX = f"{PREFIX}:clients"
SCOPE_INDEX = f"{PREFIX}:scopes"
USER_INDEX = f"{PREFIX}:users"


def client(client_id: str) -> str:
    return f"{PREFIX}:client:{client_id}"


def scope(name: str) -> str:
    return f"{PREFIX}:scope:{name}"


def user(username: str) -> str:
    return f"{PREFIX}:user:{username}"


def session(session_digest: str) -> str:
    return f"{PREFIX}:session:{session_digest}"


def interaction(interaction_id: str) -> str:
    return f"{PREFIX}:interaction:{interaction_id}"


def login_failures(username_digest: str) -> str:
    return f"{PREFIX}:login-failures:{username_digest}"


def _family(family: str) -> str:
    return f"{PREFIX}:{{g:{family}}}"


def code(family: str, code_digest: str) -> str:
    return f"{_family(family)}:code:{code_digest}"


def access_token(family: str, token_digest: str) -> str:
    return f"{_family(family)}:at:{token_digest}"


def refresh_token(family: str, token_digest: str) -> str:
    return f"{_family(family)}:rt:{token_digest}"


def family_members(family: str) -> str:
    """Set of the token keys issued in the family, so the family can be revoked as one."""
    return f"{_family(family)}:members"


def family_revoked(family: str) -> str:
    """Tombstone: set when the family is revoked, so nothing more is issued into it."""
    return f"{_family(family)}:revoked"


# KEYS: members, revoked tombstone.  ARGV: tombstone TTL.
_REVOKE_FAMILY = """
local function revoke_family(members, tombstone, ttl)
  for _, key in ipairs(redis.call('SMEMBERS', members)) do
    redis.call('DEL', key)
  end
  redis.call('DEL', members)
  redis.call('SET', tombstone, '1', 'EX', ttl)
end
"""

# Single use of an authorization code (RFC 6749 §4.1.2), atomically. The first call marks
# the code used and returns its record; the key keeps its TTL so that a replay is
# recognised until the code would have expired, and a replay revokes the family.
# KEYS: code, members, tombstone.  ARGV: tombstone TTL.
REDEEM_CODE = (
    _REVOKE_FAMILY
    + """
local found = redis.call('HMGET', KEYS[1], 'record', 'used')
if not found[1] then
  return false
end
if found[2] then
  revoke_family(KEYS[2], KEYS[3], ARGV[1])
  return {'replayed', found[1]}
end
redis.call('HSET', KEYS[1], 'used', '1')
return {'fresh', found[1]}
"""
)

# Store tokens into a family unless it was revoked meanwhile (a replayed code).
# KEYS: members, tombstone, token keys...  ARGV: for each token key, its record and TTL.
# Returns 1 when stored, 0 when the family is revoked.
ISSUE_TOKENS = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local longest = 0
for i = 3, #KEYS do
  local record, ttl = ARGV[2 * (i - 3) + 1], tonumber(ARGV[2 * (i - 3) + 2])
  redis.call('SET', KEYS[i], record, 'EX', ttl)
  redis.call('SADD', KEYS[1], KEYS[i])
  if ttl > longest then longest = ttl end
end
if redis.call('TTL', KEYS[1]) < longest then
  redis.call('EXPIRE', KEYS[1], longest)
end
return 1
"""

# An interaction is a hash {request, browser}; browser is "" until claimed (POST /authorize).
# KEYS: interaction.  ARGV: the browser binding.  Returns 1 when it is this browser's.
CLAIM_INTERACTION = """
local owner = redis.call('HGET', KEYS[1], 'browser')
if owner == '' then
  redis.call('HSET', KEYS[1], 'browser', ARGV[1])
  return 1
end
return owner == ARGV[1] and 1 or 0
"""

# The decision consumes the interaction only if it is this browser's.
# KEYS: interaction.  ARGV: the browser binding.  Returns the request, or nil.
TAKE_INTERACTION = """
local found = redis.call('HMGET', KEYS[1], 'request', 'browser')
if not found[1] or found[2] ~= ARGV[1] then
  return false
end
redis.call('DEL', KEYS[1])
return found[1]
"""
