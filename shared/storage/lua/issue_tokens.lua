-- issue_tokens: store new tokens into a grant family, unless it was revoked meanwhile.
-- Enforces: RFC 6749 §4.1.2, nothing is issued from a code whose replay revoked its family
--
-- A replayed code may revoke the family between the redemption and the issuance; the
-- tombstone then keeps these tokens out.
--
-- KEYS[1..4]  family        the family's keys, in the order of keys.family_keys
-- KEYS[5..]   token_keys    the new tokens' keys
-- ARGV[1..]   token_values  per token key, as store_tokens takes them: its record, its
--                           TTL in seconds (0: never expires), '1' when listed else '0'
-- Returns: 1 when stored, 0 when the family is revoked.

-- include: store_tokens

if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
store_tokens(KEYS[1], 5, 1)
return 1
