-- Closed-loop signed webhooks for wrk: every request is a distinct, pre-signed WhatsApp body.
-- The requests file (BENCH_WRK_FILE) holds one "path<TAB>signature<TAB>body" per line; thread k of
-- n sends the lines whose index is k modulo n, so no two threads ever send the same body.
local counter = 1
local threads = {}

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local n = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
   local file = os.getenv("BENCH_WRK_FILE")
   reqs = {}
   local i = 0
   for line in io.lines(file) do
      if i % n == (tid - 1) then
         local path, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
         reqs[#reqs + 1] = wrk.format("POST", path,
            {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = sig}, body)
      end
      i = i + 1
   end
   idx = 0
end

function request()
   idx = idx + 1
   if idx > #reqs then idx = 1 end
   return reqs[idx]
end
