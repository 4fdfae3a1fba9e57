--[[
  Shared fragment: named messages between the nodes of a cluster (LAVA
  MultiNode's lava-send / lava-wait / lava-wait-all / lava-sync), included by
  the loader (scripts.ts) into the fold. It is called from the per-report fold
  for the report kinds `send` and `wait_msg`, after the token, membership and
  dedupe checks; it moves no node state and resolves no barrier.

  Storage: one hash per cluster, cs/cluster/<cid>/messages (the name is
  built from the cluster's meta key, .../meta -> .../messages, as
  Keys.messages builds it, so the batch fold needs no extra key), field =
  message ID, value = JSON
    { seq, created, bytes, order = [job...],
      senders = { job = { data = {key = value}, at, last, bytes } },
      waits   = { job = { mode = 'any'|'all', role?, since, released? } } }
  `seq` grows with every change, so a node hearing two states of one ID out
  of order keeps the newer.

  Rules (docs/architecture.md, "Messages between nodes"):
  - a send adds this node's data to the ID (a key sent again takes the new
    value); 4096 bytes of `key=value` lines per node per ID, 256 IDs per
    cluster, 262144 bytes per ID, all counted as stored (inside the JSON,
    escapes included: msg_stored_bytes); past that the report changes
    nothing and its answer carries `error`;
  - a wait is satisfied for mode `any` when any node has sent the ID, for
    mode `all` when every node (having `role`, when given) has; a role no
    node has is an error;
  - a `send` with a mode also registers that wait (lava-sync in one report);
    the same open wait asked again keeps its start and changes nothing;
  - each change releases the open waits it satisfies (`released`, with how
    long each waited), logged in the cluster's event.
]]
local MSG_MAX_IDS = 256
local MSG_MAX_NODE_BYTES = 4096
local MSG_MAX_ID_BYTES = 262144

local function msg_has_role(roles, role)
  for r in string.gmatch(roles or '', '%S+') do
    if r == role then return true end
  end
  return false
end

-- Bytes a string takes inside the stored JSON (escapes included): what the limits count.
local function msg_stored_bytes(v)
  return #cjson.encode(v) - 2
end

-- Is a wait of this mode and role satisfied by the senders of rec?
local function msg_satisfied(rec, nodes, mode, role)
  if mode == 'any' then return #rec.order > 0 end
  for id, n in pairs(nodes) do
    if (role == nil or msg_has_role(n.roles, role)) and not rec.senders[id] then return false end
  end
  return true
end

-- The reason the cluster aborted, or nil while it has not.
local function msg_abort_reason(meta_key)
  if redis.call('HGET', meta_key, 'final') ~= 'abort' then return nil end
  for _, b in ipairs({ 'start', 'ready', 'finish' }) do
    local r = redis.call('HMGET', meta_key, 'res:' .. b, 'reason:' .. b)
    if r[1] == 'abort' then return (r[2] and r[2] ~= '') and r[2] or 'cluster aborted' end
  end
  return 'cluster aborted'
end

