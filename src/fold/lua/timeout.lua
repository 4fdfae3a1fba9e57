--[[
  A barrier's deadline has come: if it is still unresolved, resolve it (and
  every later barrier) `abort`, naming the nodes that had not reached it.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] cluster meta (hash)
  KEYS[3] cluster events (stream)      KEYS[4] all events (stream)
  KEYS[5] heartbeats (zset)            KEYS[6] open clusters (zset)
  KEYS[7] deadlines (zset): this barrier's member is dropped whatever happens
  KEYS[8] ended clusters (zset)
  ARGV[1] cluster id   ARGV[2] barrier   ARGV[3] reason prefix ("barrier ready timed out after 8h")
  ARGV[4] max length of the all-events stream

  Returns a JSON outcome {ok=true, resolutions=[...], events=[...]} (empty when
  the barrier had resolved in time) or {ok=false, code, reason}.
]]
--@include common.lua

local cid, barrier, prefix, max_all = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local k = { state = KEYS[1], meta = KEYS[2], events = KEYS[3], all_events = KEYS[4], heartbeats = KEYS[5], open = KEYS[6], deadlines = KEYS[7], ended = KEYS[8] }

redis.call('ZREM', k.deadlines, cid .. ' ' .. barrier)
if not RANK[barrier] or barrier == '' then return fail('BAD_BARRIER', 'no barrier ' .. barrier) end
local raw = redis.call('HGET', k.state, cid)
if not raw or redis.call('EXISTS', k.meta) == 0 then return fail('UNKNOWN_CLUSTER', 'unknown cluster ' .. cid) end
if redis.call('HEXISTS', k.meta, 'res:' .. barrier) == 1 then
  return cjson.encode({ ok = true, resolutions = {}, events = {} })
end
local nodes = cjson.decode(raw)
local missing = {}
for _, id in ipairs(sorted_keys(nodes)) do
  local n = nodes[id]
  if n.state ~= 'abort' and (RANK[n.state] or 0) < RANK[barrier] then
    missing[#missing + 1] = id .. ' (' .. n.roles .. ')'
  end
end
-- Resolve the barriers before this one first (they may be due already), then force the rest to abort.
local now = now_ms()
local resolutions = resolve(k, cid, nodes, now, '', max_all)
if redis.call('HEXISTS', k.meta, 'res:' .. barrier) == 0 then
  local reason = prefix .. '; still missing: ' .. table.concat(missing, ', ')
  -- Mark the missing nodes' barrier as impossible: the cluster aborts.
  for _, r in ipairs(force_abort(k, cid, nodes, now, reason, max_all, '~timeout')) do resolutions[#resolutions + 1] = r end
end
redis.call('HSET', k.state, cid, cjson.encode(nodes))
return resolutions_outcome(cid, resolutions)
