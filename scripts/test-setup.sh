#!/usr/bin/env bash
# What `npm test` needs besides node_modules, made present before the suite runs (idempotent: about a
# second when everything is there):
#   - redis-server / redis-cli (fleet tests), promtool / prometheus (alert rules, the stack) and curl:
#     installed with apt-get when this runs as root or with password-less sudo, else one line says
#     what to install and the tests do not start;
#   - the compatibility matrix's SDK versions and Node binaries (scripts/compat-install.sh);
#   - the OpenTelemetry Collector and Jaeger builds of the stack end-to-end test (scripts/stack.sh
#     build: needs Go the first time, then cached).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "test-setup: $*" >&2; }
[ -d node_modules ] || { say "node_modules is missing: run npm ci first"; exit 1; }

# program -> Debian package
declare -A PACKAGE_OF=([redis-server]=redis-server [redis-cli]=redis-tools [promtool]=prometheus [prometheus]=prometheus [curl]=curl)
missing=()
packages=()
for program in redis-server redis-cli promtool prometheus curl; do
  command -v "$program" >/dev/null 2>&1 && continue
  missing+=("$program")
  [[ " ${packages[*]} " == *" ${PACKAGE_OF[$program]} "* ]] || packages+=("${PACKAGE_OF[$program]}")
done

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
  fi
  if [ "$SUDO" = "none" ] || ! command -v apt-get >/dev/null 2>&1; then
    say "npm test needs ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install -y ${packages[*]}; macOS: brew install redis prometheus) and run npm test again"
    exit 1
  fi
  say "installing ${packages[*]} (apt-get) for ${missing[*]}"
  # The Debian packages would start their daemons; the tests start their own on free ports.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && own_policy=1
  fi
  status=0
  { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; } || status=$?
  [ "$own_policy" = 1 ] && $SUDO rm -f "$policy"
  [ "$status" = 0 ] || { say "apt-get install ${packages[*]} failed (exit $status)"; exit 1; }
fi

# The stack build (CPU-bound, minutes on a fresh machine) runs while compat-install downloads.
stack_build=""
if ! bash scripts/stack.sh check >/dev/null 2>&1; then
  setsid bash scripts/stack.sh build &
  stack_build=$!
  trap 'kill -- -"$stack_build" 2>/dev/null || true' EXIT
fi
bash scripts/compat-install.sh
if [ -n "$stack_build" ]; then
  wait "$stack_build" || { say "scripts/stack.sh build failed (see above)"; exit 1; }
  trap - EXIT
fi
