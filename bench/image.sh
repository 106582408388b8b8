#!/bin/bash
# Side-by-side benchmark of `dth image sync` and `skopeo sync --all` between two
# throw-away docker-registry instances on loopback (src without auth, dst with
# htpasswd basic auth), both started by bench/bench_image.py itself.
#
# usage: bench/image.sh [--quick]
#   --quick   a small workload and one run per tool (to check the script, not to measure)
#
# Environment (defaults in brackets):
#   DTH            the dth binary, best a release build [build/dth]; DTH=none: skopeo only
#   BENCH_RUNS     runs per tool and scenario, the median is reported [3]
#   BENCH_DIR      work dir (registries, images, dth state, logs) [/tmp/dth-bench-image]
#   BENCH_PORT_SRC [5400]  BENCH_PORT_DST [5401]
#   BENCH_OUT      raw numbers [bench/results/image-latest.json]
#   BENCH_SKOPEO_SRC  yaml: one `skopeo sync --src yaml` for every repository;
#                  docker: one `skopeo sync --src docker` per repository [yaml]
#   BENCH_DTH_MODE images: --images with every repository and no tag; all: --all [images]
#   BENCH_DTH_CONCURRENCY  dth's --concurrency (0: its default) [0]
#   BENCH_TOOLS    which tools, in the first run's order ["dth skopeo"]
#   workload: BENCH_REPOS [20] BENCH_TAGS [3] (tags per repo) BENCH_BASES [3]
#             BENCH_BASE_SIZE [2097152] BENCH_REPO_SIZE [524288] BENCH_TAG_SIZE [262144]
#
# skopeo's blob-info cache (/var/lib/containers/cache/blob-info-cache-v1.boltdb)
# is deleted before each of its cold runs, so that they are cold.
# Prints a Markdown table (median of the runs; dth/skopeo ratios against the
# targets) and exits 1 when a run failed or its destination was wrong.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

if [ "${1:-}" = "--quick" ]; then
	: "${BENCH_RUNS:=1}" "${BENCH_REPOS:=4}" "${BENCH_TAGS:=2}" "${BENCH_BASE_SIZE:=262144}"
	: "${BENCH_OUT:=${BENCH_DIR:-/tmp/dth-bench-image}/quick.json}"
	export BENCH_RUNS BENCH_REPOS BENCH_TAGS BENCH_BASE_SIZE
	shift
fi
[ $# -eq 0 ] || {
	sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit 2
}

BENCH_DIR=${BENCH_DIR:-/tmp/dth-bench-image}
export BENCH_PORT_SRC=${BENCH_PORT_SRC:-5400}
export BENCH_PORT_DST=${BENCH_PORT_DST:-5401}

DTH=${DTH:-}
if [ -z "$DTH" ] && [ -x "$ROOT/build/dth" ]; then DTH=$ROOT/build/dth; fi
if [ "$DTH" = none ] || [ -z "$DTH" ]; then
	echo "image.sh: no dth binary (set DTH=path); measuring skopeo only" >&2
	DTH=""
elif [ ! -x "$DTH" ]; then
	echo "image.sh: $DTH is not an executable" >&2
	exit 2
else
	DTH=$(cd "$(dirname "$DTH")" && pwd)/$(basename "$DTH")
fi
for t in docker-registry skopeo umoci htpasswd curl; do
	command -v $t >/dev/null || {
		echo "image.sh: $t is not installed (apt-get install docker-registry skopeo umoci apache2-utils curl)" >&2
		exit 2
	}
done
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$BENCH_PORT_SRC" "$BENCH_PORT_DST"; do
	if port_busy "$p"; then
		echo "image.sh: port $p is in use; set BENCH_PORT_SRC/BENCH_PORT_DST" >&2
		exit 2
	fi
done
PY=$(command -v python3)
"$PY" -c 'import random; random.Random(1).randbytes(1)' 2>/dev/null || {
	echo "image.sh: python3 3.9 or later is needed" >&2
	exit 2
}

# the registries bench_image.py starts, stopped by PID whatever happens
WORK=$BENCH_DIR/work
stop_all() {
	local p
	for p in $(cat "$WORK/pids" 2>/dev/null || true); do
		kill "$p" 2>/dev/null || true
	done
	rm -f "$WORK/pids"
}
rm -rf "$WORK"
mkdir -p "$WORK"
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

export BENCH_WORK=$WORK
export BENCH_OUT=${BENCH_OUT:-$HERE/results/image-latest.json}
export BENCH_DTH=$DTH
rc=0
"$PY" "$HERE/bench_image.py" || rc=$?
exit $rc
