-- store_tokens(members, first, argv): store token records into a grant family.
--
-- members: the family's member set (a key name). first: the index in KEYS of the first
-- token key; every key from there to the end is one. argv: the index in ARGV of the
-- first token's values, a triple per token key: its record, its TTL in seconds (0: it
-- never expires, as webMethods Integration Server allows for access tokens), and '1'
-- when it is listed in the member set, whose TTL then covers it, else '0'. The family's
-- first access token is found by its name and is not listed.
--
-- Returns: nothing.

local function store_tokens(members, first, argv)
  -- -2: no member set yet; -1: one holding a token that never expires.
  local before = redis.call('TTL', members)
  local longest, listed = 0, false
  for i = first, #KEYS do
    local j = argv + 3 * (i - first)
    local record, ttl = ARGV[j], tonumber(ARGV[j + 1])
    if ttl == 0 then
      redis.call('SET', KEYS[i], record)
    else
      redis.call('SET', KEYS[i], record, 'EX', ttl)
    end
    if ARGV[j + 2] == '1' then
      redis.call('SADD', members, KEYS[i])
      listed = true
      if ttl == 0 then
        longest = -1
      elseif longest >= 0 and ttl > longest then
        longest = ttl
      end
    end
  end
  if not listed then
    return
  end
  if longest < 0 then
    redis.call('PERSIST', members)
  elseif before == -2 or (before >= 0 and before < longest) then
    redis.call('EXPIRE', members, longest)
  end
end
