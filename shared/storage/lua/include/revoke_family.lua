-- revoke_family(at, ttl): delete every token of a grant family and mark it revoked.
-- Enforces: RFC 7009 §2.1, revoking one token invalidates the others of its grant
--
-- at: the index in KEYS of the family's four keys, in the order of keys.family_keys
-- (member set, tombstone, first access token, first JWT access token's record).
-- ttl: the seconds the tombstone lives, keeping anything more from being issued into the
-- family. The token keys it deletes come from the member set, not from KEYS: Redis
-- Cluster allows that because every member carries the family's hash tag (store_tokens
-- adds only keys of the family), so the script still touches the one slot of the keys
-- it declares.
--
-- Returns: how many token keys were deleted.

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
