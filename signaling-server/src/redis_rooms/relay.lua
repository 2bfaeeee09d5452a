-- ARGV: id, seat, role, pake (0 none, 1 pake, 2 confirmation tag), frame, guest number
-- (a shared room's guest, or the guest its host addresses; '' otherwise). Replies the peer's
-- seat too, for a node that has not heard it yet.
local id, seat, role, pake = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = P .. 'room:' .. id
local v = redis.call('HMGET', key, 'hs', 'gs', 'g', 'sh')
local hs, gs, g = v[1], v[2], v[3]
if v[4] == '1' then
  local n = ARGV[6] or ''
  if n == '' then
    if role == 'host' and hs == seat then return {'bad-address'} end
    return {'not-member'}
  end
  local w = redis.call('HMGET', key, 'g:' .. n, 'q:' .. n)
  local gseat, q = w[1], w[2]
  if role == 'guest' then
    if gseat ~= seat then return {'not-member'} end
    if not hs then return {'no-peer'} end
    if pake == '2' and q == '0' then redis.call('HSET', key, 'q:' .. n, 1) end
    tell(hs, id, 'R', ARGV[5])
    return {'ok', hs}
  end
  if hs ~= seat then return {'not-member'} end
  if not gseat then return {'no-guest'} end
  if pake == '2' and q == '1' then redis.call('HSET', key, 'q:' .. n, 2) end
  tell(gseat, id, 'R', ARGV[5])
  return {'ok', '-'}
end
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
