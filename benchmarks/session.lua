-- wrk script: a read-mostly mix (9 reads : 1 write) where every connection keeps its own cookie.
-- wrk gives each thread its own Lua state; run with as many connections as threads (-c N -t N)
-- so each Lua state drives exactly one connection, i.e. one visitor with one session.

-- `wrk ... -s session.lua URL -- login` gives the login-heavy mix instead: 1 login (a new session
-- ID) : 1 write : 3 reads.

local cookie = nil
local n = 0
local mix = "read"

init = function(args)
  if args[1] == "login" then
    mix = "login"
  end
end

request = function()
  n = n + 1
  local path
  if n == 1 then
    path = "/seed"
  elseif mix == "login" and n % 5 == 0 then
    path = "/login"
  elseif mix == "login" and n % 5 == 1 then
    path = "/write"
  elseif mix == "read" and n % 10 == 0 then
    path = "/write"
  else
    path = "/read"
  end
  local headers = {}
  if cookie then
    headers["Cookie"] = cookie
  end
  return wrk.format("GET", path, headers)
end

response = function(status, headers, body)
  for name, value in pairs(headers) do
    if string.lower(name) == "set-cookie" then
      local pair = string.match(value, "^%s*([^;]*)")
      local v = string.match(pair, "=(.*)$")
      if v == nil or v == "" or v == '""' or v == "''" then
        cookie = nil
      else
        cookie = pair
      end
    end
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
