--[[
  Writes a new cluster's state, all at once, before any node job is enqueued
  (DESIGN §2: Compass-CI wrote it after enqueueing, a race).

  KEYS[1] sched/cluster_state (hash)   KEYS[2] sched/id2cluster (hash)
  KEYS[3] cluster meta (hash)          KEYS[4] cluster events (stream)
  KEYS[5] all events (stream)          KEYS[6] open clusters (zset)
  KEYS[7] the clusters of this cluster's spec (zset, see Keys.specClusters)
  ARGV[1] cluster id   ARGV[2] nodes JSON {job: entry}   ARGV[3] meta JSON {field: value}
  ARGV[4] submitted event JSON (without id and at)   ARGV[5] max length of the all-events stream

  Returns {creation time (ms), id of the submitted event}, or an error reply when the cluster exists.
]]
--@include common.lua

local cid = ARGV[1]
local k = { state = KEYS[1], id2cluster = KEYS[2], meta = KEYS[3], events = KEYS[4], all_events = KEYS[5], open = KEYS[6] }
if redis.call('HEXISTS', k.state, cid) == 1 or redis.call('EXISTS', k.meta) == 1 then
  return redis.error_reply('EXISTS cluster ' .. cid .. ' exists already')
end
local nodes = cjson.decode(ARGV[2])
local now = now_ms()
redis.call('HSET', k.state, cid, ARGV[2])
for _, id in ipairs(sorted_keys(nodes)) do redis.call('HSET', k.id2cluster, id, cid) end
local meta = cjson.decode(ARGV[3])
for f, v in pairs(meta) do redis.call('HSET', k.meta, f, v) end
redis.call('HSET', k.meta, 'created', now, 'pending', 'start')
redis.call('ZADD', k.open, now, cid)
redis.call('ZADD', KEYS[7], now, cid)
local ev = cjson.decode(ARGV[4])
ev.at = now
local added = add_event(k.events, k.all_events, tonumber(ARGV[5]), ev)
return { now, added.id }
