-- update_user_claims: change a person's profile claims and set their updated_at, at once.
--
-- The change is a JSON merge patch of the claims (RFC 7396), checked beforehand
-- (shared.domain.user_claims): a claim given null is cleared, any other value replaces
-- the claim's, and an object (the address) is merged member by member, a member given
-- null cleared and an object left with no member cleared itself. Applied here, to the
-- record as stored, so that whatever changed it meanwhile (another change of claims, a
-- new password) is kept: no caller reads the record and writes it back. The record's
-- other fields, those of a newer release too, are written back as they were.
--
-- KEYS[1]  user        the person's record (JSON)
-- ARGV[1]  changes     the merge patch of the claims (a JSON object)
-- ARGV[2]  updated_at  the time, in seconds since the epoch
-- Returns: the record as stored now, or nil when there is no such person.

local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local record = cjson.decode(raw)
local claims = record.claims
if type(claims) ~= 'table' then claims = {} end
for name, value in pairs(cjson.decode(ARGV[1])) do
  if value == cjson.null then
    claims[name] = nil
  elseif type(value) == 'table' then
    local merged = claims[name]
    if type(merged) ~= 'table' then merged = {} end
    for member, text in pairs(value) do
      if text == cjson.null then merged[member] = nil else merged[member] = text end
    end
    if next(merged) == nil then merged = nil end
    claims[name] = merged
  else
    claims[name] = value
  end
end
record.claims = claims
record.updated_at = tonumber(ARGV[2])
local stored = cjson.encode(record)
redis.call('SET', KEYS[1], stored)
return stored
