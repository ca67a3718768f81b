"""CacheFlush: the runbook's guarded `redis-cli flushdb`, once."""
