--[[
  A machine asks for work (op `take`), says it still runs its job (op `renew`),
  says it stops (op `leave`: gone at once, its reservation released), or a
  worker's sweep runs an admission pass alone (op `pass`). One atomic
  call: lapsed leases are expired, the machine's lease renewed, an admission
  pass run (admit-lib.lua), and the node job assigned to the machine, if any,
  moved to active for it.

  KEYS[1..8] machines, machine leases, waiting, assigned, submitting, heartbeats, deadlines, testbox-seen
             (testbox-seen also holds `~gen`, bumped by every change a pass could use, and `~passed`, the
             generation of the last pass: a take that changed nothing runs no pass)
  ARGV[1..5] key templates: meta, locks, testbox idle, testbox live, BullMQ queue (`{}` = the id)
  ARGV[6] op (take | renew | leave | pass)   ARGV[7] machine id   ARGV[8] testbox   ARGV[9] lease ms
  ARGV[10] session (the agent process)   ARGV[11] last job the agent ran ('' if none)
  ARGV[12] lock token for a job taken now   ARGV[13] BullMQ lock ms   ARGV[14] reserve after ms
  ARGV[15] waiting clusters looked at per pass   ARGV[16] how long a gone machine stays listed, ms

  Returns JSON: {ok=true, state, job?, cluster?, queue?, lock?, fresh? (handed now, not again), waited_ms? (submit to
  admission), reserved_for?, admitted (clusters this pass admitted)}
  or {ok=false, reason, in_use?}: in_use when another agent process (session) holds the machine id with a live
  lease (two agents with one --machine-id, or a restart before the old process's lease lapsed).
]]
--@include common.lua
--@include admit-lib.lua

local A = A_from(KEYS, ARGV, 1)
local op, id, testbox = ARGV[6], ARGV[7], ARGV[8]
local lease_ms, session, last, lock = tonumber(ARGV[9]), ARGV[10], ARGV[11], ARGV[12]
local lock_ms, reserve_after, limit, keep_ms = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local now = now_ms()
expire_machines(A, now, keep_ms)

-- A pass only when something changed since the last one (`~gen` against `~passed` in the testbox-seen hash).
-- Every op runs it after its change: a lease lapsed or a machine gone may leave a reservation whose cluster
-- has a testbox with no live machine, released by the pass in the same call.
local function pass_if_changed()
  local gen = redis.call('HMGET', A.seen, '~gen', '~passed')
  if gen[1] == gen[2] then return 0 end
  redis.call('HSET', A.seen, '~passed', gen[1] or '0')
  return admit_pass(A, now, reserve_after, limit)
end

if op == 'pass' then
  -- The sweep's pass, too, runs only when something changed since the last pass, or when a waiting
  -- cluster comes of reserve age (`~due`, set by admit_pass): an idle sweep reads nothing per waiting cluster.
  local g = redis.call('HMGET', A.seen, '~gen', '~passed', '~due')
  local due = tonumber(g[3])
  if g[1] == g[2] and not (due and due <= now) then
    return cjson.encode({ ok = true, state = 'none', admitted = 0 })
  end
  redis.call('HSET', A.seen, '~passed', g[1] or '0')
  return cjson.encode({ ok = true, state = 'none', admitted = admit_pass(A, now, reserve_after, limit) })
end

local m = get_m(A, id)
if op == 'leave' then
  -- Only the agent that holds the machine id may say it leaves (not a second agent refused as a duplicate).
  if m and m.state ~= 'gone' and m.testbox == testbox and (not m.taken or m.job == last) and (not m.agent or m.agent == session) then
    redis.call('ZADD', A.leases, now, id)
    expire_machines(A, now, keep_ms)
  end
  return cjson.encode({ ok = true, state = 'gone', admitted = pass_if_changed() })
end
if m and m.state ~= 'gone' and m.testbox ~= testbox then
  return cjson.encode({ ok = false, reason = 'machine id ' .. id .. ' is in use by a machine of testbox ' .. m.testbox .. ' (give each agent its own --machine-id)' })
end
-- One agent process (session) per machine id. Another process takes the machine over (an agent restarted
-- before its old lease lapsed, or a second agent started with the same id), unless the machine runs a node
-- job taken by the holder: then it is refused until the holder's lease lapses (a restart's old job is found
-- dead meanwhile). A process that was taken over from (`ex`, the last 4) is refused from then on, so two
-- live agents never take turns: one of them keeps the machine, the other is told why.
if m and m.state ~= 'gone' and m.agent and m.agent ~= session then
  local replaced = false
  for _, s in ipairs(m.ex or {}) do if s == session then replaced = true end end
  if replaced or (m.state == 'running' and m.taken) then
    return cjson.encode({ ok = false, in_use = true, reason = 'machine id ' .. id .. ' is in use by another agent ('
      .. (replaced and 'which took it over' or 'running ' .. tostring(m.job)) .. ', last contact ' .. (now - (tonumber(m.seen) or now))
      .. ' ms ago, lease ' .. tostring(m.lease_ms) .. ' ms): give each agent its own --machine-id' })
  end
  local ex = (type(m.ex) == 'table') and m.ex or {}
  table.insert(ex, 1, m.agent)
  while #ex > 4 do table.remove(ex) end
  m.ex = ex
