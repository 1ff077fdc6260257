#!/usr/bin/env bash
# The viewing stack without Docker: the OpenTelemetry Collector and Jaeger built from their Go
# modules, Prometheus from the system (Debian: apt-get install prometheus), all on loopback, loading
# the same files docker-compose.yml mounts (collector-config.yaml, deploy/jaeger/config.yaml,
# deploy/prometheus/prometheus.yml + alerts.yml).
#
#   scripts/stack.sh build   build both programs (needs Go and the Go module proxy; minutes the first
#                            time, then cached until deploy/stack/versions.env or otelcol-builder.yaml
#                            changes)
#   scripts/stack.sh up      start the stack in the background and print its addresses
#   scripts/stack.sh down    stop it
#   scripts/stack.sh run     start it in the foreground; Ctrl-C (or SIGTERM) stops all three
#   scripts/stack.sh check   exit 0 when both programs are built, else say how to build them
#   scripts/stack.sh env     print the stack's addresses as KEY=value lines (for scripts)
#
# Environment (defaults are compose's published ports, so the README's addresses hold for both):
#   STACK_HOST=127.0.0.1  STACK_OTLP_GRPC_PORT=4317  STACK_OTLP_HTTP_PORT=4318
#   STACK_COLLECTOR_PROMETHEUS_PORT=8889  STACK_COLLECTOR_METRICS_PORT=8888  STACK_COLLECTOR_HEALTH_PORT=13133
#   STACK_JAEGER_PORT=16686 (HTTP API)  STACK_JAEGER_GRPC_PORT=16685  STACK_JAEGER_OTLP_PORT=14317
#   STACK_PROMETHEUS_PORT=9090  STACK_APP_METRICS_PORT=9464 (job llm-app: an app's own /metrics)
#   STACK_RUN_DIR         logs, pid file, Prometheus data (default <cache>/run)
#   STACK_PROMETHEUS_CONFIG, STACK_PROMETHEUS_RULES   other prometheus.yml / alerts.yml (tests)
#   LLM_RESILIENCE_STACK_CACHE   where builds are kept (default ~/.cache/llm-resilience-stack)
#   TRACES_SAMPLING_PERCENTAGE, TRACES_DECISION_WAIT, OTELCOL_DEBUG_VERBOSITY: see collector-config.yaml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../deploy/stack/versions.env
source "$ROOT/deploy/stack/versions.env"
MANIFEST="$ROOT/deploy/stack/otelcol-builder.yaml"
CACHE="${LLM_RESILIENCE_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-resilience-stack}"
# Bump when the build commands below change, so old builds are not reused.
RECIPE=1

say() { echo "stack: $*" >&2; }
die() { say "$*"; exit 1; }

# Cache keys: the pins (comments and blank lines ignored) and the recipe.
pins() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$@"; }
key() { sha256sum | cut -c1-16; }
OTELCOL_DIR="$CACHE/otelcol-$({ echo "recipe $RECIPE otelcol $OTELCOL_VERSION"; pins "$MANIFEST"; } | key)"
JAEGER_DIR="$CACHE/jaeger-$(echo "recipe $RECIPE jaeger $JAEGER_MODULE_VERSION $JAEGER_VERSION" | key)"
OTELCOL_BIN="$OTELCOL_DIR/otelcol/otelcol-llm-resilience"
JAEGER_BIN="$JAEGER_DIR/jaeger"

# ------------------------------------------------------------------------------------- build

go_env() {
  command -v go >/dev/null || die "Go 1.25 or newer is needed to build the stack (https://go.dev/dl/)"
  export CGO_ENABLED=0 GOTOOLCHAIN=local
}

