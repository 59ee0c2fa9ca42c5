-- wrk script for Staryer's load test. Environment:
--   MODE       check | event | batch | batch_keys | embed | pages   (what each request is)
--   STARYER_KEY  the creator's secret key
--   STARYER_PK   its publishable key (embed: the widget's GET of embed `pricing`)
--   CUSTOMERS  how many customer ids to spread events over (customer-0 …)
--   RUN        a nonce that keeps idempotency keys unique across runs
--   PAGES      pages: the paths to GET in turn (comma-separated), with
--   COOKIE     pages: the signed-in browser's cookie (`name=value`)
local mode = os.getenv("MODE") or "check"
local key = os.getenv("STARYER_KEY") or "none"
local customers = tonumber(os.getenv("CUSTOMERS") or "10000")
local run = os.getenv("RUN") or tostring(os.time())
local publishable = os.getenv("STARYER_PK") or "none"
-- Returning visitors of the widget: each is exposed once, then answered from memory.
local visitors = 1000
local meters = { "calls", "tokens", "seats" }

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

local n = 0

local pages = {}
for path in string.gmatch(os.getenv("PAGES") or "", "[^,]+") do
  pages[#pages + 1] = path
end
if mode == "pages" then
  wrk.headers["Cookie"] = os.getenv("COOKIE")
end

local function event(i, idempotency_key)
  local body = '{"customer_id":"customer-' .. math.random(0, customers - 1)
    .. '","meter":"' .. meters[(i % 3) + 1] .. '","value":1'
  if idempotency_key then
    body = body .. ',"idempotency_key":"' .. idempotency_key .. '"'
  end
  return body .. "}"
end

request = function()
  n = n + 1
  if mode == "pages" then
    return wrk.format("GET", pages[(n % #pages) + 1], nil, nil)
  elseif mode == "embed" then
    return wrk.format("GET", "/v1/embed/pricing?key=" .. publishable .. "&visitor_id=visitor-"
      .. math.random(0, visitors - 1), nil, nil)
  elseif mode == "check" then
    return wrk.format(nil, "/v1/check", nil, event(n))
  elseif mode == "event" then
    return wrk.format(nil, "/v1/events", nil, event(n))
  end
  local keyed = mode == "batch_keys"
  local parts = {}
  for i = 1, 100 do
    parts[i] = event(i, keyed and (run .. "-" .. tid .. "-" .. n .. "-" .. i) or nil)
  end
  return wrk.format(nil, "/v1/events", nil, '{"events":[' .. table.concat(parts, ",") .. "]}")
end
