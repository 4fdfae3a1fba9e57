--[[
  Test helper (read-only): everything a user can see of some clusters, in one
  call, so the model tests read back after every step in one round trip.

  KEYS[1] sched/cluster_state (hash)   KEYS[2] heartbeats (zset)   KEYS[3] open clusters (zset)
  KEYS[4] ended clusters (zset)
  KEYS[5], KEYS[6], KEYS[7], ... each cluster's meta (hash), events (stream) and
    named messages (hash), in threes
  ARGV[1], ARGV[2], ... the cluster ids, in the same order

  Returns a JSON array, one entry per cluster:
    {state = raw JSON or false, meta = flat field/value list, events = list of event JSON,
     heartbeats = list of "cluster job" members, open = score or false, ended = score or false,
     messages = flat message ID/record JSON list}
]]
local out = {}
local hb = redis.call('ZRANGE', KEYS[2], 0, -1)
for i, cid in ipairs(ARGV) do
  local events = {}
  for _, e in ipairs(redis.call('XRANGE', KEYS[3 + 3 * i], '-', '+')) do events[#events + 1] = e[2][2] end
  local mine = {}
  for _, m in ipairs(hb) do
    if string.sub(m, 1, #cid + 1) == cid .. ' ' then mine[#mine + 1] = string.sub(m, #cid + 2) end
  end
  out[i] = {
    state = redis.call('HGET', KEYS[1], cid),
    meta = redis.call('HGETALL', KEYS[2 + 3 * i]),
    messages = redis.call('HGETALL', KEYS[4 + 3 * i]),
    events = events,
    heartbeats = mine,
    open = redis.call('ZSCORE', KEYS[3], cid),
    ended = redis.call('ZSCORE', KEYS[4], cid),
  }
end
return cjson.encode(out)
