#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the browser and WebSocket conformance
# tests need when it is missing (Debian's chromium; the Autobahn|Testsuite into /tmp/abts or
# $SHARDBUS_AUTOBAHN), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package) for the browser test" >&2
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
autobahn=${SHARDBUS_AUTOBAHN:-/tmp/abts}
if [ ! -f "$autobahn/env.sh" ]; then
  echo "installing the Autobahn|Testsuite into $autobahn for the WebSocket conformance test" >&2
  ROOT=$autobahn bash scripts/autobahn_setup.sh >/dev/null
fi
cargo test --workspace
