--[[
  A cluster ended (meta `final`, by any path: a barrier, a timeout, a dead
  node, a cancel, not admitted): it leaves admission at once, its reserved and
  assigned-but-untaken machines become idle, and every node job of it still
  waiting in its BullMQ testbox queue is moved to active with a lock token, for
  the caller to fail with the cluster's reason. Repeating it changes nothing.

  KEYS[1..8] as admit-take.lua   ARGV[1..5] key templates as admit-take.lua
  ARGV[6] cluster id   ARGV[7] lock token   ARGV[8] lock ms
  Returns JSON {ended=false} for an open cluster, else
  {ended=true, final, reason, jobs=[{job, queue}]}: the jobs to fail, locked with ARGV[7].
]]
--@include common.lua
--@include admit-lib.lua

local A = A_from(KEYS, ARGV, 1)
local cid, lock, lock_ms = ARGV[6], ARGV[7], tonumber(ARGV[8])
local meta = tpl(A.meta_t, cid)
local now = now_ms()
local f = redis.call('HMGET', meta, 'final', 'reason:start', 'reason:ready', 'reason:finish')
if not f[1] then
  if redis.call('EXISTS', meta) == 0 then
    redis.call('ZREM', A.waiting, cid)
    redis.call('ZREM', A.assigned, cid)
  end
  return cjson.encode({ ended = false })
end
redis.call('ZREM', A.waiting, cid)
redis.call('ZREM', A.assigned, cid)
unreserve_cluster(A, cid, now)
for _, id in pairs(json_field(A, cid, 'assign')) do
  local m = get_m(A, id)
  if m and m.state == 'running' and m.cluster == cid and not m.taken then set_idle(A, m, now) end
end
local jobs = {}
local qs = queues_of(A, cid)
for _, job in ipairs(sorted_keys(qs)) do
  if claim_bull(A, qs[job], job, lock, lock_ms, now) then jobs[#jobs + 1] = { job = job, queue = qs[job] } end
end
local reason = ''
for i = 2, 4 do if f[i] and f[i] ~= '' then reason = f[i] break end end
return cjson.encode({ ended = true, final = f[1], reason = reason, jobs = jobs })
