-- touch_consent: a remembered approval was used; its last-used time moves on.
--
-- A record forgotten meanwhile is not brought back.
--
-- KEYS[1]  consents   the person's remembered approvals: client id -> JSON record
-- ARGV[1]  client_id  the client whose approval was used
-- ARGV[2]  now        the time, in seconds since the epoch
-- Returns: 1 when touched, 0 when there is no such approval.

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record.last_used = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
