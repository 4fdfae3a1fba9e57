--[[
  Shared fragment of the admission scripts (admit-take.lua, admit-reap.lua,
  admit-enqueue.lua, admit-fifo.lua), DESIGN §9. Included after common.lua.

  Design note: a machine is a JSON record in the `machines` hash:
    { id, testbox, state, since, seen, lease_ms, cluster?, job?, taken?, lock?, session?, reserved_for?, gone_at? }
  state: idle (in its testbox's idle zset), reserved (held for reserved_for, a
  waiting cluster: listed in that cluster's meta `reserved`), running (assigned a
  node job: `job` of `cluster`; `taken` once the BullMQ job was moved to active
  for it, with lock token `lock`), gone (its lease lapsed; kept for display
  until its second lapse). A waiting cluster is in the `waiting` zset; its meta
  `needs` is {testbox: [job ids]}. Admitting it moves every one of its machines
  from idle/reserved to running in the same call, or none.

  Key names come from src/core/keys.ts: fixed ones in KEYS, per-cluster and
  per-testbox ones as templates in ARGV with `{}` where the id goes.
  A = { machines, leases, waiting, assigned, submitting, heartbeats, deadlines, seen,
        meta_t, locks_t, idle_t, live_t, bull_t }
]]

local function tpl(t, id)
  local i = string.find(t, '{}', 1, true)
  return string.sub(t, 1, i - 1) .. id .. string.sub(t, i + 2)
end

local function A_from(keys, argv, first_argv)
  return { machines = keys[1], leases = keys[2], waiting = keys[3], assigned = keys[4], submitting = keys[5],
           heartbeats = keys[6], deadlines = keys[7], seen = keys[8],
           meta_t = argv[first_argv], locks_t = argv[first_argv + 1], idle_t = argv[first_argv + 2],
           live_t = argv[first_argv + 3], bull_t = argv[first_argv + 4] }
end
local ADMIT_KEYS, ADMIT_TEMPLATES = 8, 5

local function get_m(A, id)
  local raw = redis.call('HGET', A.machines, id)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function put_m(A, m)
  redis.call('HSET', A.machines, m.id, cjson.encode(m))
end

local function json_field(A, cid, field)
  local raw = redis.call('HGET', tpl(A.meta_t, cid), field)
  if not raw or raw == '' then return {} end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return {}
end

local function set_json_field(A, cid, field, tbl)
  if next(tbl) == nil then
    redis.call('HDEL', tpl(A.meta_t, cid), field)
  else
    redis.call('HSET', tpl(A.meta_t, cid), field, cjson.encode(tbl))
  end
end

-- Something a pass could use changed (a machine idle or gone, a cluster waiting or ended):
-- the next take runs a pass (a take that changes nothing skips it; the sweep passes every second anyway).
local function bump(A)
  redis.call('HINCRBY', A.seen, '~gen', 1)
end

-- The machine takes no job and holds nothing: it is idle since now.
local function set_idle(A, m, now)
  bump(A)
  m.state = 'idle'
  m.cluster, m.job, m.taken, m.lock, m.session, m.reserved_for = nil, nil, nil, nil, nil, nil
  m.since = now
  redis.call('ZADD', tpl(A.idle_t, m.testbox), now, m.id)
  put_m(A, m)
end

-- Releases every machine reserved for cluster cid (they become idle).
local function unreserve_cluster(A, cid, now)
  local reserved = json_field(A, cid, 'reserved')
  for id, _ in pairs(reserved) do
    local m = get_m(A, id)
    if m and m.state == 'reserved' and m.reserved_for == cid then set_idle(A, m, now) end
  end
  redis.call('HDEL', tpl(A.meta_t, cid), 'reserved')
end

