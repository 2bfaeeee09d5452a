-- ARGV: id, mode. `join`: whether a guest could join now (the REST join check). `host`: the
-- token hash of a live room, for a reconnecting host. Changes nothing.
local id, mode = ARGV[1], ARGV[2]
local key = P .. 'room:' .. id
local r = load(key)
local why = refusal(key, id, r, now_ms())
if why then return {why} end
if mode == 'host' then return {'ok', r.e, r.h} end
if r.l == '1' then return {'room-locked'} end
if r.sh == '1' then
  local live = 0
  for _, g in ipairs(guests_of(r)) do
    if alive(g[2]) then live = live + 1 end
  end
  if live >= tonumber(r.cap) then return {'shared-full'} end
  return {'ok', r.e, ''}
end
if r.gs and alive(r.gs) then return {'room-full'} end
return {'ok', r.e, ''}
