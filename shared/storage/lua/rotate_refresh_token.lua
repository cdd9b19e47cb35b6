-- rotate_refresh_token: exchange a refresh token for new tokens once, atomically.
-- Enforces: RFC 9700 §4.14.2, a rotated refresh token presented again revokes its family
--
-- The presented refresh token is marked rotated and the new tokens are stored in one
-- step, so of two concurrent uses exactly one succeeds. The marker (keys.ROTATED_MARKER),
-- 'rotated:<ms>:<client_id>', keeps the old key's TTL, so reuse is recognised for as long
-- as the token would have lived. Presented again by its own client it revokes the family,
-- unless within the grace window of its rotation (the client's own race; see README);
-- presented by another client it is only unknown, as a live token of another client is.
-- Time is Redis's own, one clock for all replicas. The chain's last refresh (the client's
-- refresh count reached) issues no new refresh token, so RFC 6749 §6 lets the client keep
-- the old one, and Authlib does: that marker ends in ':last', and the token presented
-- again by its client is 'exhausted', refused without revoking anything, since no newer
-- token exists that a thief could be using.
--
-- KEYS[1]     refresh_token  the presented refresh token
-- KEYS[2..5]  family         the family's keys, in the order of keys.family_keys
-- KEYS[6..]   token_keys     the new tokens' keys: the access token's, then the refresh
--                            token's unless this is the chain's last refresh; none: only
--                            handle a reuse
-- ARGV[1]     client_id      the presenting client
-- ARGV[2]     grace_ms       the grace window after a rotation, in milliseconds (0: none)
-- ARGV[3]     tombstone_ttl  the seconds a family revoked by a reuse stays marked
-- ARGV[4..]   token_values   per new token key, as store_tokens takes them
-- Returns: 'rotated', 'raced', 'reused', 'exhausted', 'revoked' or 'unknown'.

-- include: revoke_family
-- include: store_tokens

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
