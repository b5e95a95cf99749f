-- POST /api/pems/write-sync, one organization per request, each holding 100 pending
-- modifications; BENCH_ORGS is a file with one organization id per line. Every thread
-- takes its own slice and stops when it runs out, so each request really queues 100.
local token = os.getenv("BENCH_TOKEN")
local orgs = {}
for line in io.lines(os.getenv("BENCH_ORGS")) do orgs[#orgs + 1] = line end

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
  next_index = tid + 1
  issued = 0
end

function request()
  local org = orgs[next_index]
  if org == nil then
    wrk.thread:stop()
    org = orgs[1]
  end
  next_index = next_index + nthreads
  return wrk.format("POST", "/api/pems/write-sync",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token },
    '{"organizationId":"' .. org .. '"}')
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write
             + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'BENCH {"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errs, summary.errors.status))
end
