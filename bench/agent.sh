#!/bin/bash
# Benchmark of `dth agent` holding many idle tasks on a throw-away Ceph
# cluster with two radosgw endpoints (bench/bench_agent.py says what it
# measures): RSS, CPU between runs, the requests of a round of rescans, and
# the API's latency under load while a copy runs.
#
# usage: bench/agent.sh [--quick]
#   --quick   10 tasks of 1,000 objects, one latency run (to check the script)
#
# Environment (defaults in brackets):
#   DTH            the dth binary [build/dth]
#   BENCH_TASKS [100]  BENCH_OBJECTS [10000] (per task)  BENCH_PERIOD [60] (s)
#   BENCH_RATE [200] (API requests/s)  BENCH_SECONDS [10] (per latency run)
#   BENCH_RUNS [5] (latency runs)  BENCH_BUSY_COUNT [3000] (256 KiB objects copied meanwhile)
#   BENCH_DIR [/tmp/dth-bench-agent]  BENCH_API_PORT [8591]
#   BENCH_PORT_SRC [7580]  BENCH_PORT_DST [7581]  BENCH_MON_PORT [6889]
#   BENCH_SRC_URL, BENCH_DST_URL, BENCH_SRC_ASOK, BENCH_DST_ASOK, BENCH_SECRET:
#                  use running radosgw endpoints instead of starting a cluster
#   BENCH_OUT      raw numbers [bench/results/agent-latest.json]
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
if [ "${1:-}" = "--quick" ]; then
	: "${BENCH_TASKS:=10}" "${BENCH_OBJECTS:=1000}" "${BENCH_PERIOD:=20}" "${BENCH_RUNS:=1}"
	: "${BENCH_BUSY_COUNT:=500}"
	export BENCH_TASKS BENCH_OBJECTS BENCH_PERIOD BENCH_RUNS BENCH_BUSY_COUNT
	shift
fi
bench_no_args "$@"
bench_dth
bench_need ceph "the ceph CLI is needed (tests/install-deps.sh)"
bench_python
BENCH_DIR=${BENCH_DIR:-/tmp/dth-bench-agent}
mkdir -p "$BENCH_DIR"
bench_ceph
export BENCH_WORK=$BENCH_DIR/work BENCH_DTH=$DTH
export BENCH_OUT=${BENCH_OUT:-$HERE/results/agent-latest.json}
"$PY" "$HERE/bench_agent.py"
