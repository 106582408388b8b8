#!/bin/bash
# Side-by-side benchmark of `dth mount` and s3fs (Debian s3fs 1.90) reading the
# same bucket of a throw-away radosgw, all on this machine, as root (FUSE).
#
# usage: bench/mount.sh [--quick]
#   --quick   tiny sizes and one run per tool (to check the script, not to measure)
#
# Measures, on a fresh mount each time: sequential read of a 1 GiB object
# (MiB/s, CPU seconds of the mount process), `ls -l` of a directory of 10,000
# objects, `find` over 20,000 objects, first-byte latency (4 KiB of an object
# not read before), requests counted at radosgw for each; and `ls -l`/`find`
# from a mirror task's manifest (dth mount --manifest, which must send none).
#
# Environment (defaults in brackets):
#   DTH           the dth binary, best a release build [build/dth]
#   BENCH_RUNS    runs per tool and operation (tools in alternating order); the
#                 median, the min-max spread and the dth/s3fs ratio of the runs made
#                 back to back are reported [5]
#   BENCH_ONLY    comma-separated operations to run, of seq, ls, find, first_byte,
#                 ls_manifest, find_manifest (the listing buckets are only seeded
#                 when needed) [all]
#   BENCH_DIR     work dir (cluster, mountpoints, logs) [/tmp/dth-bench-mount]
#   BENCH_PORT_SRC [7590]  BENCH_PORT_DST [7591]  BENCH_MON_PORT [6899]
#   BENCH_MEMSTORE_BYTES [6442450944]
#   BENCH_OUT     raw numbers [bench/results/mount-latest.json]
#   BENCH_RGW_NODELAY  1: start radosgw with tcp_nodelay=1 (stock radosgw leaves Nagle on,
#                 which stalls a reused keep-alive connection for a delayed ACK, ~40 ms) [0]
#   sizes: BENCH_BIG_SIZE [1073741824] BENCH_LS_COUNT [10000] BENCH_FIND_COUNT [20000]
#
# Prints a Markdown table (medians and spreads; dth/s3fs ratios against the
# targets: sequential MiB/s >= 1.5x, mount CPU per GiB <= 0.5x, ...) and exits
# 1 when a run failed or read wrong data.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

if [ "${1:-}" = "--quick" ]; then
	: "${BENCH_RUNS:=1}" "${BENCH_BIG_SIZE:=67108864}" "${BENCH_LS_COUNT:=500}" "${BENCH_FIND_COUNT:=1000}"
	: "${BENCH_OUT:=${BENCH_DIR:-/tmp/dth-bench-mount}/quick.json}"
	export BENCH_RUNS BENCH_BIG_SIZE BENCH_LS_COUNT BENCH_FIND_COUNT
	shift
fi
[ $# -eq 0 ] || {
	sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

BENCH_DIR=${BENCH_DIR:-/tmp/dth-bench-mount}
CEPH_DIR=$BENCH_DIR/ceph
export DTH_TEST_RGW_PORT_A=${BENCH_PORT_SRC:-7590}
export DTH_TEST_RGW_PORT_B=${BENCH_PORT_DST:-7591}
export DTH_TEST_MON_PORT=${BENCH_MON_PORT:-6899}
export DTH_TEST_MEMSTORE_BYTES=${BENCH_MEMSTORE_BYTES:-6442450944}

DTH=${DTH:-$ROOT/build/dth}
[ -x "$DTH" ] || {
	echo "mount.sh: no dth binary at $DTH (build it, or set DTH=path)" >&2
	exit 2
}
DTH=$(cd "$(dirname "$DTH")" && pwd)/$(basename "$DTH")
[ "$(id -u)" = 0 ] || {
	echo "mount.sh: run as root (FUSE mounts, the kernel readahead setting, apt-get)" >&2
	exit 2
}
[ -e /dev/fuse ] && command -v fusermount3 >/dev/null || {
	echo "mount.sh: FUSE is not usable here (/dev/fuse, fusermount3 from the fuse3 package)" >&2
	exit 2
}
if ! command -v s3fs >/dev/null; then
	echo "mount.sh: installing s3fs" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends s3fs >/dev/null
fi
PY=$(sh "$ROOT/tests/harness/pick-python.sh") || {
	echo "mount.sh: no python3 with boto3" >&2
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
		echo "mount.sh: could not set tcp_nodelay in a copy of tests/harness/ceph.sh" >&2
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
export BENCH_WORK=$BENCH_DIR/work
export BENCH_OUT=${BENCH_OUT:-$HERE/results/mount-latest.json}
export BENCH_DTH=$DTH
rc=0
"$PY" "$HERE/bench_mount.py" || rc=$?
exit $rc
