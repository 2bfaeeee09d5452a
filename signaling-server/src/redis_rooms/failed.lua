-- ARGV: id, seat (the host's), fail limit, guest number (a shared room's; '' otherwise)
local id, seat, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = P .. 'room:' .. id
local r = load(key)
if r.e == nil or r.hs ~= seat then return {'not-member'} end
local counted, left = 0, 0
local n = ARGV[4] or ''
if (r.sh == '1') ~= (n ~= '') then return {'bad-address'} end
if r.sh == '1' then
  -- Counts once per guest run; a stale report (the seat is gone) counts nothing.
  if r['q:' .. n] == '1' then
    counted = 1
    left = count_failure(key, r, limit)
    local gseat = r['g:' .. n]
    drop_guest(key, r, n)
    tell(gseat, id, 'HFD', left)
  else
    left = math.max(limit - tonumber(r.f), 0)
  end
  return {'ok', tostring(left), r.l, tostring(counted)}
end
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
