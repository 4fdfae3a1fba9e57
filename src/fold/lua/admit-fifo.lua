--[[
  A node job was handed out first-come-first-served (an agent with
  `--admission fifo`, or an older agent): its cluster counts as admitted (it
  leaves the waiting zset, its reservations are released, its start deadline
  counts from now), and the take counts as the node's heartbeat until the
  node's own (a machine that took its job and died is found dead).

  KEYS[1..8] as admit-take.lua   ARGV[1..5] key templates as admit-take.lua
  Also called for a waiting cluster whose nodes report without any take (an
  lkp client handed its job by Compass-CI's own scheduler): ARGV[7] is then ''
  and ARGV[8] says `reports`.

  ARGV[6] cluster id   ARGV[7] node job id ('' none)   ARGV[8] how it was admitted (fifo | reports)
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
  redis.call('HSET', meta, 'admitted', now, 'admitted_by', ARGV[8])
  unreserve_cluster(A, cid, now)
  if redis.call('ZREM', A.waiting, cid) == 1 then start_clock(A, cid, now) end
end
if job ~= '' then take_lease(A, cid, job, now, true) end
return 1
