-- record_consent: remember a person's decision on the approval page.
--
-- The scopes the page showed are decided anew: ticked ones are remembered, unticked ones
-- forgotten; scopes approved earlier and not shown this time stay. Nothing left: the
-- record goes (see shared/storage/consents.py).
--
-- KEYS[1]  consents   the person's remembered approvals: client id -> JSON record
-- ARGV[1]  client_id  the client approved
-- ARGV[2]  shown      JSON list of the scopes the page showed
-- ARGV[3]  approved   JSON list of those the person ticked
-- ARGV[4]  now        the time, in seconds since the epoch
-- Returns: how many scopes are remembered.

local raw = redis.call('HGET', KEYS[1], ARGV[1])
local now = tonumber(ARGV[4])
local record = {first_approved = now, scope = {}}
if raw then record = cjson.decode(raw) end
local shown = {}
for _, name in ipairs(cjson.decode(ARGV[2])) do shown[name] = true end
local kept, seen = {}, {}
for _, name in ipairs(record.scope) do
  if not shown[name] and not seen[name] then table.insert(kept, name); seen[name] = true end
end
for _, name in ipairs(cjson.decode(ARGV[3])) do
  if not seen[name] then table.insert(kept, name); seen[name] = true end
end
if #kept == 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
record.scope = kept
record.last_used = now
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return #kept
