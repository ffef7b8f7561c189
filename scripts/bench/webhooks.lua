-- wrk script for scripts/bench-webhooks.sh: POSTs pre-signed, distinct Plane webhook bodies read
-- from the file given after `--` (one "signature<TAB>body" per line), each wrk thread taking its
-- own share of the lines so no two requests carry the same body. An optional third argument paces
-- each connection (see delay()).
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
  -- optional third argument: milliseconds each connection waits between requests (a paced load)
  pause = tonumber(args[3]) or 0
end

function delay()
  return pause
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
