--[[
  An operator ends a cluster (`cluster-sync cancel`, `DELETE /clusters/:id`):
  every barrier not yet resolved resolves `abort` with the given reason, the
  cluster ends with `end_cause` ARGV[4], and who did it is recorded in meta
  (`ended_by`, `end_note`). An operator event, not a node's report: no node
  state moves. A cluster that has ended already changes nothing.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] cluster meta (hash)
  KEYS[3] cluster events (stream)      KEYS[4] all events (stream)
  KEYS[5] heartbeats (zset)            KEYS[6] open clusters (zset)
  KEYS[7] deadlines (zset)             KEYS[8] ended clusters (zset)
  ARGV[1] cluster id   ARGV[2] reason ("cancelled by alice: wrong kernel")
  ARGV[3] max length of the all-events stream   ARGV[4] end cause (`cancelled`)
  ARGV[5] who (for meta `ended_by`)

  Returns a JSON outcome {ok=true, resolutions=[...], events=[...]} or
  {ok=false, code, reason}: code UNKNOWN_CLUSTER, or ENDED (reason: how it ended).
]]
--@include common.lua

local cid, reason, max_all, cause, who = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local k = { state = KEYS[1], meta = KEYS[2], events = KEYS[3], all_events = KEYS[4], heartbeats = KEYS[5], open = KEYS[6], deadlines = KEYS[7], ended = KEYS[8] }

local raw = redis.call('HGET', k.state, cid)
if not raw or redis.call('EXISTS', k.meta) == 0 then return fail('UNKNOWN_CLUSTER', 'unknown cluster ' .. cid) end
local ended = redis.call('HMGET', k.meta, 'final', 'end_cause')
if ended[1] then
  return fail('ENDED', 'cluster ' .. cid .. ' ended already (' .. ended[1] .. ', ' .. (ended[2] or 'cause unknown') .. ')')
end
local nodes = cjson.decode(raw)
local now = now_ms()
redis.call('HSET', k.meta, 'ended_by', who, 'end_note', reason)
-- As timeout.lua: an operator's pseudo-node in abort makes every open barrier resolve abort.
local resolutions = force_abort(k, cid, nodes, now, reason, max_all, cause, '~operator')
for _, b in ipairs(BARRIERS) do redis.call('ZREM', k.deadlines, cid .. ' ' .. b) end
redis.call('HSET', k.state, cid, cjson.encode(nodes))
return resolutions_outcome(cid, resolutions)
