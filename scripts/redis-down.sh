#!/usr/bin/env bash
# Stops what scripts/redis-up.sh started (the data stays in ${REDIS_DIR:-./.redis}).
set -euo pipefail
dir=${REDIS_DIR:-$PWD/.redis}
for pid in "$dir"/*/redis.pid; do
	[ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
done
