"""The Redis key schema: every key name, and the Lua scripts that touch several at once.

Nothing else in Tessera spells a key. Everything issued from one grant (one approval)
belongs to a grant family whose id is a hash tag, ``{g:<family>}``, so the code, the
tokens and the family's bookkeeping share one Redis Cluster slot: every script below
touches the keys of one slot only, as Redis Cluster requires.

Only Tessera chooses hash tags. A key's part that comes from outside (a scope name, a
username, a client id, an interaction id: anything a caller or an administrator names)
goes through ``_named``, so that no name can pick the slot its key lands in, or put its
key into a grant family's slot.
"""

from __future__ import annotations

PREFIX = "tessera"

CLIENT_INDEX = f"{PREFIX}:clients"
SCOPE_INDEX = f"{PREFIX}:scopes"
USER_INDEX = f"{PREFIX}:users"
# Pub/sub channel: the id of every client whose record changed, for the services' caches.
CLIENT_CHANGES = f"{PREFIX}:client-changes"
# The key of the log fingerprints (shared.security.fingerprint): random, made once, never expires.
LOG_FINGERPRINT_KEY = f"{PREFIX}:log-fingerprint-key"


def _named(name: str) -> str:
    """A name from outside, as the last part of a key, kept out of hash tags.

    Redis Cluster hashes only what lies between a key's first ``{`` and the first ``}``
    after it, unless that is empty: then it hashes the whole key. So a name holding a
    ``{`` (a scope ``a{g:x}b`` is a valid scope token, RFC 6749 §3.3) is preceded by an
    empty tag, ``{}``, and its whole key is hashed; a name without one, the common case,
    is left as it is, so the keys of every such name stay those earlier releases wrote.
    The mapping stays one-to-one: a name that starts with ``{}`` holds a ``{`` and gets
    its own ``{}`` before it. Nothing before the name holds a ``{``."""
    return f"{{}}{name}" if "{" in name else name


def client(client_id: str) -> str:
    return f"{PREFIX}:client:{_named(client_id)}"


def scope(name: str) -> str:
    return f"{PREFIX}:scope:{_named(name)}"


def user(username: str) -> str:
    return f"{PREFIX}:user:{_named(username)}"


def session(session_digest: str) -> str:
    return f"{PREFIX}:session:{session_digest}"


def interaction(interaction_id: str) -> str:
    return f"{PREFIX}:interaction:{_named(interaction_id)}"


def login_known_address(username_digest: str, address: str) -> str:
    """Set when the username signs in from ``address`` (as limits count addresses,
    ``shared.web.client_address.limit_subject``): for a while that address is the owner's,
    exempt from the per-username and per-address sign-in limits (``login_throttle``)."""
    return f"{PREFIX}:login-known:{username_digest}:{_named(address)}"


def login_addresses(username_digest: str) -> str:
    """Set of the addresses holding a per-(username, address) failure count in the
    current window, so ``tessera user unlock`` clears them without scanning Redis."""
    return f"{PREFIX}:login-addresses:{username_digest}"


def rate_counter(limit: str, subject: str) -> str:
    """The count of one rate limit's window for one subject (``shared.storage.rate_limits``)."""
    return f"{PREFIX}:rate:{limit}:{_named(subject)}"


def client_families(client_id: str) -> str:
    """Sorted set of the client's grant families, scored by when their last token expires,
    so token management can list and revoke by client without scanning Redis."""
    return f"{PREFIX}:client-families:{_named(client_id)}"


def user_families(username: str) -> str:
    """Sorted set of the families issued for a person, scored as ``client_families``."""
    return f"{PREFIX}:user-families:{_named(username)}"


def consents(username: str) -> str:
    """Hash of the person's remembered approvals: client id -> JSON record of the approved
    scopes and the first-approved and last-used times (see ``consents``). One key, so
    every change to a person's approval of a client is one script on one slot."""
    return f"{PREFIX}:consents:{_named(username)}"


