-- ARGV: id, seat, fail limit, grace ms
local id, seat, limit, grace = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = P .. 'room:' .. id
local now = now_ms()
local r = load(key)
local why = refusal(key, id, r, now)
if why then return {why} end
local counted = 0
if r.sh == '1' then
  local live = 0
  for _, g in ipairs(guests_of(r)) do
    if alive(g[2]) then
      live = live + 1
    else
      -- The seat of a guest whose node died: its run is over.
      local n = g[1]
      if r.hs then tell(r.hs, id, 'GL', n) end
      counted = counted + shared_run_ended(key, id, r, n, limit)
      drop_guest(key, r, n)
    end
  end
  if r.l == '1' then return {'room-locked', '', '', '', tostring(counted)} end
  if live >= tonumber(r.cap) then return {'shared-full', '', '', '', tostring(counted)} end
  if r.hs and not alive(r.hs) then
    redis.call('HDEL', key, 'hs')
    r.hs = nil
    r.hg = tostring(now)
    redis.call('HSET', key, 'hg', now)
  end
  local n = tonumber(r.ng)
  redis.call('HSET', key, 'g:' .. n, seat, 'q:' .. n, 0, 'ng', n + 1)
  seated(seat, id)
  local d = set_deadline(key, id, r, grace)
  if r.hs then tell(r.hs, id, 'GJ', tostring(n)) end
  peer_is(seat, id, r.hs)
  return {'ok', r.e, tostring(d), r.hs and '1' or '0', tostring(counted), tostring(n)}
end
if r.gs then
  if alive(r.gs) then
    if r.l == '1' then return {'room-locked'} end
    return {'room-full'}
  end
  -- The seat of a guest whose node died: its run is over.
  if run_ended(key, r) then
    counted = 1
    local left = count_failure(key, r, limit)
    tell(r.hs, id, 'HF', left)
    if r.l == '1' then tell(r.hs, id, 'LK') end
  end
  redis.call('HDEL', key, 'gs')
  r.gs = nil
  if r.hs then peer_is(r.hs, id, nil) end
end
if r.l == '1' then return {'room-locked', '', '', '', tostring(counted)} end
if r.hs and not alive(r.hs) then
  redis.call('HDEL', key, 'hs')
  r.hs = nil
  r.hg = tostring(now)
  redis.call('HSET', key, 'hg', now)
end
redis.call('HSET', key, 'gs', seat, 'g', 0)
seated(seat, id)
local d = set_deadline(key, id, r, grace)
if r.hs then
  peer_is(r.hs, id, seat)
  tell(r.hs, id, 'PJ', 'guest')
end
peer_is(seat, id, r.hs)
return {'ok', r.e, tostring(d), r.hs and '1' or '0', tostring(counted)}
