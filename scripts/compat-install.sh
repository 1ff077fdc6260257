#!/usr/bin/env bash
# Installs the compatibility-matrix fixtures in test/compat/ (used by test/compat.test.ts):
#   - every SDK version of the matrix side by side under npm aliases (openai-v4-min, anthropic-v1-max, ...)
#   - the Node 20 / 22 / 24 binaries through npm's `node` package (node20, node22, node24)
#   - test/compat/v/<alias>/node_modules/<real name>: a hard-linked copy of each alias under the SDK's
#     real package name, so `require("openai")` from test/compat/v/<alias>/ loads that version by its
#     real name (the path the require hook of llm-resilience/register instruments).
#   - test/compat/ai-sdk/<set>/: each AI SDK set (`ai` + its providers) installed under the real names.
# Never touches the repository root's node_modules or package.json.
#
# Idempotent: skips `npm ci` when test/compat/node_modules already matches the committed lockfile
# (a stamp of package.json + package-lock.json), and rebuilds v/ only when the stamp changed.
# Usage: scripts/compat-install.sh [--force]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
COMPAT=test/compat
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

stamp="$(cat "$COMPAT/package.json" "$COMPAT/package-lock.json" | sha256sum | cut -d' ' -f1)"
stamp_file="$COMPAT/node_modules/.compat-stamp"

binaries_ok() {
  local n
  for n in 20 22 24; do
    [ -x "$COMPAT/node_modules/node$n/bin/node" ] || return 1
    "$COMPAT/node_modules/node$n/bin/node" -e "process.exit(process.versions.node.split('.')[0] === '$n' ? 0 : 1)" || return 1
  done
}

if [ "$FORCE" = 0 ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] && binaries_ok; then
  echo "compat-install: test/compat is up to date (stamp ${stamp:0:12})"
else
  started=$(date +%s)
  rm -f "$stamp_file"
  # The node binaries come from the `node` package's preinstall script (allowed in package.json
  # "allowScripts"); --foreground-scripts keeps its output in this log if it fails.
  npm ci --prefix "$COMPAT" --no-audit --no-fund --foreground-scripts --loglevel=error
  if ! binaries_ok; then
    echo "compat-install: the Node binaries are missing after npm ci (was the node package's preinstall script blocked?)" >&2
    exit 1
  fi
  rm -rf "$COMPAT/v"
  echo "$stamp" >"$stamp_file"
  echo "compat-install: npm ci took $(($(date +%s) - started)) s"
fi

# By-name copies. Rebuilt when missing or made for another stamp (npm ci replaced the inodes).
# Each folder is laid out as an application: its package.json declares the SDK it uses.
v_stamp="$stamp app-manifests"
if [ ! -f "$COMPAT/v/.stamp" ] || [ "$(cat "$COMPAT/v/.stamp")" != "$v_stamp" ]; then
  rm -rf "$COMPAT/v"
  mkdir -p "$COMPAT/v"
  for dir in "$COMPAT"/node_modules/openai-v* "$COMPAT"/node_modules/anthropic-v*; do
    alias="$(basename "$dir")"
    real="$(node -p "require('./$dir/package.json').name")"
    dest="$COMPAT/v/$alias/node_modules/$real"
    mkdir -p "$(dirname "$dest")"
    # Hard links: no extra disk; fall back to a plain copy across file systems.
    cp -al "$dir" "$dest" 2>/dev/null || cp -a "$dir" "$dest"
    version="$(node -p "require('./$dir/package.json').version")"
    printf '{ "name": "compat-app-%s", "private": true, "dependencies": { "%s": "%s" } }\n' "$alias" "$real" "$version" >"$COMPAT/v/$alias/package.json"
  done
  echo "$v_stamp" >"$COMPAT/v/.stamp"
fi

# The AI SDK's sets (test/compat/ai-sdk/<set>/, used by test/ai-sdk-compat.test.ts): `ai` and its
# providers depend on each other by name, so each set is its own install under the real names.
for dir in "$COMPAT"/ai-sdk/*/; do
  dir="${dir%/}"
  set_stamp="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ "$FORCE" = 1 ] || [ ! -f "$dir/node_modules/.compat-stamp" ] || [ "$(cat "$dir/node_modules/.compat-stamp")" != "$set_stamp" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$set_stamp" >"$dir/node_modules/.compat-stamp"
    echo "compat-install: installed $(basename "$dir")"
  fi
done

echo "compat-install: ok ($(du -sh "$COMPAT/node_modules" | cut -f1) in test/compat/node_modules)"
