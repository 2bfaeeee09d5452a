-- ARGV: id, seat (the host's), guest number, fail limit. The host of a shared room turns
-- guest n away: it hears `room-full` and loses its seat. A run with its tag unanswered still
-- counts as a failed guess, so turning guests away launders none.
local id, seat, n, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = P .. 'room:' .. id
local r = load(key)
if r.e == nil or r.hs ~= seat then return {'not-member'} end
if r.sh ~= '1' then return {'bad-address'} end
local gseat = r['g:' .. n]
if not gseat then return {'no-guest'} end
local counted, left = 0, math.max(limit - tonumber(r.f), 0)
if r['q:' .. n] == '1' then
  counted = 1
  left = count_failure(key, r, limit)
end
drop_guest(key, r, n)
tell(gseat, id, 'KF')
return {'ok', tostring(left), r.l, tostring(counted)}