build_otelcol() {
  if [ -x "$OTELCOL_BIN" ]; then say "collector $OTELCOL_VERSION: cached ($OTELCOL_BIN)"; return; fi
  go_env
  local tmp="$OTELCOL_DIR.tmp.$$" t0=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  say "collector $OTELCOL_VERSION: building the builder (OCB), then the collector from $MANIFEST"
  # The builder compiles with -trimpath -ldflags="-s -w"; strict versioning fails the build when any
  # module resolves to another version than the manifest pins.
  if ! GOBIN="$tmp/bin" go install -trimpath "go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION" \
    || ! (cd "$tmp" && ./bin/builder --config "$MANIFEST" --skip-strict-versioning=false); then
    rm -rf "$tmp"
    die "collector build failed (log above)"
  fi
  rm -rf "$OTELCOL_DIR" && mv "$tmp" "$OTELCOL_DIR"
  say "collector $OTELCOL_VERSION: built in $((SECONDS - t0)) s ($OTELCOL_BIN)"
}

build_jaeger() {
  if [ -x "$JAEGER_BIN" ]; then say "jaeger $JAEGER_VERSION: cached ($JAEGER_BIN)"; return; fi
  go_env
  local tmp="$JAEGER_DIR.tmp.$$" t0=$SECONDS
  local pkg=github.com/jaegertracing/jaeger/cmd/jaeger
  rm -rf "$tmp" && mkdir -p "$tmp"
  say "jaeger $JAEGER_VERSION: building $pkg@$JAEGER_MODULE_VERSION"
  # Jaeger's own go.mod pins some dependencies with replace directives, which only apply inside its
  # module: copy them, so this build resolves what Jaeger's release build does.
  local upstream
  if ! upstream="$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION")"; then
    echo "$upstream" >&2
    rm -rf "$tmp"
    die "jaeger build failed: module github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION not available"
  fi
  if ! (
      cd "$tmp" \
        && { printf 'module llm-resilience.local/stack/jaeger\n\ngo 1.25\n\n'
          grep '^replace ' "$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$upstream")" || true; } >go.mod \
        && go get -tool "$pkg@$JAEGER_MODULE_VERSION" \
        && go build -trimpath -o jaeger \
          -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION" "$pkg"
    ); then
    rm -rf "$tmp"
    die "jaeger build failed (log above)"
  fi
  rm -rf "$JAEGER_DIR" && mv "$tmp" "$JAEGER_DIR"
  say "jaeger $JAEGER_VERSION: built in $((SECONDS - t0)) s ($JAEGER_BIN)"
}

# Both builds at once: while one downloads modules the other compiles, which keeps both cores busy.
build_all() {
  mkdir -p "$CACHE"
  local t0=$SECONDS pids=() failed=0 pid
  (build_otelcol 2>&1 | sed -u 's/^/[collector] /' >&2; exit "${PIPESTATUS[0]}") &
  pids+=("$!")
  (build_jaeger 2>&1 | sed -u 's/^/[jaeger] /' >&2; exit "${PIPESTATUS[0]}") &
  pids+=("$!")
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" -eq 0 ] || die "build failed (see above)"
  say "collector and Jaeger ready in $((SECONDS - t0)) s"
}

check_built() {
  [ -x "$OTELCOL_BIN" ] && [ -x "$JAEGER_BIN" ] \
    || die "the collector and Jaeger are not built for the pinned versions: run scripts/stack.sh build"
}

# ------------------------------------------------------------------------------------- run

HOST="${STACK_HOST:-127.0.0.1}"
# Scrape targets and printed addresses need an address to connect to, not a wildcard.
CONNECT_HOST="$HOST"
[ "$HOST" = "0.0.0.0" ] && CONNECT_HOST=127.0.0.1
OTLP_GRPC_PORT="${STACK_OTLP_GRPC_PORT:-4317}"
OTLP_HTTP_PORT="${STACK_OTLP_HTTP_PORT:-4318}"
COLLECTOR_PROMETHEUS_PORT="${STACK_COLLECTOR_PROMETHEUS_PORT:-8889}"
COLLECTOR_METRICS_PORT="${STACK_COLLECTOR_METRICS_PORT:-8888}"
COLLECTOR_HEALTH_PORT="${STACK_COLLECTOR_HEALTH_PORT:-13133}"
JAEGER_PORT="${STACK_JAEGER_PORT:-16686}"
JAEGER_GRPC_PORT="${STACK_JAEGER_GRPC_PORT:-16685}"
JAEGER_OTLP_PORT="${STACK_JAEGER_OTLP_PORT:-14317}"
PROMETHEUS_PORT="${STACK_PROMETHEUS_PORT:-9090}"
APP_METRICS_PORT="${STACK_APP_METRICS_PORT:-9464}"
RUN_DIR="${STACK_RUN_DIR:-$CACHE/run}"
PROM_DIR="$RUN_DIR/prometheus"

