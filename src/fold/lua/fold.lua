--[[
  Folds one node report into its cluster's state, atomically (the rules are
  fold-report.lua's, shared with fold-batch.lua).

  KEYS[1] sched/cluster_state (hash)   KEYS[2] sched/id2cluster (hash)
  KEYS[3] all events (stream)          KEYS[4] heartbeats (zset)
  KEYS[5] open clusters (zset)         KEYS[6] deadlines (zset)
  KEYS[7] cluster meta (hash)          KEYS[8] cluster events (stream)
  KEYS[9] cluster's folded reports (hash: report id -> outcome JSON)
  ARGV[1] cluster id   ARGV[2] report JSON {id, job, state, token, at, info?, reason?}
  ARGV[3] max length of the all-events stream

  Returns a JSON outcome:
    {ok=true, dup, changed, state, resolutions=[...], answer={barrier,result,reason,at}|nil, events=[...]}
    {ok=false, code, reason}   -- refused; nothing was written
  A report id seen before in this cluster returns its first outcome with
  dup=true and writes nothing, so a re-run repeats only its side effects.
]]
--@include common.lua
--@include fold-report.lua

local g = { state = KEYS[1], id2cluster = KEYS[2], all_events = KEYS[3], heartbeats = KEYS[4], open = KEYS[5],
            deadlines = KEYS[6], max_all = tonumber(ARGV[3]) }
local cx, refused = load_cluster(cluster_keys(g, KEYS[7], KEYS[8], KEYS[9]), ARGV[1])
if not cx then return cjson.encode(refused) end
local outcome = fold_report(g, cx, cjson.decode(ARGV[2]), now_ms())
store_cluster(cx)
return cjson.encode(outcome)
