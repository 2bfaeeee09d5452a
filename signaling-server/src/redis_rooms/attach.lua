-- ARGV: id, seat, fail limit, grace ms, the host's signaling version. The caller verified
-- the host token.
local id, seat, limit, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = P .. 'room:' .. id
local now = now_ms()
local r = load(key)
local why = refusal(key, id, r, now)
if why then return {why} end
-- A shared room's host hears `from-guest`, which a v2 client does not know.
if r.sh == '1' and tonumber(ARGV[5] or '2') < 3 then return {'old-host'} end
local old = r.hs
r.hs = seat
redis.call('HSET', key, 'hs', seat)
seated(seat, id)
redis.call('HDEL', key, 'hg')
local d = set_deadline(key, id, r, grace)
local counted = 0
if old and old ~= seat then tell(old, id, 'RP') end
if r.sh == '1' then
  local any = false
  for _, g in ipairs(guests_of(r)) do
    local n, gseat = g[1], g[2]
    if not alive(gseat) then
      counted = counted + shared_run_ended(key, id, r, n, limit)
      drop_guest(key, r, n)
    else
      any = true
      if old ~= seat then
        if old then tell(gseat, id, 'PL', 'host') end
        peer_is(gseat, id, seat)
        tell(gseat, id, 'PJ', 'host')
        tell(gseat, id, 'D', d)
        tell(seat, id, 'GJ', n)
      end
    end
  end
  -- The host of a shared room addresses each relay, by script: no one peer to cache, and
  -- frames from any of its guests are its to hear.
  tell(seat, id, 'P', '*')
  return {'ok', r.e, tostring(d), any and '1' or '0', tostring(counted)}
end
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
