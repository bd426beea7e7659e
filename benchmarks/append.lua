-- wrk script for benchmarks/bench_append.py: POST /events with valid envelopes.
--
--   wrk -s benchmarks/append.lua URL/events -- MODE NONCE [BATCH] [STREAMS]
--
-- MODE is "single" (one envelope per request) or "batch" ({"events": [...]} of BATCH envelopes).
-- Every envelope gets a unique event_id (NONCE, 8 hex digits chosen per wrk run, then the wrk
-- thread and a per-thread counter) and alternates valuation_reported / company_registered over
-- STREAMS company streams chosen at random. No expected_version is sent.
-- done() prints one line "BENCH_JSON {...}" with the figures and the count of each status.

local threads = {}
local next_tid = 0

function setup(thread)
   next_tid = next_tid + 1
   thread:set("tid", next_tid)
   table.insert(threads, thread)
end

local mode, nonce, batch_size, streams
local counter = 0
status_counts = {}

function init(args)
   mode = args[1] or "single"
   nonce = args[2] or string.format("%08x", os.time() % 4294967296)
   batch_size = tonumber(args[3] or "100")
   streams = tonumber(args[4] or "10000")
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

local SOURCE = '"source":{"name":"South China Morning Post","url":"https://www.scmp.com/tech"}'

local function envelope()
   counter = counter + 1
   local event_id = string.format("%s-%04x-4%03x-8%03x-%012x", nonce, tid % 65536,
                                  math.random(0, 4095), math.random(0, 4095), counter)
   local company = "bench-" .. math.random(1, streams)
   if counter % 2 == 0 then
      return '{"event_id":"' .. event_id .. '","type":"valuation_reported",'
         .. '"effective_date":"2023-09-15",' .. SOURCE .. ','
         .. '"data":{"company_id":"' .. company .. '","valuation":{"value":"'
         .. math.random(1, 999999999) .. '000","currency":"USD"},"basis":"reported"}}'
   end
   return '{"event_id":"' .. event_id .. '","type":"company_registered",'
      .. '"effective_date":"2019-06-01",' .. SOURCE .. ','
      .. '"data":{"company_id":"' .. company .. '","name":"Bench Company ' .. company
      .. '","jurisdiction":"CN"}}'
end

function request()
   local body
   if mode == "batch" then
      local parts = {}
      for i = 1, batch_size do
         parts[i] = envelope()
      end
      body = '{"events":[' .. table.concat(parts, ",") .. ']}'
   else
      body = envelope()
   end
   return wrk.format(nil, nil, nil, body)
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
