--[[
  A barrier's deadline has come: if it is still unresolved, resolve it (and
  every later barrier) `abort`, naming the nodes that had not reached it.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] cluster meta (hash)
  KEYS[3] cluster events (stream)      KEYS[4] all events (stream)
  KEYS[5] heartbeats (zset)            KEYS[6] open clusters (zset)
  KEYS[7] deadlines (zset): this barrier's member is dropped whatever happens
  KEYS[8] ended clusters (zset)        KEYS[9] clusters whose end the retrier judges (zset)
  ARGV[1] cluster id   ARGV[2] barrier   ARGV[3] reason prefix ("barrier ready timed out after 8h")
  ARGV[4] max length of the all-events stream
  ARGV[5] pending ms: 0 drops the deadline whatever happens. Above 0 (the
          workers' sweep), a deadline that aborts the cluster stays in the
          zset, due again that many ms later, and its outcome is kept in meta
          (`timeout_outcome:<barrier>`): the sweep publishes it once a replica
          holds it, then drops the deadline and the kept outcome
          (FoldStore.confirmTimeout). A
          sweep that failed before that fires it again and gets the kept
          outcome, to publish: a timeout is never decided without being told.

  Returns a JSON outcome {ok=true, resolutions=[...], events=[...]} (empty when
  the barrier had resolved in time) or {ok=false, code, reason}.
]]
--@include common.lua

local cid, barrier, prefix, max_all, pending_ms = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]) or 0
local k = { state = KEYS[1], meta = KEYS[2], events = KEYS[3], all_events = KEYS[4], heartbeats = KEYS[5], open = KEYS[6], deadlines = KEYS[7], ended = KEYS[8], retry = KEYS[9] }
local member = cid .. ' ' .. barrier
local kept_field = 'timeout_outcome:' .. barrier

local none = cjson.encode({ ok = true, resolutions = {}, events = {} })
local score = redis.call('ZSCORE', k.deadlines, member)
if not RANK[barrier] or barrier == '' then
  redis.call('ZREM', k.deadlines, member)
  return fail('BAD_BARRIER', 'no barrier ' .. barrier)
end
local raw = redis.call('HGET', k.state, cid)
if not raw or redis.call('EXISTS', k.meta) == 0 then
  redis.call('ZREM', k.deadlines, member)
  return fail('UNKNOWN_CLUSTER', 'unknown cluster ' .. cid)
end
if redis.call('HEXISTS', k.meta, 'res:' .. barrier) == 1 then
  local kept = redis.call('HGET', k.meta, kept_field)
  if kept and pending_ms > 0 then
    -- Fired before, not yet confirmed told. Due again (the sweep that fired it failed): the same outcome, pending
    -- again. Not due: a sweep is telling it now (another sweep that listed it before it was fired gets nothing).
    if score and tonumber(score) <= now_ms() then
      redis.call('ZADD', k.deadlines, now_ms() + pending_ms, member)
      return kept
    end
    return none
  end
  redis.call('ZREM', k.deadlines, member)
  return none
end
redis.call('ZREM', k.deadlines, member)
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
  local more = force_abort(k, cid, nodes, now, reason, max_all, 'timed_out', '~timeout')
  for _, r in ipairs(more) do resolutions[#resolutions + 1] = r end
end
redis.call('HSET', k.state, cid, cjson.encode(nodes))
local outcome = resolutions_outcome(cid, resolutions)
if pending_ms > 0 and #resolutions > 0 then
  redis.call('HSET', k.meta, kept_field, outcome)
  redis.call('ZADD', k.deadlines, now + pending_ms, member)
end
return outcome
