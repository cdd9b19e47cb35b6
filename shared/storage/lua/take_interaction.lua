-- take_interaction: consume a pending authorization request, if it is this browser's.
--
-- The person's decision takes the interaction in one step, so one approval yields at
-- most one code.
--
-- KEYS[1]  interaction  the pending request: the browser binding, then the request
-- ARGV[1]  binding      this browser's binding
-- Returns: the request, without the binding, or false.

local found = redis.call('GET', KEYS[1])
if not found or string.sub(found, 1, #ARGV[1]) ~= ARGV[1] then
  return false
end
redis.call('DEL', KEYS[1])
return string.sub(found, #ARGV[1] + 1)
