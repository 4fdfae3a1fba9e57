--[[
  Shared fragment, included after common.lua by
  fold-batch.lua (a BullMQ job's reports, or one report as a batch of one): the rules for folding one report.

  A fold reads a cluster once (load_cluster), folds reports into it
  (fold_report), then writes its node states back once (store_cluster).
  fold_report checks everything before it writes anything, so a refused or
  malformed report writes nothing and leaves its neighbours in the batch alone.

  g: global keys and settings { state, id2cluster, all_events, heartbeats, open, deadlines, ended, retry, max_all }
  Per cluster: { meta, events, reports } (cs/cluster/<cid>/...): `reports` is the
  hash report id -> outcome JSON that makes a repeated report change nothing.
]]

local TARGET = { wait_start = 'start', wait_ready = 'ready', wait_finish = 'finish', finished = 'finish',
                 failed = 'abort', abort = 'abort' }
local WAITS = { wait_start = 'start', wait_ready = 'ready', wait_finish = 'finish', finished = 'finish' }
local KINDS = { wait_start = true, wait_ready = true, wait_finish = true, finished = true, failed = true,
                abort = true, write_state = true, heartbeat = true, send = true, wait_msg = true }
local INFO_FIELDS = { node_roles = 'roles', ip = 'ip', direct_macs = 'direct_macs', direct_ips = 'direct_ips' }

local function refusal(code, reason)
  return { ok = false, code = code, reason = reason }
end

local function is_str(v)
  return type(v) == 'string' and v ~= ''
end

-- The keys of one cluster's folds, in the shape common.lua's resolve() takes.
local function cluster_keys(g, meta, events, reports)
  return { state = g.state, id2cluster = g.id2cluster, meta = meta, events = events, all_events = g.all_events,
           reports = reports, heartbeats = g.heartbeats, open = g.open, deadlines = g.deadlines, ended = g.ended, retry = g.retry }
end

-- Reads what every report of a cluster needs once: its token and node states.
-- Returns the cluster context, or nil and a refusal when the cluster is unknown.
local function load_cluster(k, cid)
  local meta = redis.call('HMGET', k.meta, 'token', 'final', 'heartbeat_ms')
  local token = meta[1]
  if not token then return nil, refusal('UNKNOWN_CLUSTER', 'unknown cluster ' .. cid) end
  local raw = redis.call('HGET', k.state, cid)
  if not raw then return nil, refusal('UNKNOWN_CLUSTER', 'no state for cluster ' .. cid) end
  return { k = k, cid = cid, token = token, final = meta[2], heartbeat_ms = tonumber(meta[3]) or 5000,
           nodes = cjson.decode(raw), dirty = false }
end

-- Writes the cluster's node states back if a fold changed them.
local function store_cluster(cx)
  if cx.dirty then
    redis.call('HSET', cx.k.state, cx.cid, cjson.encode(cx.nodes))
    cx.dirty = false
  end
end

-- Checks a report's shape (the fold worker validated it; this guards the script's own writes).
local function malformed(r)
  if type(r) ~= 'table' then return 'report is not an object' end
  if not is_str(r.id) then return 'id: missing' end
  if not is_str(r.job) then return 'job: missing' end
  if not is_str(r.token) then return 'token: missing' end
  if type(r.state) ~= 'string' or not KINDS[r.state] then return 'state: not a report kind' end
  if type(r.at) ~= 'number' then return 'at: not a number' end
  if r.reason ~= nil and r.reason ~= cjson.null and type(r.reason) ~= 'string' then return 'reason: not a string' end
  if r.info ~= nil and r.info ~= cjson.null then
    if type(r.info) ~= 'table' then return 'info: not an object' end
    for f, v in pairs(r.info) do
      if not INFO_FIELDS[f] then return 'info: unknown field ' .. tostring(f) end
      if type(v) ~= 'string' then return 'info.' .. f .. ': not a string' end
    end
  end
  return nil
end

