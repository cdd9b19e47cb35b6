-- claim_interaction: bind a pending authorization request to this browser, if unbound.
--
-- An interaction is one string: the browser binding, then the request. The binding is a
-- digest, or as many dots until claimed (a request that arrived by POST /authorize);
-- the binding given sets the length.
--
-- KEYS[1]  interaction  the pending request
-- ARGV[1]  binding      this browser's binding
-- Returns: 1 when the interaction is (now) this browser's, else 0.

local owner = redis.call('GETRANGE', KEYS[1], 0, #ARGV[1] - 1)
if owner == string.rep('.', #ARGV[1]) then
  redis.call('SETRANGE', KEYS[1], 0, ARGV[1])
  return 1
end
return owner == ARGV[1] and 1 or 0
