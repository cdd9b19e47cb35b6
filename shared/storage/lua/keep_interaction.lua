-- keep_interaction: once the person signed in, a pending request lives on, if theirs.
--
-- It lives on for the given time, only if it is this browser's, its request replaced if
-- one is given (prompt=login satisfied). A key expired meanwhile is not brought back.
--
-- KEYS[1]  interaction  the pending request: the browser binding, then the request
-- ARGV[1]  binding      this browser's binding
-- ARGV[2]  lifetime_ms  how long it lives from now on, in milliseconds
-- ARGV[3]  request      the new request, or '' to keep the stored one
-- Returns: 1 when kept, else 0.

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
