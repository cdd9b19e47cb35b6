-- count_in_window: one more event in a rate limit's window, which the first event opens.
--
-- A fixed window: the count and the time left are read in the same step, so a limit
-- costs one command.
--
-- KEYS[1]  counter    the count of one limit's window for one subject
-- ARGV[1]  window_ms  the window, in milliseconds
-- Returns: {count, milliseconds left in the window}.

local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
