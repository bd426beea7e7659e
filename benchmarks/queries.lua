-- wrk script for benchmarks/bench_queries.py: GET /companies/{id}?as_of=<date>.
--
--   wrk -s benchmarks/queries.lua URL -- COMPANIES PREFIX FIRST_DAY DAYS
--
-- Every request names a company chosen at random among PREFIX .. 1 to PREFIX .. COMPANIES and an
-- as_of date chosen at random among DAYS days from FIRST_DAY (a Unix time at 00:00 UTC).
-- done() prints one line "BENCH_JSON {...}" with the figures and the count of each status.

local threads = {}
local next_tid = 0

function setup(thread)
   next_tid = next_tid + 1
   thread:set("tid", next_tid)
   table.insert(threads, thread)
end

local companies, prefix
local dates = {}
status_counts = {}

function init(args)
   companies = tonumber(args[1] or "10000")
   prefix = args[2] or "co-"
   local first_day = tonumber(args[3] or "1546300800") -- 2019-01-01
   local days = tonumber(args[4] or "2557")            -- to 2025-12-31
   for i = 1, days do
      dates[i] = os.date("!%Y-%m-%d", first_day + (i - 1) * 86400)
   end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function request()
   local path = "/companies/" .. prefix .. math.random(1, companies)
      .. "?as_of=" .. dates[math.random(1, #dates)]
   return wrk.format("GET", path)
end

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