-- Machines whose lease lapsed are gone: out of the idle and live pools, their reservation released.
-- A gone machine's record is deleted at its second lapse (`keep_ms` later).
local function expire_machines(A, now, keep_ms)
  local ids = redis.call('ZRANGEBYSCORE', A.leases, '-inf', now, 'LIMIT', 0, 200)
  for _, id in ipairs(ids) do
    local m = get_m(A, id)
    if not m or m.state == 'gone' then
      redis.call('HDEL', A.machines, id)
      redis.call('ZREM', A.leases, id)
    else
      redis.call('ZREM', tpl(A.idle_t, m.testbox), id)
      redis.call('ZREM', tpl(A.live_t, m.testbox), id)
      -- "no live machine for ..." counts from the moment the last one went.
      if redis.call('ZCOUNT', tpl(A.live_t, m.testbox), now, '+inf') == 0 then redis.call('HSET', A.seen, m.testbox, now) end
      if m.state == 'reserved' and m.reserved_for then
        local reserved = json_field(A, m.reserved_for, 'reserved')
        reserved[id] = nil
        if redis.call('EXISTS', tpl(A.meta_t, m.reserved_for)) == 1 then set_json_field(A, m.reserved_for, 'reserved', reserved) end
      end
      m.was = m.state
      m.state = 'gone'
      bump(A)
      m.reserved_for = nil
      m.gone_at = now
      put_m(A, m)
      redis.call('ZADD', A.leases, now + keep_ms, id)
    end
  end
  return #ids
end

-- The BullMQ key of queue q (`tb-<testbox>`), with suffix.
local function bull(A, q, suffix)
  return tpl(A.bull_t, q) .. ':' .. suffix
end

-- Moves a waiting BullMQ node job to active with lock token `lock` (what BullMQ's moveToActive does
-- for the job it pops), so that moveToCompleted / moveToFailed / extendLock with that token work.
-- Returns true when the job was waiting.
local function claim_bull(A, q, job, lock, lock_ms, now)
  if redis.call('LREM', bull(A, q, 'wait'), 0, job) == 0 then return false end
  redis.call('LPUSH', bull(A, q, 'active'), job)
  redis.call('SET', bull(A, q, job .. ':lock'), lock, 'PX', lock_ms)
  redis.call('XADD', bull(A, q, 'events'), 'MAXLEN', '~', 10000, '*', 'event', 'active', 'jobId', job, 'prev', 'waiting')
  redis.call('HSET', bull(A, q, job), 'processedOn', now)
  redis.call('HINCRBY', bull(A, q, job), 'ats', 1)
  return true
end

-- The queue of each node job of a cluster ({job: queue}).
local function queues_of(A, cid)
  return json_field(A, cid, 'queues')
end

-- The start barrier's deadline counts from now (admission), unless start resolved already.
local function start_clock(A, cid, now)
  local meta = tpl(A.meta_t, cid)
  if redis.call('HEXISTS', meta, 'res:start') == 1 then return end
  local t = tonumber(redis.call('HGET', meta, 'timeout_ms'))
  if t and t > 0 then
    redis.call('HSET', meta, 'deadline:start', now + t)
    redis.call('ZADD', A.deadlines, now + t, cid .. ' start')
  end
end

-- A node job handed to a machine is that machine's: until the node's own heartbeats, the take counts as one.
local function take_lease(A, cid, job, now, only_if_absent)
  local hb = tonumber(redis.call('HGET', tpl(A.meta_t, cid), 'heartbeat_ms')) or 5000
  if only_if_absent then
    redis.call('ZADD', A.heartbeats, 'NX', now + 3 * hb, cid .. ' ' .. job)
  else
    redis.call('ZADD', A.heartbeats, now + 3 * hb, cid .. ' ' .. job)
  end
end

-- Moves a running machine's assigned node job to active for it (idempotent: a retried take finds it taken).
-- Returns 'ok' or 'lost' (the job was not waiting: another hand-out or the reaper got it).
local function claim_for(A, m, lock, lock_ms, now)
  if m.taken then return 'ok' end
  local q = queues_of(A, m.cluster)[m.job]
  if not q or not claim_bull(A, q, m.job, lock, lock_ms, now) then return 'lost' end
  m.taken, m.lock = true, lock
  redis.call('HSET', tpl(A.locks_t, m.cluster), m.job, m.testbox .. ' ' .. lock)
  take_lease(A, m.cluster, m.job, now, false)
  if redis.call('HINCRBY', tpl(A.meta_t, m.cluster), 'untaken', -1) <= 0 then redis.call('ZREM', A.assigned, m.cluster) end
  put_m(A, m)
  return 'ok'
end

