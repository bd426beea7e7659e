-- What every wrk script of the benchmarks shares: each thread numbered ("tid", from 1), the
-- count of each answer's status, and done() printing one line "BENCH_JSON {...}" with the
-- figures and those counts (benchmarks/harness/wrk.py reads it). A script loads it with
--   dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

local threads = {}
local next_tid = 0

function setup(thread)
   next_tid = next_tid + 1
   thread:set("tid", next_tid)
   table.insert(threads, thread)
end

status_counts = {}

function response(status, headers, body)
   local key = tostring(status)
   status_counts[key] = (status_counts[key] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      local c = thread:get("status_counts")
      if c then
         for k, v in pairs(c) do
            counts[k] = (counts[k] or 0) + v
         end
      end
   end
   local parts = {}
   for k, v in pairs(counts) do
      parts[#parts + 1] = string.format('"%s":%d', k, v)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max, table.concat(parts, ",")))
end
