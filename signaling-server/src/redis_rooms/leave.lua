-- ARGV: id, seat, role, fail limit, grace ms
local id, seat = ARGV[1], ARGV[2]
local counted = leave_seat(id, seat, ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
redis.call('SREM', P .. 'seats:' .. node_of(seat), id)
return {'ok', tostring(counted)}
