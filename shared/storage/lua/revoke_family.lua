-- revoke_family: revoke a grant family, deleting every token in it.
-- Enforces: RFC 7009 §2.1, revoking a token invalidates the others of its grant
--
-- Run when a token is revoked and by token management. The tombstone it leaves keeps
-- anything more from being issued into the family.
--
-- KEYS[1..4]  family         the family's keys, in the order of keys.family_keys
-- ARGV[1]     tombstone_ttl  the seconds the tombstone lives
-- Returns: how many token keys were deleted.

-- include: revoke_family

return revoke_family(1, ARGV[1])
