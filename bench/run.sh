#!/bin/bash
# Side-by-side benchmark of `dth sync` and rclone on a throw-away Ceph cluster
# with two radosgw endpoints (source and destination), all on this machine.
#
# usage: bench/run.sh [--quick]
#   --quick   tiny sizes and one run per tool (to check the script, not to measure)
#
# Environment (defaults in brackets):
#   DTH           the dth binary, best a release build [build/dth]; DTH=none: rclone only
#   BENCH_RUNS    runs per tool and scenario, the median is reported [3]
#   BENCH_WARMUP  unmeasured rounds of both tools before scenarios 1 and 2: the first
#                 copies into a fresh cluster cost its servers more [1]
#   BENCH_SCENARIOS  which scenarios ["1 2 3"]
#   BENCH_DIR     work dir (cluster, dth state, logs) [/tmp/dth-bench]
#   BENCH_PORT_SRC [7580]  BENCH_PORT_DST [7581]  BENCH_MON_PORT [6889]
#   BENCH_MEMSTORE_BYTES [15032385536] (14 GiB of RAM at most; buckets are emptied between runs)
#   BENCH_OUT     raw numbers [bench/results/latest.json]
#   BENCH_RGW_NODELAY  1: start radosgw with tcp_nodelay=1 (stock radosgw leaves Nagle on,
#                 which stalls a reused keep-alive connection for a delayed ACK) [0]
#   sizes: BENCH_SMALL_COUNT [2000] BENCH_SMALL_SIZE [4096] BENCH_BIG_SIZE [1073741824]
#          BENCH_BIG_PART [8388608] BENCH_RESCAN_COUNT [20000] BENCH_RESCAN_SMALL_COUNT [2000]
#
# Prints a Markdown table (median of the runs; dth/rclone ratios against the
# targets) and exits 1 when a run failed or its destination was wrong.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

if [ "${1:-}" = "--quick" ]; then
	: "${BENCH_RUNS:=1}" "${BENCH_WARMUP:=0}" "${BENCH_SMALL_COUNT:=200}" "${BENCH_BIG_SIZE:=67108864}"
	: "${BENCH_RESCAN_COUNT:=1000}" "${BENCH_RESCAN_SMALL_COUNT:=200}"
	: "${BENCH_OUT:=${BENCH_DIR:-/tmp/dth-bench}/quick.json}"
	export BENCH_RUNS BENCH_WARMUP BENCH_SMALL_COUNT BENCH_BIG_SIZE BENCH_RESCAN_COUNT BENCH_RESCAN_SMALL_COUNT
	shift
fi
[ $# -eq 0 ] || {
	sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

BENCH_DIR=${BENCH_DIR:-/tmp/dth-bench}
CEPH_DIR=$BENCH_DIR/ceph
export DTH_TEST_RGW_PORT_A=${BENCH_PORT_SRC:-7580}
export DTH_TEST_RGW_PORT_B=${BENCH_PORT_DST:-7581}
export DTH_TEST_MON_PORT=${BENCH_MON_PORT:-6889}
export DTH_TEST_MEMSTORE_BYTES=${BENCH_MEMSTORE_BYTES:-15032385536}

DTH=${DTH:-}
if [ -z "$DTH" ]; then
	for c in "$ROOT/build/dth"; do
		if [ -x "$c" ]; then
			DTH=$c
			break
		fi
	done
fi
if [ "$DTH" = none ] || [ -z "$DTH" ]; then
	echo "run.sh: no dth binary (set DTH=path); measuring rclone only" >&2
	DTH=""
elif [ ! -x "$DTH" ]; then
	echo "run.sh: $DTH is not an executable" >&2
	exit 2
else
	DTH=$(cd "$(dirname "$DTH")" && pwd)/$(basename "$DTH")
fi
[ -x /usr/bin/time ] || {
	echo "run.sh: GNU time is needed (apt-get install time)" >&2
	exit 2
}
command -v rclone >/dev/null || {
	echo "run.sh: rclone is not installed" >&2
	exit 2
}
PY=$(sh "$ROOT/tests/harness/pick-python.sh") || {
	echo "run.sh: no python3 with boto3" >&2
	exit 2
}

stop_ceph() {
	trap - EXIT INT TERM
	bash "$ROOT/tests/harness/ceph.sh" stop "$CEPH_DIR" || true
}
mkdir -p "$BENCH_DIR"
rm -rf "$BENCH_DIR/work"
CEPH_SH=$ROOT/tests/harness/ceph.sh
export BENCH_RGW_NODELAY=${BENCH_RGW_NODELAY:-0}
if [ "$BENCH_RGW_NODELAY" = 1 ]; then
	# the test harness's cluster, with tcp_nodelay=1 on both beast frontends
	CEPH_SH=$BENCH_DIR/ceph-nodelay.sh
	sed 's/^\(rgw frontends = beast endpoint=127\.0\.0\.1:\$PORT_[AB]\)$/\1 tcp_nodelay=1/' \
		"$ROOT/tests/harness/ceph.sh" >"$CEPH_SH"
	[ "$(grep -c 'tcp_nodelay=1$' "$CEPH_SH")" = 2 ] || {
		echo "run.sh: could not set tcp_nodelay in a copy of tests/harness/ceph.sh" >&2
		exit 2
	}
fi
trap stop_ceph EXIT
trap 'stop_ceph; exit 130' INT TERM
bash "$CEPH_SH" start "$CEPH_DIR" >&2
# shellcheck disable=SC1091
. "$CEPH_DIR/env"

export BENCH_SRC_URL=$DTH_TEST_RGW_A BENCH_DST_URL=$DTH_TEST_RGW_B
export BENCH_SRC_ASOK=$DTH_TEST_RGW_A_ASOK BENCH_DST_ASOK=$DTH_TEST_RGW_B_ASOK
export BENCH_OSD_ASOK=$CEPH_DIR/run/osd.0.asok
export BENCH_CEPH_CONF=$DTH_TEST_CEPH_CONF
export BENCH_WORK=$BENCH_DIR/work
export BENCH_OUT=${BENCH_OUT:-$HERE/results/latest.json}
export BENCH_RCLONE_CONF=$HERE/rclone.conf
export BENCH_DTH=$DTH
rc=0
"$PY" "$HERE/bench.py" || rc=$?
exit $rc
