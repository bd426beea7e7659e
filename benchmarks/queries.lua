-- wrk script for benchmarks/bench_queries.py: GET /companies/{id}?as_of=<date>.
--
--   wrk -s benchmarks/queries.lua URL -- COMPANIES PREFIX FIRST_DAY DAYS
--
-- Every request names a company chosen at random among PREFIX .. 1 to PREFIX .. COMPANIES and an
-- as_of date chosen at random among DAYS days from FIRST_DAY (a Unix time at 00:00 UTC).
-- done() prints one line "BENCH_JSON {...}" with the figures and the count of each status.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")  -- setup, response, done

local companies, prefix
local dates = {}

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
