#!/usr/bin/env bash
# Starts a throw-away redis-server on 127.0.0.1:PORT (no persistence, no config file) in the
# background, waits until it answers PING, and prints its PID on stdout. Stop it with `kill PID`.
#   scripts/start-redis.sh 6390
# Needs redis-server and redis-cli (Debian/Ubuntu: apt-get install -y redis-server).
set -euo pipefail
PORT="${1:?usage: start-redis.sh PORT}"
command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install -y redis-server)" >&2; exit 127; }
LOG="${TMPDIR:-/tmp}/llmr-redis-${PORT}.log"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  --protected-mode yes --dir "${TMPDIR:-/tmp}" --logfile "$LOG" </dev/null >/dev/null 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  if redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; then
    echo "$PID"
    exit 0
  fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "redis-server exited; see $LOG" >&2
    exit 1
  fi
  sleep 0.05
done
echo "redis-server on port $PORT did not answer PING within 5 s; see $LOG" >&2
kill "$PID" 2>/dev/null || true
exit 1
