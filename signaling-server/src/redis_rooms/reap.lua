-- ARGV: this node, fail limit, grace ms. Registers this node, then frees the seats of every
-- node whose heartbeat lapsed (it died without closing its sockets): their peers hear them
-- leave, as on one node, and a guest's unanswered tag still counts. Any node may run it;
-- being atomic, a dead node is reaped once.
local me, limit, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('SADD', P .. 'nodes', me)
local reaped, counted = 0, 0
for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if node ~= me and redis.call('EXISTS', P .. 'alive:' .. node) == 0 then
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'seats:' .. node)) do
      local r = load(P .. 'room:' .. id)
      if r.hs and node_of(r.hs) == node then
        counted = counted + leave_seat(id, r.hs, 'host', limit, grace)
      end
      if r.gs and node_of(r.gs) == node then
        counted = counted + leave_seat(id, r.gs, 'guest', limit, grace)
      end
      for _, g in ipairs(guests_of(r)) do
        if node_of(g[2]) == node then
          counted = counted + leave_seat(id, g[2], 'guest', limit, grace)
        end
      end
    end
    redis.call('DEL', P .. 'seats:' .. node)
    redis.call('SREM', P .. 'nodes', node)
    reaped = reaped + 1
  end
end
return {'ok', tostring(reaped), tostring(counted)}