addresses() {
  cat <<EOF
  Jaeger         http://$CONNECT_HOST:$JAEGER_PORT   (HTTP API: /api/services, /api/traces?service=...)
  Prometheus     http://$CONNECT_HOST:$PROMETHEUS_PORT   (alerts: /alerts, rules: /rules)
  Collector OTLP http://$CONNECT_HOST:$OTLP_HTTP_PORT (HTTP), $CONNECT_HOST:$OTLP_GRPC_PORT (gRPC)
  Send an app:   OTEL_EXPORTER_OTLP_ENDPOINT=http://$CONNECT_HOST:$OTLP_HTTP_PORT node --import llm-resilience/register app.js
  Logs:          $RUN_DIR/{collector,jaeger,prometheus}.log
EOF
}

print_env() {
  cat <<EOF
JAEGER_URL=http://$CONNECT_HOST:$JAEGER_PORT
PROMETHEUS_URL=http://$CONNECT_HOST:$PROMETHEUS_PORT
OTLP_HTTP_URL=http://$CONNECT_HOST:$OTLP_HTTP_PORT
OTLP_GRPC_ADDRESS=$CONNECT_HOST:$OTLP_GRPC_PORT
RUN_DIR=$RUN_DIR
EOF
}

# Prometheus gets a directory of its own: the config and rules (links to the repository's files, so
# alerts.yml resolves next to prometheus.yml as in the container) and the scrape targets for this host.
prepare_prometheus() {
  command -v prometheus >/dev/null || die "prometheus is not on PATH (Debian/Ubuntu: apt-get install prometheus)"
  mkdir -p "$PROM_DIR/targets" "$PROM_DIR/data"
  ln -sfn "$(realpath "${STACK_PROMETHEUS_CONFIG:-$ROOT/deploy/prometheus/prometheus.yml}")" "$PROM_DIR/prometheus.yml"
  ln -sfn "$(realpath "${STACK_PROMETHEUS_RULES:-$ROOT/deploy/prometheus/alerts.yml}")" "$PROM_DIR/alerts.yml"
  local job target
  for job in otel-collector otel-collector-internal llm-app prometheus; do
    case "$job" in
      otel-collector) target="$CONNECT_HOST:$COLLECTOR_PROMETHEUS_PORT" ;;
      otel-collector-internal) target="$CONNECT_HOST:$COLLECTOR_METRICS_PORT" ;;
      llm-app) target="$CONNECT_HOST:$APP_METRICS_PORT" ;;
      prometheus) target="$CONNECT_HOST:$PROMETHEUS_PORT" ;;
    esac
    printf -- '- targets: ["%s"]\n' "$target" >"$PROM_DIR/targets/$job.yml"
  done
}

http_ok() { curl -sf -o /dev/null --max-time 1 "$1"; }

PIDS=()
NAMES=()
stop_children() {
  trap - TERM INT HUP EXIT
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$RUN_DIR/ready"
}

