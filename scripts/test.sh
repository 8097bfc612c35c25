#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the browser, Redis, terminal and
# WebSocket conformance tests need when it is missing (Debian's chromium, redis-server and
# tmux, which runs `shardbus-cli top`'s live screen; the Autobahn|Testsuite into /tmp/abts or
# $SHARDBUS_AUTOBAHN), then runs every test of the workspace. The Redis tests start their own
# redis-server processes on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v tmux >/dev/null || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages) for the browser, Redis and terminal tests" >&2
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
autobahn=${SHARDBUS_AUTOBAHN:-/tmp/abts}
if [ ! -f "$autobahn/env.sh" ]; then
  echo "installing the Autobahn|Testsuite into $autobahn for the WebSocket conformance test" >&2
  ROOT=$autobahn bash scripts/autobahn_setup.sh >/dev/null
fi
cargo test --workspace
