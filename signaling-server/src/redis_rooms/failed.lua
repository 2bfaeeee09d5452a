-- ARGV: id, seat (the host's), fail limit
local id, seat, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = P .. 'room:' .. id
local r = load(key)
if r.e == nil or r.hs ~= seat then return {'not-member'} end
local counted, left = 0, 0
-- Counts once per guest run; a stale report leaves the current guest alone.
if r.g == '1' then
  counted = 1
  r.g = '3'
  redis.call('HSET', key, 'g', 3)
  left = count_failure(key, r, limit)
  if r.gs then
    redis.call('HDEL', key, 'gs')
    tell(r.gs, id, 'HFD', left)
    peer_is(seat, id, nil)
  end
else
  left = math.max(limit - tonumber(r.f), 0)
end
return {'ok', tostring(left), r.l, tostring(counted)}
