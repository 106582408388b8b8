#!/bin/bash
# Benchmark of change events on a throw-away Ceph cluster with two radosgw
# endpoints (bench/bench_events.py says what it measures): the latency from a
# PUT at the source to the object at the destination through radosgw's
# bucket notifications and the agent's webhook, and the rate at which a burst
# of events is drained, against `dth sync` of the same objects; the same for a
# local directory with events = inotify, with `rclone copy` of the files too.
#
# usage: bench/events.sh [--quick]
#   --quick   20 objects for latency, a burst of 1,000, one run
#
# Environment (defaults in brackets):
#   DTH            the dth binary [build/dth]
#   BENCH_RUNS [5]  BENCH_LATENCY_OBJECTS [100]  BENCH_BURST [10000]
#   BENCH_DIR [/tmp/dth-bench-events]  BENCH_API_PORT [8592]
#   BENCH_PORT_SRC [7580]  BENCH_PORT_DST [7581]  BENCH_MON_PORT [6889]
#   BENCH_SRC_URL, BENCH_DST_URL, BENCH_SRC_ASOK, BENCH_DST_ASOK, BENCH_SECRET:
#                  use running radosgw endpoints instead of starting a cluster
#   BENCH_OUT      raw numbers [bench/results/events-latest.json]
#   BENCH_ONLY=local  only the local directory (inotify) part
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
if [ "${1:-}" = "--quick" ]; then
	: "${BENCH_LATENCY_OBJECTS:=20}" "${BENCH_BURST:=1000}" "${BENCH_RUNS:=1}"
	export BENCH_LATENCY_OBJECTS BENCH_BURST BENCH_RUNS
	shift
fi
bench_no_args "$@"
bench_dth
bench_need ceph "the ceph CLI is needed (tests/install-deps.sh)"
bench_python
BENCH_DIR=${BENCH_DIR:-/tmp/dth-bench-events}
mkdir -p "$BENCH_DIR"
bench_ceph
export BENCH_WORK=$BENCH_DIR/work BENCH_DTH=$DTH
export BENCH_OUT=${BENCH_OUT:-$HERE/results/events-latest.json}
"$PY" "$HERE/bench_events.py"
