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

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")  -- setup, response, done

local mode, size, path

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
