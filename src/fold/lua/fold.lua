--[[
  Folds one node report into its cluster's state, atomically.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] sched/id2cluster (hash)
  KEYS[3] cluster meta (hash)          KEYS[4] cluster events (stream)
  KEYS[5] all events (stream)          KEYS[6] this report's outcome (string)
  KEYS[7] heartbeats (zset)            KEYS[8] open clusters (zset)
  ARGV[1] cluster id    ARGV[2] job id    ARGV[3] report kind    ARGV[4] token
  ARGV[5] info JSON or ""   ARGV[6] report id   ARGV[7] sent at (ms, node clock)
  ARGV[8] max length of the all-events stream   ARGV[9] outcome TTL (s)
  ARGV[10] reason or ""

  Returns a JSON outcome:
    {ok=true, dup, changed, state, resolutions=[...], answer={barrier,result,reason,at}|nil, events=[...]}
    {ok=false, code, reason}   -- rejected; nothing was written
  A report id seen before returns its first outcome with dup=true and writes
  nothing, so a re-run (a stalled BullMQ job) repeats only its side effects.
]]
--@include common.lua

local cid, job, kind, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local info_json, report_id, sent_at = ARGV[5], ARGV[6], tonumber(ARGV[7])
local max_all, ttl, given_reason = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local k = { state = KEYS[1], id2cluster = KEYS[2], meta = KEYS[3], events = KEYS[4], all_events = KEYS[5],
            outcome = KEYS[6], heartbeats = KEYS[7], open = KEYS[8] }

local TARGET = { wait_start = 'start', wait_ready = 'ready', wait_finish = 'finish', finished = 'finish',
                 failed = 'abort', abort = 'abort' }
local WAITS = { wait_start = 'start', wait_ready = 'ready', wait_finish = 'finish', finished = 'finish' }

local meta_token = redis.call('HGET', k.meta, 'token')
if not meta_token then return fail('UNKNOWN_CLUSTER', 'unknown cluster ' .. cid) end
if meta_token ~= token then return fail('BAD_TOKEN', 'wrong token for cluster ' .. cid) end
local owner = redis.call('HGET', k.id2cluster, job)
if not owner then return fail('UNKNOWN_JOB', 'unknown job ' .. job) end
if owner ~= cid then return fail('OTHER_CLUSTER', 'job ' .. job .. ' belongs to cluster ' .. owner .. ', not ' .. cid) end
local raw = redis.call('HGET', k.state, cid)
if not raw then return fail('UNKNOWN_CLUSTER', 'no state for cluster ' .. cid) end
local nodes = cjson.decode(raw)
local node = nodes[job]
if not node then return fail('UNKNOWN_JOB', 'job ' .. job .. ' is not a node of cluster ' .. cid) end

local now = now_ms()
local final = redis.call('HGET', k.meta, 'final')

if kind == 'heartbeat' then
  if not final and node.state ~= 'finish' and node.state ~= 'abort' then
    local hb = tonumber(redis.call('HGET', k.meta, 'heartbeat_ms')) or 5000
    redis.call('ZADD', k.heartbeats, now + 3 * hb, cid .. ' ' .. job)
  end
  return cjson.encode({ ok = true, dup = false, changed = false, state = node.state, heartbeat = true })
end

local seen = redis.call('GET', k.outcome)
if seen then
  local o = cjson.decode(seen)
  o.dup = true
  o.answer = answer_for(k, WAITS[kind])
  return cjson.encode(o)
end

local changed = false
local before = node.state
local target = TARGET[kind]
if target and before ~= 'abort' then
  if target == 'abort' or (RANK[target] or 0) > (RANK[before] or 0) then
    node.state = target
    changed = true
  end
end
if info_json ~= '' then
  local info = cjson.decode(info_json)
  local FIELDS = { node_roles = 'roles', ip = 'ip', direct_macs = 'direct_macs', direct_ips = 'direct_ips' }
  for from, to in pairs(FIELDS) do
    local v = info[from]
    if type(v) == 'string' and node[to] ~= v then
      node[to] = v
      changed = true
    end
  end
end

local events = {}
local resolutions = {}
if changed then
  events[#events + 1] = add_event(k.events, k.all_events, max_all, {
    v = 1, type = 'report', cluster = cid, job = job, roles = node.roles, report = kind,
    state = node.state, from = before, ip = node.ip ~= '' and node.ip or nil,
    reason = given_reason ~= '' and given_reason or nil, at = now, sent_at = sent_at,
  })
  if node.state == 'finish' or node.state == 'abort' then
    redis.call('ZREM', k.heartbeats, cid .. ' ' .. job)
  end
  local reason = ''
  if node.state == 'abort' and before ~= 'abort' then
    reason = 'node ' .. job .. ' (' .. node.roles .. ') reported ' .. kind
    if given_reason ~= '' then reason = reason .. ': ' .. given_reason end
  end
  resolutions = resolve(k, cid, nodes, now, reason, max_all)
  for _, r in ipairs(resolutions) do
    events[#events + 1] = { id = r.event, v = 1, type = 'resolution', cluster = cid, barrier = r.barrier,
                            result = r.result, reason = r.reason, at = r.at, took_ms = r.took_ms }
  end
  redis.call('HSET', k.state, cid, cjson.encode(nodes))
end

local outcome = { ok = true, dup = false, changed = changed, state = node.state, resolutions = resolutions, events = events }
redis.call('SET', k.outcome, cjson.encode(outcome), 'EX', ttl)
outcome.answer = answer_for(k, WAITS[kind])
return cjson.encode(outcome)