end
if not m or m.state == 'gone' then
  m = { id = id, testbox = testbox, state = 'idle', since = now }
  redis.call('ZADD', tpl(A.idle_t, testbox), now, id)
  bump(A)
end
m.seen, m.lease_ms, m.agent = now, lease_ms, session
redis.call('ZADD', A.leases, now + lease_ms, id)
redis.call('ZADD', tpl(A.live_t, testbox), now + lease_ms, id)
local seen = tonumber(redis.call('HGET', A.seen, testbox)) or 0
if now + lease_ms > seen then redis.call('HSET', A.seen, testbox, now + lease_ms) end

if op == 'renew' then
  if m.state ~= 'running' and last ~= '' then
    -- Its record lapsed while it ran: it is back, running what it says.
    redis.call('ZREM', tpl(A.idle_t, testbox), id)
    m.state, m.job, m.cluster, m.taken, m.session = 'running', last, nil, true, session
  end
  put_m(A, m)
  return cjson.encode({ ok = true, state = m.state, admitted = pass_if_changed() })
end

-- A machine that ran its job and asks again, whose cluster ended, or whose agent restarted holds nothing.
if m.state == 'running' then
  local final = m.cluster and redis.call('HGET', tpl(A.meta_t, m.cluster), 'final')
  if m.job == last or final or not m.cluster or (m.taken and m.session ~= session) then
    set_idle(A, m, now)
  end
elseif m.state == 'reserved' then
  local rf = m.reserved_for
  if not rf or not redis.call('ZSCORE', A.waiting, rf) or redis.call('HGET', tpl(A.meta_t, rf), 'final') then
    set_idle(A, m, now)
  end
else
  m.state = 'idle'
  if redis.call('ZADD', tpl(A.idle_t, testbox), 'NX', now, id) == 1 then bump(A) end
end
put_m(A, m)

local admitted = pass_if_changed()
m = get_m(A, id)
if m.state == 'running' then
  local fresh = not m.taken
  if fresh then m.session = session end
  if claim_for(A, m, lock, lock_ms, now) == 'lost' then
    set_idle(A, m, now)
    return cjson.encode({ ok = true, state = 'idle', admitted = admitted })
  end
  m = get_m(A, id)
  local at = redis.call('HMGET', tpl(A.meta_t, m.cluster), 'created', 'admitted')
  return cjson.encode({ ok = true, state = 'running', job = m.job, cluster = m.cluster, queue = queues_of(A, m.cluster)[m.job], lock = m.lock,
                        admitted = admitted, fresh = fresh, waited_ms = (tonumber(at[2]) or now) - (tonumber(at[1]) or now) })
end
return cjson.encode({ ok = true, state = m.state, reserved_for = m.reserved_for, admitted = admitted })
