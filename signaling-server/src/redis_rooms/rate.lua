-- ARGV: bucket, per_second, burst
if take(P .. 'rate:' .. ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now_ms()) then
  return {'ok'}
end
return {'rate-limited'}
