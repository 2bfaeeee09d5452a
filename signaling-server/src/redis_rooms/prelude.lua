-- Shared by every script (prepended). Keys are built here from ARGV rather than passed in
-- KEYS: the registry runs on one Redis (or a Sentinel-managed primary), not on Cluster.
-- Times are Redis's own clock (TIME), so every node agrees on when a room ends.
local P = 'ferry:'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function node_of(seat) return string.match(seat, '^([^:]+):') end
local function conn_of(seat) return string.match(seat, ':(%d+)$') end

-- A seat held by a node whose heartbeat lapsed belongs to a socket that no longer exists.
local function alive(seat)
  if not seat then return false end
  return redis.call('EXISTS', P .. 'alive:' .. node_of(seat)) == 1
end

-- Tell the socket behind `seat` (on whichever node) about room `id`. Not propagated to the
-- append-only file or replicas: relayed payloads are never stored, even sealed.
local function tell(seat, id, code, arg)
  if seat then
    redis.set_repl(redis.REPL_NONE)
    redis.call('PUBLISH', P .. 'node:' .. node_of(seat),
      conn_of(seat) .. ' ' .. id .. ' ' .. code .. ' ' .. (arg or ''))
    redis.set_repl(redis.REPL_ALL)
  end
end

-- Tell the socket behind `seat` who holds its room's other seat now (`-`: nobody), before
-- any notice about that peer, so its node relays straight to the peer's node.
local function peer_is(seat, id, peer)
  tell(seat, id, 'P', peer or '-')
end

local function load(key)
  local v = redis.call('HGETALL', key)
  local r = {}
  for i = 1, #v, 2 do r[v[i]] = v[i + 1] end
  return r
end

-- The room's end: its lifetime, or the host grace when no host socket is attached. The key
-- expires then, so a room ends on time whether or not any node is up.
local function set_deadline(key, id, r, grace)
  local d = tonumber(r.e)
  if not r.hs then d = math.min(d, tonumber(r.hg) + grace) end
  redis.call('HSET', key, 'd', d)
  redis.call('PEXPIREAT', key, d)
  redis.call('ZADD', P .. 'rooms', d, id)
  local ok = P .. 'owner:' .. r.o
  redis.call('ZADD', ok, d, id)
  local top = redis.call('ZRANGE', ok, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', ok, tonumber(top[2]))
  return d
end

-- One more failed guess; locks at the limit. Returns the attempts left.
local function count_failure(key, r, limit)
  local f = tonumber(r.f) + 1
  r.f = tostring(f)
  redis.call('HSET', key, 'f', f)
  if f >= limit then
    r.l = '1'
    redis.call('HSET', key, 'l', 1)
  end
  return math.max(limit - f, 0)
end

-- The guest run ended without a host verdict: a failed guess when its tag was unanswered.
local function run_ended(key, r)
  if r.g == '1' then
    r.g = '3'
    redis.call('HSET', key, 'g', 3)
    return true
  end
  return false
end

-- Why a room cannot be used: nil when it is live.
local function refusal(key, id, r, now)
  if r.e == nil then
    if redis.call('EXISTS', P .. 'tomb:' .. id) == 1 then return 'room-expired' end
    return 'room-not-found'
  end
  if tonumber(r.d or r.e) <= now then return 'room-expired' end
  return nil
end

-- Token bucket: `rate` per second up to `burst`.
local function take(key, rate, burst, now)
  local v = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(v[1]) or burst
  local ts = tonumber(v[2]) or now
  tokens = math.min(burst, tokens + math.max(now - ts, 0) * rate / 1000)
  local ok = tokens >= 1
  if ok then tokens = tokens - 1 end
  redis.call('HSET', key, 't', tostring(tokens), 'ts', now)
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  return ok
end

-- Shared rooms (`sh` = 1) seat up to `cap` guests: guest n's seat is field `g:<n>` and its
-- run's guess state `q:<n>` (as `g` for the one guest of an ordinary room); `ng` is the next
-- number. `gs` and `g` stay unused there.
local function guests_of(r)
  local out = {}
  for k, v in pairs(r) do
    local n = string.match(k, '^g:(%d+)$')
    if n then out[#out + 1] = {n, v} end
  end
  table.sort(out, function(a, b) return tonumber(a[1]) < tonumber(b[1]) end)
  return out
end

local function guest_number(r, seat)
  for _, g in ipairs(guests_of(r)) do
    if g[2] == seat then return g[1] end
  end
  return nil
end

local function drop_guest(key, r, n)
  redis.call('HDEL', key, 'g:' .. n, 'q:' .. n)
  r['g:' .. n] = nil
  r['q:' .. n] = nil
end

-- Guest n's run ends without a host verdict (its seat is dropped): a failed guess when its
-- tag was unanswered. Tells the host; returns 1 when it counted.
local function shared_run_ended(key, id, r, n, limit)
  if r['q:' .. n] ~= '1' then return 0 end
  local left = count_failure(key, r, limit)
  if r.hs then
    tell(r.hs, id, 'GF', n .. ' ' .. left)
    if r.l == '1' then tell(r.hs, id, 'LK') end
  end
  return 1
end

-- leave_seat for a shared room.
local function leave_shared(key, id, r, seat, role, limit, grace, now)
  local counted = 0
  if role == 'host' then
    if r.hs ~= seat then return 0 end
    redis.call('HDEL', key, 'hs')
    r.hs = nil
    r.hg = tostring(now)
    redis.call('HSET', key, 'hg', now)
    local d = set_deadline(key, id, r, grace)
    for _, g in ipairs(guests_of(r)) do
      local n, gseat = g[1], g[2]
      tell(gseat, id, 'PL', 'host')
      if r['q:' .. n] == '1' then
        counted = counted + 1
        local left = count_failure(key, r, limit)
        drop_guest(key, r, n)
        tell(gseat, id, 'HFD', left)
      else
        tell(gseat, id, 'D', d)
      end
    end
    return counted
  end
  local n = guest_number(r, seat)
  if not n then return 0 end
  if r.hs then tell(r.hs, id, 'GL', n) end
  counted = shared_run_ended(key, id, r, n, limit)
  drop_guest(key, r, n)
  return counted
end

-- A seat's socket is gone (it left, or its node died): what one node did on a socket close.
-- Returns 1 when this ended a guest run with its tag unanswered (a failed guess).
local function leave_seat(id, seat, role, limit, grace)
  local key = P .. 'room:' .. id
  local r = load(key)
  if r.e == nil then return 0 end
  local now = now_ms()
  if r.sh == '1' then return leave_shared(key, id, r, seat, role, limit, grace, now) end
  local counted = 0
  if role == 'host' then
    if r.hs ~= seat then return 0 end
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
    if r.gs ~= seat then return 0 end
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
  return counted
end

-- Rooms where a node holds seats, so the seats of a node that died can be found.
local function seated(seat, id)
  redis.call('SADD', P .. 'seats:' .. node_of(seat), id)
end
