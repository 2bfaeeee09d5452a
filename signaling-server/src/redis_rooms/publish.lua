-- ARGV: channel, message. The relay hot path: one PUBLISH, kept out of the append-only file
-- and the replication stream like every relayed payload (a plain PUBLISH is replicated).
redis.set_repl(redis.REPL_NONE)
return redis.call('PUBLISH', ARGV[1], ARGV[2])
