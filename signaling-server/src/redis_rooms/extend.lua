-- ARGV: id, seat (the host's), ttl ms, tombstone ms, grace ms
local id, seat, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local tomb, grace = tonumber(ARGV[4]), tonumber(ARGV[5])
local key = P .. 'room:' .. id
local r = load(key)
if r.e == nil or r.hs ~= seat then return {'not-member'} end
local now = now_ms()
r.e = tostring(now + ttl)
redis.call('HSET', key, 'e', r.e)
local d = set_deadline(key, id, r, grace)
redis.call('SET', P .. 'tomb:' .. id, 1, 'PX', ttl + tomb)
if r.gs then tell(r.gs, id, 'D', d) end
return {'ok', r.e, tostring(d)}
