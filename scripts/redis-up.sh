#!/usr/bin/env bash
# Starts the docker-compose topology without Docker: Redis 7 with AOF on
# 127.0.0.1:${REDIS_PORT:-6380} (or, with CLUSTER=1, a 3-master Cluster on
# ${REDIS_PORT:-7000}..+2), data under ${REDIS_DIR:-./.redis}. Prints the
# STICKYCALLS_REDIS_URL to use. `scripts/redis-down.sh` stops it.
set -euo pipefail
command -v redis-server >/dev/null || { echo "redis-server not found: apt-get install -y redis-server" >&2; exit 1; }
port=${REDIS_PORT:-6380}
dir=${REDIS_DIR:-$PWD/.redis}
fsync=${REDIS_APPENDFSYNC:-everysec}
mkdir -p "$dir"

start() { # port [cluster args...]
	local p=$1; shift
	mkdir -p "$dir/$p"
	redis-server --port "$p" --bind 127.0.0.1 --dir "$dir/$p" --appendonly yes --appendfsync "$fsync" \
		--save "" --daemonize yes --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" "$@"
	until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
}

if [ "${CLUSTER:-0}" = 1 ]; then
	urls=()
	for p in $port $((port + 1)) $((port + 2)); do
		start "$p" --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 2000
		urls+=("redis://127.0.0.1:$p")
	done
	if ! redis-cli -p "$port" cluster info | grep -q cluster_state:ok; then
		redis-cli --cluster create 127.0.0.1:$port 127.0.0.1:$((port + 1)) 127.0.0.1:$((port + 2)) --cluster-replicas 0 --cluster-yes >/dev/null
		until redis-cli -p "$port" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
	fi
	(IFS=,; echo "STICKYCALLS_REDIS_URL=${urls[*]}")
else
	start "$port"
	echo "STICKYCALLS_REDIS_URL=redis://127.0.0.1:$port/0"
fi
