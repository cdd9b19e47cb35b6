-- forget_consented_scope: take a deleted scope out of one person's remembered approvals.
--
-- Approvals that held nothing else are dropped.
--
-- KEYS[1]  consents  the person's remembered approvals: client id -> JSON record
-- ARGV[1]  scope     the deleted scope's name
-- Returns: how many approvals changed.

local changed = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local record = cjson.decode(all[i + 1])
  local kept = {}
  for _, name in ipairs(record.scope) do
    if name ~= ARGV[1] then table.insert(kept, name) end
  end
  if #kept ~= #record.scope then
    changed = changed + 1
    if #kept == 0 then
      redis.call('HDEL', KEYS[1], all[i])
    else
      record.scope = kept
      redis.call('HSET', KEYS[1], all[i], cjson.encode(record))
    end
  end
end
return changed