-- What the nodes hear on <prefix>.cluster.<cid>.msg: the ID's senders with their data, in send order.
local function msg_view(cid, id, rec, nodes, meta_key)
  local senders = {}
  if rec then
    for _, j in ipairs(rec.order) do
      local s = rec.senders[j]
      senders[#senders + 1] = { job = j, roles = nodes[j] and nodes[j].roles or '', data = s.data, at = s.at }
    end
  end
  return { v = 1, cluster = cid, msg = id, seq = rec and rec.seq or 0, senders = senders, abort = msg_abort_reason(meta_key) }
end

-- The ID's current state, for a repeated (deduplicated) report: its side effect is publishing it again.
local function msg_current(mkey, meta_key, cid, nodes, id, by)
  local raw = redis.call('HGET', mkey, id)
  local view = msg_view(cid, id, raw and cjson.decode(raw) or nil, nodes, meta_key)
  view.by = by
  return view
end

--[[
  Folds one `send` or `wait_msg` report. req = {msg, data?, mode?, role?}.
  Returns { message = view to publish (with by, error?, released?), event = event fields or nil }.
]]
local function fold_message(mkey, meta_key, cid, job, nodes, kind, req, report_id, now)
  local id = req.msg
  local by = { job = job, report = report_id, op = kind == 'send' and 'send' or 'wait' }
  local function refuse(reason)
    local view = msg_current(mkey, meta_key, cid, nodes, id, by)
    view.error = reason
    return { message = view }
  end
  local mode, role = req.mode, req.role
  if mode == 'all' and role then
    local any = false
    for _, n in pairs(nodes) do
      if msg_has_role(n.roles, role) then any = true break end
    end
    if not any then return refuse('no node of cluster ' .. cid .. ' has role ' .. role) end
  end

  local raw = redis.call('HGET', mkey, id)
  local rec
  if raw then
    rec = cjson.decode(raw)
  else
    if redis.call('HLEN', mkey) >= MSG_MAX_IDS then
      return refuse('cluster ' .. cid .. ' holds ' .. MSG_MAX_IDS .. ' message IDs already; no new ID ' .. id)
    end
    rec = { seq = 0, created = now, bytes = 0, order = {}, senders = {}, waits = {} }
  end

  local changed = false
  local keys = nil
  if kind == 'send' then
    local s = rec.senders[job]
    local data = {}
    if s then for k, v in pairs(s.data) do data[k] = v end end
    keys = {}
    for k, v in pairs(req.data or {}) do
      if data[k] ~= v then changed = true end
      data[k] = v
      keys[#keys + 1] = k
    end
    table.sort(keys)
    local bytes = 0
    for k, v in pairs(data) do bytes = bytes + msg_stored_bytes(k) + msg_stored_bytes(v) + 2 end
    if bytes > MSG_MAX_NODE_BYTES then
      return refuse('node ' .. job .. ' would hold ' .. bytes .. ' bytes of data for message ' .. id .. '; the limit is ' .. MSG_MAX_NODE_BYTES)
    end
    local total = rec.bytes - (s and s.bytes or 0) + bytes
    if total > MSG_MAX_ID_BYTES then
      return refuse('message ' .. id .. ' would hold ' .. total .. ' bytes of data from all nodes; the limit is ' .. MSG_MAX_ID_BYTES)
    end
    if not s then
      changed = true
      rec.order[#rec.order + 1] = job
      rec.senders[job] = { data = data, at = now, last = now, bytes = bytes }
    else
      s.data, s.last, s.bytes = data, now, bytes
    end
    rec.bytes = total
  end
  if mode then
    -- The same wait asked again (a long poll's retry, a reconnect) keeps its start; a new one starts now.
    local w = rec.waits[job]
    if not (w and not w.released and w.mode == mode and w.role == role) then
      rec.waits[job] = { mode = mode, role = role, since = now }
      changed = true
    end
  end

  local released = {}
  if changed then
    for j, w in pairs(rec.waits) do
      if not w.released and msg_satisfied(rec, nodes, w.mode, w.role) then
        w.released = now
        released[#released + 1] = { job = j, mode = w.mode, role = w.role, waited_ms = now - w.since }
      end
    end
    table.sort(released, function(a, b) return a.job < b.job end)
    rec.seq = rec.seq + 1
    redis.call('HSET', mkey, id, cjson.encode(rec))
  end

  local view = msg_view(cid, id, rec, nodes, meta_key)
  view.by = by
  if #released > 0 then view.released = released end
  local event = nil
  if changed then
    event = { op = by.op, msg = id, mode = mode, role = role, keys = keys, released = view.released }
  end
  return { message = view, event = event }
end

-- The key of a cluster's messages, beside its meta key.
local function msg_key(meta_key)
  return (string.gsub(meta_key, '/meta$', '/messages'))
end

-- A repeated report's message, republished with the ID's current state (its error kept).
local function msg_again(k, cid, nodes, prev)
  local err = prev.error
  local view = msg_current(msg_key(k.meta), k.meta, cid, nodes, prev.msg, prev.by)
  view.error = err
  return view
end

-- The per-report hook of fold-report.lua for `send` and `wait_msg`: folds it, logs its event,
-- records its outcome under the report id, and returns the outcome (with `message` to publish).
local function fold_message_report(g, cx, r, node, now)
  local k, cid = cx.k, cx.cid
  local req = { msg = r.msg, data = type(r.data) == 'table' and r.data or {},
                mode = type(r.mode) == 'string' and r.mode or nil, role = type(r.role) == 'string' and r.role or nil }
  if type(req.msg) ~= 'string' or req.msg == '' then return { ok = false, code = 'INVALID', reason = 'msg: missing' } end
  local m = fold_message(msg_key(k.meta), k.meta, cid, r.job, cx.nodes, r.state, req, r.id, now)
  local events = {}
  if m.event then
    local ev = m.event
    ev.v, ev.type, ev.cluster, ev.job, ev.roles, ev.at, ev.sent_at = 1, 'message', cid, r.job, node.roles, now, r.at
    events[1] = add_event(k.events, k.all_events, g.max_all, ev)
  end
  -- The dedupe record holds what a repeat needs (the ID, who asked, a refusal's reason), never the
  -- ID's state: a repeat republishes the state as it is then (msg_again). Its size is bounded by the
  -- report's own fields, however much data the ID holds.
  local record = { ok = true, dup = false, changed = m.event ~= nil, state = node.state, resolutions = {}, events = {},
                   message = { msg = m.message.msg, by = m.message.by, error = m.message.error } }
  redis.call('HSET', k.reports, r.id, cjson.encode(record))
  return { ok = true, dup = false, changed = m.event ~= nil, state = node.state, resolutions = {}, events = events, message = m.message }
end