-- One admission pass over the oldest waiting clusters (see the design note). Returns clusters admitted.
local function admit_pass(A, now, reserve_after_ms, limit)
  local cids = redis.call('ZRANGE', A.waiting, 0, limit - 1)
  local pools, used = {}, {}
  local function idle_of(tb)
    if not pools[tb] then pools[tb] = redis.call('ZRANGE', tpl(A.idle_t, tb), 0, -1) end
    local out = {}
    for _, id in ipairs(pools[tb]) do if not used[id] then out[#out + 1] = id end end
    return out
  end
  local admitted = 0
  -- The earliest time a waiting cluster this pass could not reserve for comes of reserve age.
  local due = nil
  for _, cid in ipairs(cids) do
    local meta = tpl(A.meta_t, cid)
    local f = redis.call('HMGET', meta, 'final', 'admitted', 'needs', 'created', 'token')
    if not f[5] then
      redis.call('ZREM', A.waiting, cid)
    elseif f[1] or f[2] then
      unreserve_cluster(A, cid, now)
      pools = {}
      redis.call('ZREM', A.waiting, cid)
    elseif redis.call('ZSCORE', A.submitting, cid) == false then
      local needs = cjson.decode(f[3] or '{}')
      local reserved = json_field(A, cid, 'reserved')
      local mine = {}
      for id, tb in pairs(reserved) do
        local m = get_m(A, id)
        if m and m.state == 'reserved' and m.reserved_for == cid and m.testbox == tb then
          mine[tb] = mine[tb] or {}
          table.insert(mine[tb], id)
        else
          reserved[id] = nil
        end
      end
      local tbs = sorted_keys(needs)
      local ok = true
      for _, tb in ipairs(tbs) do
        if #(mine[tb] or {}) + #idle_of(tb) < #needs[tb] then ok = false break end
      end
      if ok then
        local assign = {}
        for _, tb in ipairs(tbs) do
          local cand = {}
          for _, id in ipairs(mine[tb] or {}) do cand[#cand + 1] = id end
          for _, id in ipairs(idle_of(tb)) do cand[#cand + 1] = id end
          local jobs = needs[tb]
          table.sort(jobs)
          for i, job in ipairs(jobs) do
            local m = get_m(A, cand[i])
            used[m.id] = true
            redis.call('ZREM', tpl(A.idle_t, tb), m.id)
            m.state, m.cluster, m.job, m.taken, m.lock, m.reserved_for, m.since = 'running', cid, job, false, nil, nil, now
            put_m(A, m)
            assign[job] = m.id
            take_lease(A, cid, job, now, false)
          end
          for i = #jobs + 1, #cand do
            local m = get_m(A, cand[i])
            if m.state == 'reserved' then
              set_idle(A, m, now)
              pools[tb] = nil
            end
          end
        end
        local n = 0
        for _ in pairs(assign) do n = n + 1 end
        redis.call('HSET', meta, 'admitted', now, 'assign', cjson.encode(assign), 'untaken', n)
        redis.call('HDEL', meta, 'reserved')
        redis.call('ZREM', A.waiting, cid)
        redis.call('ZADD', A.assigned, now, cid)
        start_clock(A, cid, now)
        admitted = admitted + 1
      else
        local all_live = true
        for _, tb in ipairs(tbs) do
          if redis.call('ZCOUNT', tpl(A.live_t, tb), now, '+inf') == 0 then all_live = false break end
        end
        local of_age = (tonumber(f[4]) or now) + reserve_after_ms
        if all_live and of_age > now and (not due or of_age < due) then due = of_age end
        if all_live and now >= of_age then
          for _, tb in ipairs(tbs) do
            local want = #needs[tb] - #(mine[tb] or {})
            for _, id in ipairs(idle_of(tb)) do
              if want <= 0 then break end
              local m = get_m(A, id)
              used[id] = true
              redis.call('ZREM', tpl(A.idle_t, tb), id)
              m.state, m.reserved_for, m.since = 'reserved', cid, now
              put_m(A, m)
              reserved[id] = tb
              want = want - 1
            end
          end
          set_json_field(A, cid, 'reserved', reserved)
        elseif next(reserved) ~= nil or redis.call('HEXISTS', meta, 'reserved') == 1 then
          set_json_field(A, cid, 'reserved', reserved)
          unreserve_cluster(A, cid, now)
          -- The machines it held are idle again: the clusters after it may use them in this pass.
          pools = {}
        end
      end
    end
  end
  if due then redis.call('HSET', A.seen, '~due', due) else redis.call('HDEL', A.seen, '~due') end
  return admitted
end
