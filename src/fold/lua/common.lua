--[[
  Shared fragment, included by the loader (scripts.ts) at the top of fold-batch.lua
  and timeout.lua. Holds the barrier rules of DESIGN §4:
  states only move forward (start < ready < finish), abort is final; a barrier
  resolves `abort` as soon as any node is `abort`, and resolves to itself when
  every node's state is at least the barrier.
  Meta hash fields used here: res:B, reason:B, at:B (ms), deadline:B (ms), final,
  pending, created, timeout_ms.
  Deadlines: `k.deadlines` is a zset of "<cid> <barrier>" -> deadline (ms). A
  barrier that resolves drops its own member and, unless the cluster ended,
  adds the next barrier's deadline (its clock starts now), in the same atomic
  call; the workers' sweep fires the due ones through timeout.lua.
]]
local RANK = { [''] = 0, start = 1, ready = 2, finish = 3 }
local BARRIERS = { 'start', 'ready', 'finish' }

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function sorted_keys(tbl)
  local out = {}
  for k in pairs(tbl) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function fail(code, reason)
  return cjson.encode({ ok = false, code = code, reason = reason })
end

-- Appends an event to the global stream, then to the cluster's stream under
-- the same id (the global stream's ids are always the newer ones).
local function add_event(cluster_events, all_events, max_all, ev)
  local body = cjson.encode(ev)
  local id = redis.call('XADD', all_events, 'MAXLEN', '~', max_all, '*', 'e', body)
  redis.call('XADD', cluster_events, id, 'e', body)
  ev.id = id
  return ev
end

-- Resolves every barrier that the node states now decide. Returns the new
-- resolutions, in barrier order, each already recorded in meta and logged.
local function resolve(k, cid, nodes, now, abort_reason, max_all)
  local out = {}
  local aborted = {}
  for _, id in ipairs(sorted_keys(nodes)) do
    if nodes[id].state == 'abort' then aborted[#aborted + 1] = id end
  end
  for _, b in ipairs(BARRIERS) do
    if redis.call('HEXISTS', k.meta, 'res:' .. b) == 0 then
      local result, reason = nil, ''
      if #aborted > 0 then
        result = 'abort'
        reason = abort_reason ~= '' and abort_reason or ('node ' .. table.concat(aborted, ', ') .. ' aborted')
      else
        local all = true
        for _, n in pairs(nodes) do
          if (RANK[n.state] or 0) < RANK[b] then all = false break end
        end
        if not all then break end
        result = b
      end
      local idx = b == 'start' and 0 or (b == 'ready' and 1 or 2)
      local prev_at = tonumber(redis.call('HGET', k.meta, idx == 0 and 'created' or ('at:' .. BARRIERS[idx]))) or now
      redis.call('HSET', k.meta, 'res:' .. b, result, 'reason:' .. b, reason, 'at:' .. b, now)
      local ev = add_event(k.events, k.all_events, max_all, {
        v = 1, type = 'resolution', cluster = cid, barrier = b, result = result,
        reason = reason ~= '' and reason or nil, at = now, took_ms = now - prev_at,
      })
      out[#out + 1] = { barrier = b, result = result, reason = reason ~= '' and reason or nil, at = now, took_ms = now - prev_at, event = ev.id }
      redis.call('ZREM', k.deadlines, cid .. ' ' .. b)
      if result == 'abort' then
        redis.call('HSET', k.meta, 'final', 'abort', 'pending', '')
      elseif b == 'finish' then
        redis.call('HSET', k.meta, 'final', 'finish', 'pending', '')
      else
        local next_b = BARRIERS[idx + 2]
        redis.call('HSET', k.meta, 'pending', next_b)
        local timeout_ms = tonumber(redis.call('HGET', k.meta, 'timeout_ms'))
        if timeout_ms and timeout_ms > 0 then
          redis.call('HSET', k.meta, 'deadline:' .. next_b, now + timeout_ms)
          redis.call('ZADD', k.deadlines, now + timeout_ms, cid .. ' ' .. next_b)
        end
      end
    end
  end
  if #out > 0 then
    local latest = out[#out].result
    for _, n in pairs(nodes) do n.entire_state = latest end
    if redis.call('HEXISTS', k.meta, 'final') == 1 then
      redis.call('ZREM', k.open, cid)
      redis.call('ZADD', k.ended, now, cid)
      for _, id in ipairs(sorted_keys(nodes)) do redis.call('ZREM', k.heartbeats, cid .. ' ' .. id) end
    end
  end
  return out
end

-- The answer to a node waiting at barrier b, if b is resolved.
local function answer_for(k, b)
  if not b then return nil end
  local res = redis.call('HMGET', k.meta, 'res:' .. b, 'reason:' .. b, 'at:' .. b)
  if not res[1] then return nil end
  return { barrier = b, result = res[1], reason = (res[2] and res[2] ~= '') and res[2] or nil, at = tonumber(res[3]) }
end

-- Resolves every open barrier of the cluster `abort` with `reason`, whatever its nodes' states
-- (a deadline, not admitted in time): a stand-in node `marker` is aborted. Returns the resolutions.
local function force_abort(k, cid, nodes, now, reason, max_all, marker)
  local forced = {}
  for id, n in pairs(nodes) do forced[id] = { state = n.state, roles = n.roles } end
  forced[marker] = { state = 'abort', roles = '' }
  local out = resolve(k, cid, forced, now, reason, max_all)
  for _, n in pairs(nodes) do n.entire_state = 'abort' end
  return out
end

-- The JSON outcome of a call that resolved barriers without a report (timeout.lua, admit-expire.lua).
local function resolutions_outcome(cid, resolutions)
  local events = {}
  for _, r in ipairs(resolutions) do
    events[#events + 1] = { id = r.event, v = 1, type = 'resolution', cluster = cid, barrier = r.barrier,
                            result = r.result, reason = r.reason, at = r.at, took_ms = r.took_ms }
  end
  return cjson.encode({ ok = true, resolutions = resolutions, events = events })
end
