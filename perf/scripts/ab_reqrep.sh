#!/usr/bin/env bash
# Two shardbus binaries and nats-server on synchronous request/reply, side by side in one run:
# all three brokers up at once, rounds alternating over them, one requester and one responder
# (16 B), unpaced and at a fixed rate. Each run's placement comes from WELCOME, so the table is
# per placement. For "did this change make a request cheaper?":
#
#   perf/scripts/ab_reqrep.sh OLD_BINARY NEW_BINARY [rounds]
#
# Prints one table (median, min–max per broker, placement and pace); RATE (default 1000) sets
# the paced rate. OLD_FLAGS and NEW_FLAGS are extra flags for each (one binary twice, two
# settings: `OLD_FLAGS= NEW_FLAGS="--set runtime.x=1" ab_reqrep.sh B B`).
set -euo pipefail
cd "$(dirname "$0")/../.."
source perf/scripts/common.sh
old=$1 new=$2 rounds=${3:-6} rate=${RATE:-1000}
ab_start
# shellcheck disable=SC2086 # extra flags are meant to split
start_shardbus old "$old" ${OLD_FLAGS:-}
# shellcheck disable=SC2086
start_shardbus new "$new" ${NEW_FLAGS:-}
start_nats nats

for round in $(seq "$rounds"); do
  for which in old new nats; do
    for pace in unpaced paced; do
      args="-n 5000"
      [ "$pace" = paced ] && args="-n 2000 --rate $rate"
      # shellcheck disable=SC2086 # the arguments are meant to split
      $bench --json -t "${target[$which]}" $args --server-pid "${pid_of[$which]}" reqrep |
        tagged broker="$which" pace="$pace" >>"$out"
    done
  done
  echo "round $round done" >&2
done

python3 perf/scripts/medians.py "$out" pace,broker,placement "req/s" "p50 µs" "p99 µs" \
  "server CPU %" "server CPU µs/request"
