-- wrk script for scripts/bench-webhooks.sh: POSTs pre-signed, distinct Plane webhook bodies read
-- from the file given after `--` (one "signature<TAB>body" per line), each wrk thread taking its
-- own share of the lines so no two requests carry the same body. An optional third argument holds a
-- total request rate (see delay()).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  local nthreads = tonumber(args[2]) or 1
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == tid then
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(lines, { signature, body })
    end
    n = n + 1
  end
  index = 0
  -- optional third argument: a total request rate to hold (requests/s over all threads); each
  -- thread spaces its requests evenly on a wall-clock schedule (LuaJIT ffi gettimeofday), so the
  -- load is paced rather than as fast as the server answers
  local rate = tonumber(args[3]) or 0
  interval = rate > 0 and (nthreads * 1000 / rate) or 0
  next_slot = 0
end

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } bench_timeval;
  int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_slot < now then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval
  return wait
end

function request()
  index = index + 1
  local item = lines[((index - 1) % #lines) + 1]
  return wrk.format("POST", "/webhook/plane", { ["Content-Type"] = "application/json", ["X-Plane-Signature"] = item[1] }, item[2])
end

function done(summary, latency, requests)
  io.write(string.format("wrk: %d requests in %.2f s, non-2xx/3xx %d, socket errors %d\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("wrk latency ms: p50 %.2f  p99 %.2f  max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
