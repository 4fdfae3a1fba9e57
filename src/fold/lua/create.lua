--[[
  Writes a new cluster's state, all at once, before any node job is enqueued
  (DESIGN §2: Compass-CI wrote it after enqueueing, a race). Every argument is
  checked before the first write: a bad one writes nothing.

  The cluster is also put in the "submitting" zset (KEYS[7]); submit removes
  it once the node jobs and the first deadline are queued. A cluster still
  there a while later was left half-written (the scheduler died, Redis
  refused the enqueue) and the workers' reaper finishes or removes it.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] sched/id2cluster (hash)
  KEYS[3] cluster meta (hash)          KEYS[4] cluster events (stream)
  KEYS[5] all events (stream)          KEYS[6] open clusters (zset)
  KEYS[7] clusters being submitted (zset)   KEYS[8] barrier deadlines (zset, member "<cid> <barrier>")
  KEYS[9] the clusters of this cluster's spec (zset, see Keys.specClusters)
  ARGV[1] cluster id   ARGV[2] nodes JSON {job: entry}   ARGV[3] meta JSON {field: value}
          (meta must hold timeout_ms, an integer of ms between ARGV[6] and ARGV[7])
  ARGV[4] submitted event JSON (without id and at)   ARGV[5] max length of the all-events stream
  ARGV[6] smallest timeout_ms   ARGV[7] largest timeout_ms

  Returns {creation time (ms), id of the submitted event}, or an error reply
  (`EXISTS ...` when the cluster exists, `INVALID ...` naming a bad argument).
]]
--@include common.lua

local cid = ARGV[1]
local k = { state = KEYS[1], id2cluster = KEYS[2], meta = KEYS[3], events = KEYS[4], all_events = KEYS[5], open = KEYS[6], submitting = KEYS[7], deadlines = KEYS[8], spec_clusters = KEYS[9] }

-- Check everything first: nothing below may fail half-way.
if type(cid) ~= 'string' or cid == '' or #cid > 128 then return redis.error_reply('INVALID cluster id') end
local ok_nodes, nodes = pcall(cjson.decode, ARGV[2])
if not ok_nodes or type(nodes) ~= 'table' or next(nodes) == nil then return redis.error_reply('INVALID nodes: not a JSON object of node entries') end
for id, entry in pairs(nodes) do
  if type(id) ~= 'string' or id == '' or type(entry) ~= 'table' then return redis.error_reply('INVALID nodes: entry ' .. tostring(id)) end
end
local ok_meta, meta = pcall(cjson.decode, ARGV[3])
if not ok_meta or type(meta) ~= 'table' then return redis.error_reply('INVALID meta: not a JSON object') end
for f, v in pairs(meta) do
  if type(f) ~= 'string' or (type(v) ~= 'string' and type(v) ~= 'number') then return redis.error_reply('INVALID meta field ' .. tostring(f)) end
end
local min_t, max_t = tonumber(ARGV[6]), tonumber(ARGV[7])
local timeout = tonumber(meta.timeout_ms)
if not min_t or not max_t or not timeout or timeout ~= timeout or timeout < min_t or timeout > max_t or math.floor(timeout) ~= timeout then
  return redis.error_reply('INVALID timeout_ms ' .. tostring(meta.timeout_ms) .. ': must be whole ms between ' .. tostring(ARGV[6]) .. ' and ' .. tostring(ARGV[7]))
end
local ok_ev, ev = pcall(cjson.decode, ARGV[4])
if not ok_ev or type(ev) ~= 'table' then return redis.error_reply('INVALID submitted event: not a JSON object') end
local max_all = tonumber(ARGV[5])
if not max_all or max_all < 1 then return redis.error_reply('INVALID max length of the event stream') end
if redis.call('HEXISTS', k.state, cid) == 1 or redis.call('EXISTS', k.meta) == 1 then
  return redis.error_reply('EXISTS cluster ' .. cid .. ' exists already')
end

local now = now_ms()
redis.call('HSET', k.state, cid, ARGV[2])
for _, id in ipairs(sorted_keys(nodes)) do redis.call('HSET', k.id2cluster, id, cid) end
for f, v in pairs(meta) do redis.call('HSET', k.meta, f, v) end
redis.call('HSET', k.meta, 'created', now, 'pending', 'start', 'deadline:start', now + timeout)
redis.call('ZADD', k.open, now, cid)
redis.call('ZADD', k.submitting, now, cid)
-- The start barrier's deadline, fired by the workers' sweep (later ones are written by the fold).
redis.call('ZADD', k.deadlines, now + timeout, cid .. ' start')
redis.call('ZADD', k.spec_clusters, now, cid)
ev.at = now
local added = add_event(k.events, k.all_events, max_all, ev)
redis.call('HSET', k.meta, 'submitted_event', added.id)
return { now, added.id }
