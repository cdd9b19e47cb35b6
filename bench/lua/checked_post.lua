-- wrk script: POST application/x-www-form-urlencoded bodies and check every response.
-- Configured through the environment (set by bench/wrk.py):
--   BENCH_AUTH     Authorization header value (client_secret_basic), or empty
--   BENCH_BODY     one body sent with every request, or
--   BENCH_BODIES   a file with one body per line, each sent once (a fresh code, refresh
--                  token or token to revoke per request); running out is counted
--   BENCH_EXPECT   a substring every response body must contain (may be empty)
--   BENCH_STATUS   the status every response must have
-- done() prints one line "BENCH_JSON {...}" with the figures and the failures.

local auth = os.getenv("BENCH_AUTH") or ""
local body = os.getenv("BENCH_BODY") or ""
local expect = os.getenv("BENCH_EXPECT") or ""
local expect_status = tonumber(os.getenv("BENCH_STATUS") or "200")
local bodies_file = os.getenv("BENCH_BODIES") or ""

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Accept"] = "application/json",
}
if auth ~= "" then headers["Authorization"] = auth end

local bodies = nil
local next_body = 1

ok = 0
bad_status = 0
bad_body = 0
exhausted = 0
sample = ""

function init(args)
  if bodies_file ~= "" then
    bodies = {}
    for line in io.lines(bodies_file) do bodies[#bodies + 1] = line end
  end
end

function request()
  local this = body
  if bodies then
    this = bodies[next_body]
    if this == nil then
      -- Out of fresh values: repeat the last, whose answer is then an error, and say so.
      exhausted = exhausted + 1
      this = bodies[#bodies]
    end
    next_body = next_body + 1
  end
  return wrk.format("POST", wrk.path, headers, this)
end

function response(status, _, response_body)
  if status ~= expect_status then
    bad_status = bad_status + 1
    if sample == "" then sample = status .. " " .. string.sub(response_body or "", 1, 200) end
  elseif expect ~= "" and not string.find(response_body or "", expect, 1, true) then
    bad_body = bad_body + 1
    if sample == "" then sample = status .. " " .. string.sub(response_body or "", 1, 200) end
  else
    ok = ok + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function quoted(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, _)
  local n_ok, n_status, n_body, n_exhausted, first = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok")
    n_status = n_status + t:get("bad_status")
    n_body = n_body + t:get("bad_body")
    n_exhausted = n_exhausted + t:get("exhausted")
    if first == "" then first = t:get("sample") or "" end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,' ..
    '"ok":%d,"bad_status":%d,"bad_body":%d,"exhausted":%d,"socket_errors":%d,"first_bad":%s}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    n_ok, n_status, n_body, n_exhausted,
    e.connect + e.read + e.write + e.timeout, quoted(first)))
end
