--[[
  Decides, once, how a cluster's submit ends: its node jobs are all queued
  ("queued": the submit says so once its enqueue returned), or it is removed
  as half-written ("reaper": the workers' reaper, after --submit-grace, when
  none of its node jobs is queued). The first to ask wins; the other reads
  the decision and keeps to it. Without it, a submit slower than the grace (a
  loaded machine) raced the reaper: the reaper removed the cluster, then the
  submit queued its node jobs and reported a cluster that no longer existed.

  The decision is kept as the cluster's score in the "submitting" zset: its
  creation time while undecided, then -2 (queued) or -1 (reaper); both still
  count as "created before the grace", so a winner that died before it
  finished leaves the cluster to the reaper's next sweep, as before.

  KEYS[1] clusters being submitted (zset)
  ARGV[1] cluster id   ARGV[2] who asks: "queued" or "reaper"

  Returns the decision, "queued" or "reaper", or "gone" when the cluster is no
  longer being submitted (its submit completed, or its removal did).
]]
local QUEUED, REAPER = -2, -1
local cid, who = ARGV[1], ARGV[2]
if who ~= 'queued' and who ~= 'reaper' then return redis.error_reply('INVALID who asks: ' .. tostring(who)) end
local score = redis.call('ZSCORE', KEYS[1], cid)
if not score then return 'gone' end
score = tonumber(score)
if score == QUEUED then return 'queued' end
if score == REAPER then return 'reaper' end
redis.call('ZADD', KEYS[1], who == 'queued' and QUEUED or REAPER, cid)
return who
