--[[
  A waiting cluster's admit timeout has come: unless it was admitted or ended
  meanwhile, every barrier resolves `abort` with the given reason, meta
  `end_cause` = not_admitted, and the cluster ends through common.lua's
  resolve() (meta `final`, the ended zset, events) like any other end.

  KEYS[1] sched/cluster_state   KEYS[2] cluster meta   KEYS[3] cluster events   KEYS[4] all events
  KEYS[5] heartbeats   KEYS[6] open clusters   KEYS[7] deadlines   KEYS[8] ended clusters   KEYS[9] waiting   KEYS[10] clusters due for a retry
  ARGV[1] cluster id   ARGV[2] reason   ARGV[3] max length of the all-events stream

  Returns a JSON outcome as timeout.lua: {ok=true, resolutions, events} (empty when nothing was due).
]]
--@include common.lua

local cid, reason, max_all = ARGV[1], ARGV[2], tonumber(ARGV[3])
local k = { state = KEYS[1], meta = KEYS[2], events = KEYS[3], all_events = KEYS[4], heartbeats = KEYS[5], open = KEYS[6], deadlines = KEYS[7], ended = KEYS[8], retry = KEYS[10] }
local none = cjson.encode({ ok = true, resolutions = {}, events = {} })
if redis.call('ZSCORE', KEYS[9], cid) == false then return none end
local f = redis.call('HMGET', k.meta, 'final', 'admitted')
local raw = redis.call('HGET', k.state, cid)
if f[1] or f[2] or not raw then return none end
redis.call('ZREM', KEYS[9], cid)
local nodes = cjson.decode(raw)
redis.call('HSET', k.meta, 'end_cause', 'not_admitted')
local resolutions = force_abort(k, cid, nodes, now_ms(), reason, max_all, 'not_admitted', '~admission')
redis.call('HSET', k.state, cid, cjson.encode(nodes))
return resolutions_outcome(cid, resolutions)
