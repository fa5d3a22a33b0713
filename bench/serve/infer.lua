-- wrk script for bench/serve/run.sh: posts one JSON row (the body file named by the BODY
-- environment variable) and prints requests/s, p50 and p99 as one line.
local f = assert(io.open(os.getenv("BODY"), "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d non200=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), errors,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