def client_consents(client_id: str) -> str:
    """Set of the people who have approved a client, so deleting the client can forget
    their approvals without scanning Redis."""
    return f"{PREFIX}:client-consents:{_named(client_id)}"


def _family(family: str) -> str:
    # Family ids are Tessera's own (families.new_family); one read from a presented code
    # or token has passed families.family_of (letters, digits, "-" and "_") first.
    return f"{PREFIX}:{{g:{family}}}"


def code(family: str, code_digest: str) -> str:
    return f"{_family(family)}:code:{code_digest}"


def access_token(family: str, token_digest: str) -> str:
    return f"{_family(family)}:at:{token_digest}"


def jwt_access_token(family: str, jti_digest: str) -> str:
    return f"{_family(family)}:jwt:{jti_digest}"


def first_access_token(family: str) -> str:
    """The family's first access token, named by the family alone (its digest is in the
    value): a family of one token, as every client credentials, password and implicit
    grant is, then needs one key and no member set, and can still be revoked by family."""
    return f"{_family(family)}:at"


def first_jwt_access_token(family: str) -> str:
    """As ``first_access_token``, for a JWT's record (found by its ``jti``)."""
    return f"{_family(family)}:jwt"


def refresh_token(family: str, token_digest: str) -> str:
    return f"{_family(family)}:rt:{token_digest}"


def is_refresh_token(key: str) -> bool:
    return ":rt:" in key


def family_members(family: str) -> str:
    """Set of the family's token keys other than its first access token, so the family
    can be revoked as one."""
    return f"{_family(family)}:members"


def family_revoked(family: str) -> str:
    """Tombstone: set when the family is revoked, so nothing more is issued into it."""
    return f"{_family(family)}:revoked"


def family_keys(family: str) -> list[str]:
    """The family's own keys, in the order every script below takes them: member set,
    tombstone, first access token, first JWT access token's record."""
    return [
        family_members(family),
        family_revoked(family),
        first_access_token(family),
        first_jwt_access_token(family),
    ]


# The token keys it deletes come from the members set, not from KEYS: Redis Cluster allows
# that because every member carries the family's hash tag (store_tokens adds only keys of
# the family), so the script still touches the one slot of the keys it declares.
# 'at' is the index in KEYS of the family's keys (see family_keys).
_REVOKE_FAMILY = """
local function revoke_family(at, ttl)
  local members = KEYS[at]
  local deleted = redis.call('DEL', KEYS[at + 2], KEYS[at + 3])
  for _, key in ipairs(redis.call('SMEMBERS', members)) do
    deleted = deleted + redis.call('DEL', key)
  end
  redis.call('DEL', members)
  redis.call('SET', KEYS[at + 1], '1', 'EX', ttl)
  return deleted
end
"""

# Stores token records; a TTL of 0 means no expiry (an access token that never expires,
# as webMethods Integration Server allows). KEYS from index 'first' on, with ARGV triples
# (record, ttl, listed) from index 'argv' on: a listed key goes into the member set, whose
# TTL then covers it;
# the first access token is found by its name and is not listed.
_STORE_TOKENS = """
local function store_tokens(members, first, argv)
  -- -2: no member set yet; -1: one holding a token that never expires.
  local before = redis.call('TTL', members)
  local longest, listed = 0, false
  for i = first, #KEYS do
    local j = argv + 3 * (i - first)
    local record, ttl = ARGV[j], tonumber(ARGV[j + 1])
    if ttl == 0 then
      redis.call('SET', KEYS[i], record)
    else
      redis.call('SET', KEYS[i], record, 'EX', ttl)
    end
    if ARGV[j + 2] == '1' then
      redis.call('SADD', members, KEYS[i])
      listed = true
      if ttl == 0 then
        longest = -1
      elseif longest >= 0 and ttl > longest then
        longest = ttl
      end
    end
  end
  if not listed then
    return
  end
  if longest < 0 then
    redis.call('PERSIST', members)
  elseif before == -2 or (before >= 0 and before < longest) then
    redis.call('EXPIRE', members, longest)
  end
end
"""

