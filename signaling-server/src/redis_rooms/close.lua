-- ARGV: id, seat (the host's)
local id, seat = ARGV[1], ARGV[2]
local key = P .. 'room:' .. id
local r = load(key)
if r.e == nil or r.hs ~= seat then return {'not-member'} end
local counted = 0
for _, g in ipairs(guests_of(r)) do
  if r['q:' .. g[1]] == '1' then counted = counted + 1 end
  tell(g[2], id, 'RC')
end
if r.gs then
  if r.g == '1' then counted = 1 end
  tell(r.gs, id, 'RC')
end
redis.call('DEL', key)
redis.call('ZREM', P .. 'rooms', id)
redis.call('ZREM', P .. 'owner:' .. r.o, id)
return {'ok', tostring(counted)}