-- Folds one report into the loaded cluster cx at server time `now`.
-- Returns the outcome table:
--   {ok=true, dup, changed, state, resolutions=[...], answer=..., events=[...]} or {ok=false, code, reason}.
local function fold_report(g, cx, r, now)
  local bad = malformed(r)
  if bad then return refusal('INVALID', bad) end
  local k, cid = cx.k, cx.cid
  local job, kind = r.job, r.state
  if cx.token ~= r.token then return refusal('BAD_TOKEN', 'wrong token for cluster ' .. cid) end
  local node = cx.nodes[job]
  if not node then
    local owner = redis.call('HGET', k.id2cluster, job)
    if not owner then return refusal('UNKNOWN_JOB', 'unknown job ' .. job) end
    if owner ~= cid then return refusal('OTHER_CLUSTER', 'job ' .. job .. ' belongs to cluster ' .. owner .. ', not ' .. cid) end
    return refusal('UNKNOWN_JOB', 'job ' .. job .. ' is not a node of cluster ' .. cid)
  end
  if kind == 'heartbeat' then
    if not cx.final and node.state ~= 'finish' and node.state ~= 'abort' then
      redis.call('ZADD', k.heartbeats, now + 3 * cx.heartbeat_ms, cid .. ' ' .. job)
    end
    return { ok = true, dup = false, changed = false, state = node.state, heartbeat = true }
  end

  local seen = redis.call('HGET', k.reports, r.id)
  if seen then
    local o = cjson.decode(seen)
    o.dup = true
    o.answer = answer_for(k, WAITS[kind])
    if o.message then o.message = msg_again(k, cid, cx.nodes, o.message) end
    return o
  end

  -- Named messages (messages.lua): no node state moves, no barrier resolves.
  if kind == 'send' or kind == 'wait_msg' then return fold_message_report(g, cx, r, node, now) end

  local given_reason = type(r.reason) == 'string' and r.reason or ''
  local changed = false
  local before = node.state
  local target = TARGET[kind]
  if target and before ~= 'abort' then
    if target == 'abort' or (RANK[target] or 0) > (RANK[before] or 0) then
      node.state = target
      changed = true
    end
  end
  if type(r.info) == 'table' then
    for from, to in pairs(INFO_FIELDS) do
      local v = r.info[from]
      if type(v) == 'string' and node[to] ~= v then
        node[to] = v
        changed = true
      end
    end
  end

  local events = {}
  local resolutions = {}
  if changed then
    cx.dirty = true
    events[#events + 1] = add_event(k.events, k.all_events, g.max_all, {
      v = 1, type = 'report', cluster = cid, job = job, roles = node.roles, report = kind,
      state = node.state, from = before, ip = node.ip ~= '' and node.ip or nil,
      reason = given_reason ~= '' and given_reason or nil, at = now, sent_at = r.at,
    })
    if node.state == 'finish' or node.state == 'abort' then
      redis.call('ZREM', k.heartbeats, cid .. ' ' .. job)
    end
    local reason, cause = '', nil
    if node.state == 'abort' and before ~= 'abort' then
      reason = 'node ' .. job .. ' (' .. node.roles .. ') reported ' .. kind
      if given_reason ~= '' then reason = reason .. ': ' .. given_reason end
      cause = cause_of(kind, given_reason)
    end
    resolutions = resolve(k, cid, cx.nodes, now, reason, g.max_all, cause)
    if #resolutions > 0 then cx.final = redis.call('HGET', k.meta, 'final') end
    for _, res in ipairs(resolutions) do
      events[#events + 1] = { id = res.event, v = 1, type = 'resolution', cluster = cid, barrier = res.barrier,
                              result = res.result, reason = res.reason, at = res.at, took_ms = res.took_ms }
    end
  end

  local outcome = { ok = true, dup = false, changed = changed, state = node.state, resolutions = resolutions, events = events }
  redis.call('HSET', k.reports, r.id, cjson.encode(outcome))
  outcome.answer = answer_for(k, WAITS[kind])
  return outcome
end