# Revoke a family: delete every token in it and mark it so nothing more is issued into it.
# KEYS: the family's keys.  ARGV: tombstone TTL.  Returns how many tokens were deleted.
REVOKE_FAMILY = _REVOKE_FAMILY + "return revoke_family(1, ARGV[1])\n"

# Single use of an authorization code (RFC 6749 §4.1.2), atomically. The first call marks
# the code used and returns its record; the key keeps its TTL so that a replay is
# recognised until the code would have expired, and a replay revokes the family.
# KEYS: code, the family's keys.  ARGV: tombstone TTL.
REDEEM_CODE = (
    _REVOKE_FAMILY
    + """
local found = redis.call('HMGET', KEYS[1], 'record', 'used')
if not found[1] then
  return false
end
if found[2] then
  revoke_family(2, ARGV[1])
  return {'replayed', found[1]}
end
redis.call('HSET', KEYS[1], 'used', '1')
return {'fresh', found[1]}
"""
)

# Store tokens into a family unless it was revoked meanwhile (a replayed code).
# KEYS: the family's keys, token keys...  ARGV: for each token key, its record, TTL and
# whether it is listed.  Returns 1 when stored, 0 when the family is revoked.
ISSUE_TOKENS = (
    _STORE_TOKENS
    + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
store_tokens(KEYS[1], 5, 1)
return 1
"""
)

# Refresh token rotation (RFC 9700 §4.14.2), atomically: the presented refresh token is
# marked rotated and the new tokens are stored in one step, so of two concurrent uses
# exactly one succeeds. The marker, "rotated:<ms>:<client_id>", keeps the old key's TTL,
# so reuse is recognised for as long as the token would have lived. Presented again by
# its own client it revokes the family, unless within the grace window of its rotation
# (the client's own race; see README); presented by another client it is only unknown,
# as a live token of another client is. Time is Redis's own, one clock for all replicas.
# The chain's last refresh (the client's refresh count reached) issues no new refresh
# token, so RFC 6749 §6 lets the client keep the old one, and Authlib does: that marker
# ends in ":last", and the token presented again by its client is 'exhausted', refused
# without revoking anything, since no newer token exists that a thief could be using.
# KEYS: old refresh token, the family's keys, new token keys: the access token's, then
# the refresh token's unless this is the chain's last refresh (none: only handle a reuse).
# ARGV: the presenting client, grace in milliseconds, tombstone TTL, then (record, ttl,
# listed) per new token key.
# Returns 'rotated', 'raced', 'reused', 'exhausted', 'revoked' or 'unknown'.
ROTATE_REFRESH_TOKEN = (
    _REVOKE_FAMILY
    + _STORE_TOKENS
    + """
if redis.call('EXISTS', KEYS[3]) == 1 then
  return 'revoked'
end
local current = redis.call('GET', KEYS[1])
if not current then
  return 'unknown'
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local rotated_at, owner, last = string.match(current, '^rotated:(%d+):([^:]*)(.*)$')
if rotated_at then
  if owner ~= ARGV[1] then
    return 'unknown'
  end
  if last == ':last' then
    return 'exhausted'
  end
  local grace = tonumber(ARGV[2])
  if grace > 0 and now - tonumber(rotated_at) < grace then
    return 'raced'
  end
  revoke_family(2, ARGV[3])
  return 'reused'
end
if #KEYS < 6 then
  return 'unknown'
end
local marker = 'rotated:' .. now .. ':' .. ARGV[1]
if #KEYS == 6 then
  marker = marker .. ':last'
end
redis.call('SET', KEYS[1], marker, 'KEEPTTL')
store_tokens(KEYS[2], 6, 4)
return 'rotated'
"""
)
ROTATED_MARKER = "rotated:"

# An interaction is one string: the browser binding, then the request. The binding is a
# digest, or as many dots until claimed (POST /authorize); ARGV[1], a binding, gives the
# length. KEYS: interaction.  ARGV: the browser binding.  Returns 1 when it is this
# browser's.
CLAIM_INTERACTION = """
local owner = redis.call('GETRANGE', KEYS[1], 0, #ARGV[1] - 1)
if owner == string.rep('.', #ARGV[1]) then
  redis.call('SETRANGE', KEYS[1], 0, ARGV[1])
  return 1
end
return owner == ARGV[1] and 1 or 0
"""

# One more event in a rate limit's window, which the first event opens.
# KEYS: the counter.  ARGV: the window in milliseconds.  Returns {count, ms left}.
COUNT_IN_WINDOW = """
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""

# One event given back to its window (a sign-in that succeeded after all), unless the
# window has ended meanwhile: a DECR then would leave a key without a TTL.
# KEYS: the counter.  Returns the count left, or nil.
UNCOUNT_IN_WINDOW = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECR', KEYS[1])
end
return nil
"""

# The decision consumes the interaction only if it is this browser's.
# KEYS: interaction.  ARGV: the browser binding.  Returns the request, or nil.
TAKE_INTERACTION = """
local found = redis.call('GET', KEYS[1])
if not found or string.sub(found, 1, #ARGV[1]) ~= ARGV[1] then
  return false
end
redis.call('DEL', KEYS[1])
return string.sub(found, #ARGV[1] + 1)
"""

# Once the person signed in: a pending interaction lives on for the given time, its
# request replaced if one is given (prompt=login satisfied), only if it is this
# browser's; a key expired meanwhile is not brought back. KEYS: interaction.
# ARGV: the browser binding, milliseconds to live, the new request or "".
# Returns 1 when kept.
KEEP_INTERACTION = """
local owner = redis.call('GETRANGE', KEYS[1], 0, #ARGV[1] - 1)
if owner ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1] .. ARGV[3], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# A person's decision on the approval page, remembered (see shared/storage/consents.py). The
# scopes the page showed are decided anew: ticked ones are remembered, unticked ones
# forgotten; scopes approved earlier and not shown this time stay. Nothing left: the
# record goes. KEYS: the person's consents hash.  ARGV: client id, JSON list of the
# scopes shown, JSON list of those approved, now (seconds).  Returns the number of
# scopes remembered.
RECORD_CONSENT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local now = tonumber(ARGV[4])
local record = {first_approved = now, scope = {}}
if raw then record = cjson.decode(raw) end
local shown = {}
for _, name in ipairs(cjson.decode(ARGV[2])) do shown[name] = true end
local kept, seen = {}, {}
for _, name in ipairs(record.scope) do
  if not shown[name] and not seen[name] then table.insert(kept, name); seen[name] = true end
end
for _, name in ipairs(cjson.decode(ARGV[3])) do
  if not seen[name] then table.insert(kept, name); seen[name] = true end
end
if #kept == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
record.scope = kept
record.last_used = now
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return #kept
"""

# A remembered approval was used: its last-used time moves on; a record forgotten
# meanwhile is not brought back. KEYS: the person's consents hash.  ARGV: client id, now.
TOUCH_CONSENT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record.last_used = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
"""

# A scope definition was deleted: take it out of every remembered approval of one person,
# dropping the approvals that held nothing else. KEYS: the person's consents hash.
# ARGV: the scope name.  Returns the number of approvals changed.
FORGET_CONSENTED_SCOPE = """
local changed = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local record = cjson.decode(all[i + 1])
  local kept = {}
  for _, name in ipairs(record.scope) do
    if name ~= ARGV[1] then table.insert(kept, name) end
  end
  if #kept ~= #record.scope then
    changed = changed + 1
    if #kept == 0 then
      redis.call('HDEL', KEYS[1], all[i])
    else
      record.scope = kept
      redis.call('HSET', KEYS[1], all[i], cjson.encode(record))
    end
  end
end
return changed
"""
