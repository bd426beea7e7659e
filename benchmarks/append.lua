-- wrk script for benchmarks/bench_append.py: POST /events with valid envelopes.
--
--   wrk -s benchmarks/append.lua URL/events -- MODE NONCE [BATCH] [STREAMS]
--
-- MODE is "single" (one envelope per request) or "batch" ({"events": [...]} of BATCH envelopes).
-- Every envelope gets a unique event_id (NONCE, 8 hex digits chosen per wrk run, then the wrk
-- thread and a per-thread counter) and alternates valuation_reported / company_registered over
-- STREAMS company streams chosen at random. No expected_version is sent.
-- done() prints one line "BENCH_JSON {...}" with the figures and the count of each status.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")  -- setup, response, done

local mode, nonce, batch_size, streams
local counter = 0

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
