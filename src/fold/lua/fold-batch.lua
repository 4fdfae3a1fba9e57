--[[
  Folds the reports of one BullMQ job (a bridge's group commit) in order,
  each on its own, in one atomic call (the rules are fold-report.lua's). A
  refused or malformed report gets its refusal as its outcome and writes
  nothing; the others fold as if it were not there.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] sched/id2cluster (hash)
  KEYS[3] all events (stream)          KEYS[4] heartbeats (zset)
  KEYS[5] open clusters (zset)         KEYS[6] deadlines (zset)
  KEYS[7] ended clusters (zset)        KEYS[8] clusters whose end the retrier judges (zset)
  KEYS[9 + 3i], KEYS[10 + 3i], KEYS[11 + 3i]: meta (hash), events (stream) and
    folded reports (hash) of the batch's cluster i (i = 0, 1, ...)
  ARGV[1] JSON list of reports, each {c = its cluster's index i + 1, id, job, state, token, at, info?, reason?}
  ARGV[2] JSON list of the cluster ids, in the order of their keys
  ARGV[3] max length of the all-events stream

  Returns a JSON list of outcomes, one per report, in order, each
    {ok=true, dup, changed, state, resolutions=[...], answer={barrier,result,reason,at}|nil, events=[...]}
    {ok=false, code, reason}   -- refused; nothing was written for it
  A report id seen before in its cluster returns its first outcome with
  dup=true and writes nothing, so a re-run repeats only its side effects.
  A single report is a batch of one (ClusterStore.fold).
]]
--@include common.lua
--@include messages.lua
--@include fold-report.lua

local g = { state = KEYS[1], id2cluster = KEYS[2], all_events = KEYS[3], heartbeats = KEYS[4], open = KEYS[5],
            deadlines = KEYS[6], ended = KEYS[7], retry = KEYS[8], max_all = tonumber(ARGV[3]) }
local reports = cjson.decode(ARGV[1])
local cids = cjson.decode(ARGV[2])
local now = now_ms()
local clusters = {}
local loaded = {}
local outcomes = {}
for i, r in ipairs(reports) do
  local c = type(r) == 'table' and tonumber(r.c) or nil
  local cid = c and cids[c]
  local outcome
  if type(cid) ~= 'string' then
    outcome = refusal('INVALID', 'report ' .. i .. ' of the batch names no cluster of it')
  else
    if loaded[c] == nil then
      local base = 9 + 3 * (c - 1)
      local cx, refused = load_cluster(cluster_keys(g, KEYS[base], KEYS[base + 1], KEYS[base + 2]), cid)
      loaded[c] = cx or refused
      if cx then clusters[#clusters + 1] = cx end
    end
    local cx = loaded[c]
    if cx.ok == false then outcome = cx else outcome = fold_report(g, cx, r, now) end
  end
  outcomes[i] = outcome
end
for _, cx in ipairs(clusters) do store_cluster(cx) end
return cjson.encode(outcomes)
