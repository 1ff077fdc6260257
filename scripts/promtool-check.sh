#!/usr/bin/env bash
# Validates the Prometheus side of the observability stack with promtool:
#   - deploy/prometheus/prometheus.yml (and the rule file it loads, by a path relative to it, so the
#     same file works mounted in the container at /etc/prometheus/ and from the repository),
#   - deploy/prometheus/alerts.yml,
#   - the alert unit tests deploy/prometheus/alerts.test.yml.
# Exits non-zero when promtool is missing or any check fails.
# promtool: `apt-get install -y prometheus` (Debian/Ubuntu), or the prom/prometheus image.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROMTOOL="${PROMTOOL:-promtool}"
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "promtool-check: '$PROMTOOL' not found on PATH; install it (apt-get install -y prometheus) or set PROMTOOL=/path/to/promtool" >&2
  exit 127
fi

"$PROMTOOL" --version 2>&1 | head -n 1

status=0
run() {
  echo "+ $*"
  if ! "$@"; then
    echo "promtool-check: FAILED: $*" >&2
    status=1
  fi
}

run "$PROMTOOL" check config deploy/prometheus/prometheus.yml
run "$PROMTOOL" check rules deploy/prometheus/alerts.yml
run "$PROMTOOL" test rules deploy/prometheus/alerts.test.yml

if [ "$status" -eq 0 ]; then
  echo "promtool-check: all checks passed"
fi
exit "$status"
