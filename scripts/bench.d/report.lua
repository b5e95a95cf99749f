-- wrk reporting hook shared by the API benchmarks: one JSON line with the figures.
-- BENCH_TOKEN (optional) is sent as a bearer token, BENCH_IF_NONE_MATCH (optional) as
-- If-None-Match (a poll that already holds the answer's entity tag).
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local tag = os.getenv("BENCH_IF_NONE_MATCH")
if tag and tag ~= "" then
  wrk.headers["If-None-Match"] = tag
end
-- BENCH_BODY_FILE (optional): POST that JSON body; BENCH_IDEMPOTENCY_KEY (optional) with it
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
local key = os.getenv("BENCH_IDEMPOTENCY_KEY")
if key and key ~= "" then
  wrk.headers["Idempotency-Key"] = key
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
