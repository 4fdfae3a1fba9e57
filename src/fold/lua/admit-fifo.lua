--[[
  A node job was handed out first-come-first-served (an agent with
  `--admission fifo`, or an older agent): its cluster counts as admitted (it
  leaves the waiting zset, its reservations are released, its start deadline
  counts from now), and the take counts as the node's heartbeat until the
  node's own (a machine that took its job and died is found dead).

  KEYS[1..8] as admit-take.lua   ARGV[1..5] key templates as admit-take.lua
  ARGV[6] cluster id   ARGV[7] node job id
  Returns 1.
]]
--@include common.lua
--@include admit-lib.lua

local A = A_from(KEYS, ARGV, 1)
local cid, job = ARGV[6], ARGV[7]
local meta = tpl(A.meta_t, cid)
local now = now_ms()
local f = redis.call('HMGET', meta, 'final', 'admitted', 'token')
if not f[3] or f[1] then return 1 end
if not f[2] then
  redis.call('HSET', meta, 'admitted', now, 'admitted_by', 'fifo')
  unreserve_cluster(A, cid, now)
  if redis.call('ZREM', A.waiting, cid) == 1 then start_clock(A, cid, now) end
end
take_lease(A, cid, job, now, true)
return 1
