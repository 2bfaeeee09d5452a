-- ARGV: id, token hash, ttl ms, owner, max rooms, max per owner, grace ms, tombstone ms,
--       global create rate, global create burst, shared seats (0: an ordinary room)
local id, hash, ttl, owner = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local max_rooms, max_owner = tonumber(ARGV[5]), tonumber(ARGV[6])
local grace, tomb = tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', P .. 'rooms', '-inf', now)
if redis.call('ZCARD', P .. 'rooms') >= max_rooms then return {'server-full'} end
local ok = P .. 'owner:' .. owner
redis.call('ZREMRANGEBYSCORE', ok, '-inf', now)
if redis.call('ZCARD', ok) >= max_owner then return {'owner-full'} end
if not take(P .. 'rate:create', tonumber(ARGV[9]), tonumber(ARGV[10]), now) then
  return {'global-rate'}
end
local key = P .. 'room:' .. id
if redis.call('EXISTS', key) == 1 or redis.call('EXISTS', P .. 'tomb:' .. id) == 1 then
  return {'collision'}
end
local r = {h = hash, c = tostring(now), e = tostring(now + ttl), f = '0', l = '0', g = '0',
           hg = tostring(now), o = owner}
redis.call('HSET', key, 'h', r.h, 'c', r.c, 'e', r.e, 'f', 0, 'l', 0, 'g', 0, 'hg', r.hg,
  'o', owner)
local cap = tonumber(ARGV[11] or '0')
if cap > 0 then redis.call('HSET', key, 'sh', 1, 'cap', cap, 'ng', 1) end
set_deadline(key, id, r, grace)
-- The tombstone outlives the room: a late join learns it expired rather than never existed.
redis.call('SET', P .. 'tomb:' .. id, 1, 'PX', ttl + tomb)
return {'ok', r.c, r.e}
