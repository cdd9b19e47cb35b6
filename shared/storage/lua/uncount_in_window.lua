-- uncount_in_window: give one event back to its window, unless the window has ended.
--
-- For a sign-in that succeeded after all. Once the window has ended a DECR would leave
-- a key without a TTL.
--
-- KEYS[1]  counter  the count of one limit's window for one subject
-- ARGV: none
-- Returns: the count left, or nil when the window had ended.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECR', KEYS[1])
end
return nil
