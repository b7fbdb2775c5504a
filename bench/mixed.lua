-- wrk script for S5: each request picks a random line of the URL file given after
-- "--" (path, tab, If-None-Match value or nothing); gzip is always accepted.
-- Prints "STATUSES {json}" with the count of each response status at the end.
local lines = {}
local threads = {}
statuses = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local path, etag = line:match("^([^\t]+)\t?(.*)$")
    if path then
      table.insert(lines, { path = path, etag = etag })
    end
  end
  math.randomseed(6 + #threads)
end

function request()
  local pick = lines[math.random(#lines)]
  local headers = {
    ["Accept-Encoding"] = "gzip",
    ["User-Agent"] = "Google-Calendar-Importer",
  }
  if pick.etag ~= "" then
    headers["If-None-Match"] = pick.etag
  end
  return wrk.format("GET", pick.path, headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      total[status] = (total[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(total) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  io.write("STATUSES {" .. table.concat(parts, ", ") .. "}\n")
end
