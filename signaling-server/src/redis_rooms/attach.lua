-- ARGV: id, seat, fail limit, grace ms. The caller verified the host token.
local id, seat, limit, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = P .. 'room:' .. id
local now = now_ms()
local r = load(key)
local why = refusal(key, id, r, now)
if why then return {why} end
local old = r.hs
r.hs = seat
redis.call('HSET', key, 'hs', seat)
seated(seat, id)
redis.call('HDEL', key, 'hg')
local d = set_deadline(key, id, r, grace)
local counted = 0
if old and old ~= seat then tell(old, id, 'RP') end
if r.gs and not alive(r.gs) then
  if run_ended(key, r) then
    counted = 1
    local left = count_failure(key, r, limit)
    tell(seat, id, 'HF', left)
  end
  redis.call('HDEL', key, 'gs')
  r.gs = nil
end
if r.gs and old ~= seat then
  -- A host socket that vanished with its node never said goodbye: the guest hears it left
  -- and came back, as on one node, so a handshake with the old socket starts over.
  if old then tell(r.gs, id, 'PL', 'host') end
  peer_is(r.gs, id, seat)
  tell(r.gs, id, 'PJ', 'host')
  tell(r.gs, id, 'D', d)
end
peer_is(seat, id, r.gs)
return {'ok', r.e, tostring(d), r.gs and '1' or '0', tostring(counted)}