spawn() {
  local name="$1"
  shift
  "$@" >"$RUN_DIR/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

run_stack() {
  check_built
  command -v curl >/dev/null || die "curl is needed to see when the stack is ready (apt-get install curl)"
  mkdir -p "$RUN_DIR"
  rm -f "$RUN_DIR/ready"
  prepare_prometheus
  trap 'stop_children; exit 0' TERM INT HUP
  trap stop_children EXIT

  # Jaeger's throw-away Badger store lives in its TMPDIR; a killed run leaves it here, not in /tmp.
  rm -rf "$RUN_DIR/jaeger-tmp" && mkdir -p "$RUN_DIR/jaeger-tmp"
  TMPDIR="$RUN_DIR/jaeger-tmp" \
    JAEGER_OTLP_GRPC_ENDPOINT="$HOST:$JAEGER_OTLP_PORT" \
    JAEGER_QUERY_HTTP_ENDPOINT="$HOST:$JAEGER_PORT" \
    JAEGER_QUERY_GRPC_ENDPOINT="$HOST:$JAEGER_GRPC_PORT" \
    spawn jaeger "$JAEGER_BIN" --config "$ROOT/deploy/jaeger/config.yaml"
  JAEGER_OTLP_ENDPOINT="$CONNECT_HOST:$JAEGER_OTLP_PORT" \
    OTELCOL_OTLP_GRPC_ENDPOINT="$HOST:$OTLP_GRPC_PORT" \
    OTELCOL_OTLP_HTTP_ENDPOINT="$HOST:$OTLP_HTTP_PORT" \
    OTELCOL_PROMETHEUS_ENDPOINT="$HOST:$COLLECTOR_PROMETHEUS_PORT" \
    OTELCOL_HEALTH_ENDPOINT="$HOST:$COLLECTOR_HEALTH_PORT" \
    OTELCOL_TELEMETRY_HOST="$HOST" \
    OTELCOL_TELEMETRY_PORT="$COLLECTOR_METRICS_PORT" \
    spawn collector "$OTELCOL_BIN" --config "$ROOT/collector-config.yaml"
  spawn prometheus prometheus \
    --config.file="$PROM_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROM_DIR/data" \
    --storage.tsdb.retention.time=7d \
    --web.listen-address="$HOST:$PROMETHEUS_PORT" \
    --web.enable-lifecycle

  local ready=0 i
  for _ in $(seq 1 300); do
    for i in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$i]}" 2>/dev/null || { say "${NAMES[$i]} exited at start; its log:"; tail -n 20 "$RUN_DIR/${NAMES[$i]}.log" >&2; exit 1; }
    done
    if http_ok "http://$CONNECT_HOST:$COLLECTOR_HEALTH_PORT/" && http_ok "http://$CONNECT_HOST:$JAEGER_PORT/api/services" \
      && http_ok "http://$CONNECT_HOST:$PROMETHEUS_PORT/-/ready"; then
      ready=1
      break
    fi
    sleep 0.2
  done
  [ "$ready" -eq 1 ] || die "not ready after 60 s; logs in $RUN_DIR"
  touch "$RUN_DIR/ready"
  say "up: collector $OTELCOL_VERSION, jaeger $JAEGER_VERSION, $(prometheus --version 2>&1 | head -n 1 | cut -d' ' -f1-3)"
  addresses >&2

  # Stay until told to stop; if any of the three dies, stop the others too.
  local code=0
  wait -n "${PIDS[@]}" || code=$?
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || { say "${NAMES[$i]} exited (code $code); its log:"; tail -n 20 "$RUN_DIR/${NAMES[$i]}.log" >&2; }
  done
  exit 1
}

running_pid() {
  local pid
  pid="$(cat "$RUN_DIR/stack.pid" 2>/dev/null)" || return 1
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

up() {
  check_built
  if running_pid >/dev/null; then
    say "already running (scripts/stack.sh down stops it)"
    addresses
    return
  fi
  mkdir -p "$RUN_DIR"
  rm -f "$RUN_DIR/ready"
  setsid bash "${BASH_SOURCE[0]}" run >"$RUN_DIR/stack.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$RUN_DIR/stack.pid"
  for _ in $(seq 1 350); do
    [ -e "$RUN_DIR/ready" ] && { say "up (scripts/stack.sh down stops it)"; addresses; return; }
    kill -0 "$pid" 2>/dev/null || { cat "$RUN_DIR/stack.log" >&2; rm -f "$RUN_DIR/stack.pid"; exit 1; }
    sleep 0.2
  done
  cat "$RUN_DIR/stack.log" >&2
  die "not ready after 70 s"
}

down() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running"
    rm -f "$RUN_DIR/stack.pid"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$RUN_DIR/stack.pid"; say "stopped"; return; }
    sleep 0.1
  done
  die "pid $pid did not stop within 10 s"
}

case "${1:-}" in
  build) build_all ;;
  check) check_built ;;
  env) print_env ;;
  run) run_stack ;;
  up) up ;;
  down) down ;;
  *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
