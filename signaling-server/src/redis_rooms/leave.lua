-- ARGV: id, seat, role, fail limit, grace ms
local id, seat, role = ARGV[1], ARGV[2], ARGV[3]
local limit, grace = tonumber(ARGV[4]), tonumber(ARGV[5])
local key = P .. 'room:' .. id
local r = load(key)
if r.e == nil then return {'ok', '0'} end
local now = now_ms()
local counted = 0
if role == 'host' then
  if r.hs ~= seat then return {'ok', '0'} end
  redis.call('HDEL', key, 'hs')
  r.hs = nil
  r.hg = tostring(now)
  redis.call('HSET', key, 'hg', now)
  local d = set_deadline(key, id, r, grace)
  if r.gs then
    tell(r.gs, id, 'PL', 'host')
    if run_ended(key, r) then
      counted = 1
      local left = count_failure(key, r, limit)
      redis.call('HDEL', key, 'gs')
      tell(r.gs, id, 'HFD', left)
    else
      tell(r.gs, id, 'D', d)
    end
  end
else
  if r.gs ~= seat then return {'ok', '0'} end
  redis.call('HDEL', key, 'gs')
  if r.hs then tell(r.hs, id, 'PL', 'guest') end
  if run_ended(key, r) then
    counted = 1
    local left = count_failure(key, r, limit)
    if r.hs then
      tell(r.hs, id, 'HF', left)
      if r.l == '1' then tell(r.hs, id, 'LK') end
    end
  end
end
return {'ok', tostring(counted)}
