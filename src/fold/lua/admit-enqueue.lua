--[[
  A cluster's submit is complete (every node job queued): it leaves the
  "submitting" zset and waits for admission, in one call. Its start deadline
  is dropped: barrier deadlines count from admission (admit-lib start_clock).
  Repeating it changes nothing.

  KEYS[1..8] as admit-take.lua   ARGV[1..5] key templates as admit-take.lua
  ARGV[6] cluster id   ARGV[7] needs JSON {testbox: [job ids]}
  ARGV[8] admit timeout ms ('' = the workers' default)   ARGV[9] priority (integer, higher first)

  Returns 1 when the cluster now waits, 0 when it was admitted or ended already, or an error reply.
]]
--@include common.lua
--@include admit-lib.lua

local A = A_from(KEYS, ARGV, 1)
local cid, needs, admit_timeout, priority = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9]) or 0
local meta = tpl(A.meta_t, cid)
redis.call('ZREM', A.submitting, cid)
local f = redis.call('HMGET', meta, 'created', 'final', 'admitted')
if not f[1] then return redis.error_reply('UNKNOWN_CLUSTER unknown cluster ' .. cid) end
if f[2] or f[3] then return 0 end
redis.call('HSET', meta, 'needs', needs, 'priority', priority)
if admit_timeout ~= '' then redis.call('HSET', meta, 'admit_timeout_ms', admit_timeout) end
if redis.call('ZADD', A.waiting, 'NX', tonumber(f[1]) - priority * 1e13, cid) == 1 then
  bump(A)
  redis.call('ZREM', A.deadlines, cid .. ' start')
  redis.call('HDEL', meta, 'deadline:start')
end
return 1
