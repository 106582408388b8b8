# shellcheck shell=bash
# Shared checks of the benchmark scripts (sourced by scale.sh, agent.sh and
# events.sh after `set -euo pipefail`; not run on its own). It sets HERE (the
# bench directory) and ROOT (the repository) and names the calling script in
# its messages.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BENCH_NAME=$(basename "$0")

# Exit 2 with the script's own usage text (its header comment, from line 2
# to `set -e`) unless it was given no arguments.
bench_no_args() {
	[ $# -eq 0 ] && return 0
	sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

# Exit 2 with a message unless command $1 is on PATH; $2 says why or where
# to get it.
bench_need() {
	command -v "$1" >/dev/null && return 0
	echo "$BENCH_NAME: $2" >&2
	exit 2
}

# DTH: the dth binary ($DTH, default build/dth of the repository); exit 2
# when it is not an executable.
bench_dth() {
	DTH=${DTH:-$ROOT/build/dth}
	[ -x "$DTH" ] && return 0
	echo "$BENCH_NAME: no dth binary at $DTH (set DTH=path)" >&2
	exit 2
}

# PY: a python3 with boto3 (tests/harness/pick-python.sh); exit 2 without.
bench_python() {
	# shellcheck disable=SC2034 # for the caller
	PY=$(sh "$ROOT/tests/harness/pick-python.sh") && return 0
	echo "$BENCH_NAME: no python3 with boto3 (tests/install-deps.sh)" >&2
	exit 2
}

# Unless BENCH_SRC_URL names running endpoints: start a throw-away Ceph
# cluster in $BENCH_DIR/ceph (ports BENCH_PORT_SRC, BENCH_PORT_DST,
# BENCH_MON_PORT), stopped when the script exits, and export its endpoints
# as BENCH_SRC_URL, BENCH_DST_URL, BENCH_SRC_ASOK, BENCH_DST_ASOK and
# BENCH_SECRET.
bench_ceph() {
	[ -n "${BENCH_SRC_URL:-}" ] && return 0
	export DTH_TEST_RGW_PORT_A=${BENCH_PORT_SRC:-7580} DTH_TEST_RGW_PORT_B=${BENCH_PORT_DST:-7581}
	export DTH_TEST_MON_PORT=${BENCH_MON_PORT:-6889}
	CEPH_DIR=$BENCH_DIR/ceph
	trap 'bash "$ROOT/tests/harness/ceph.sh" stop "$CEPH_DIR" || true' EXIT
	bash "$ROOT/tests/harness/ceph.sh" start "$CEPH_DIR" >&2
	# shellcheck disable=SC1091
	. "$CEPH_DIR/env"
	export BENCH_SRC_URL=$DTH_TEST_RGW_A BENCH_DST_URL=$DTH_TEST_RGW_B
	export BENCH_SRC_ASOK=$DTH_TEST_RGW_A_ASOK BENCH_DST_ASOK=$DTH_TEST_RGW_B_ASOK
	export BENCH_SECRET=$DTH_TEST_RGW_SECRET
}
