-- ARGV: id, seat, role, pake (0 none, 1 pake, 2 confirmation tag), frame. Replies the peer's
-- seat too, for a node that has not heard it yet.
local id, seat, role, pake = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = P .. 'room:' .. id
local v = redis.call('HMGET', key, 'hs', 'gs', 'g')
local hs, gs, g = v[1], v[2], v[3]
local mine, peer = hs, gs
if role == 'guest' then mine, peer = gs, hs end
if mine ~= seat then return {'not-member'} end
if not peer then return {'no-peer'} end
if pake == '2' then
  if role == 'guest' and g == '0' then redis.call('HSET', key, 'g', 1) end
  if role == 'host' and g == '1' then redis.call('HSET', key, 'g', 2) end
end
tell(peer, id, 'R', ARGV[5])
return {'ok', peer}
