-- redeem_code: use an authorization code once, atomically.
-- Enforces: RFC 6749 §4.1.2, a code is used once, and its replay revokes what it issued
--
-- The first call marks the code used and returns its record. The key keeps its TTL, so
-- a replay is recognised until the code would have expired, and a replay revokes the
-- family.
--
-- KEYS[1]     code           the code: a hash of its record and, once used, 'used'
-- KEYS[2..5]  family         the family's keys, in the order of keys.family_keys
-- ARGV[1]     tombstone_ttl  the seconds a family revoked by a replay stays marked
-- Returns: false for an unknown or expired code, else {'fresh', record} the first time
--   and {'replayed', record} after.

-- include: revoke_family

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
