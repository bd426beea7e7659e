-- wrk script for benchmarks/bench_proofs.py: proofs at random positions, or one fixed path.
--
--   wrk -s benchmarks/proofs.lua URL -- inclusion SIZE
--   wrk -s benchmarks/proofs.lua URL -- consistency SIZE
--   wrk -s benchmarks/proofs.lua URL -- path PATH
--
-- "inclusion" asks for the inclusion proof of a position chosen at random from 1 to SIZE in the
-- tree of SIZE events; "consistency" for the consistency proof from a size chosen at random
-- from 1 to SIZE - 1 to SIZE; "path" asks for PATH every time.
-- done() prints one line "BENCH_JSON {...}" with the figures and the count of each status.

local threads = {}
local next_tid = 0

function setup(thread)
   next_tid = next_tid + 1
   thread:set("tid", next_tid)
   table.insert(threads, thread)
end

local mode, size, path
status_counts = {}

function init(args)
   mode = args[1] or "inclusion"
   if mode == "path" then
      path = args[2] or "/ledger/checkpoint"
   else
      size = tonumber(args[2] or "1000000")
   end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

function request()
   if mode == "inclusion" then
      return wrk.format("GET", "/ledger/proofs/inclusion?position=" .. math.random(1, size)
                           .. "&tree_size=" .. size)
   elseif mode == "consistency" then
      return wrk.format("GET", "/ledger/proofs/consistency?from=" .. math.random(1, size - 1)
                           .. "&to=" .. size)
   end
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
