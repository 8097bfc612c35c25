#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the browser test needs (Debian's
# chromium) when it is missing, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package) for the browser test" >&2
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
cargo test --workspace
