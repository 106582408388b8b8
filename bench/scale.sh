#!/bin/bash
# Scale benchmark of `dth sync` at 10^5, 10^6 and 10^7 keys against the
# synthetic S3 server (tests/harness/synth-s3.py: generated keys, never
# stored; no signature check), all on this machine: the first full plan
# (--dry-run), the first real run against a destination that already holds
# everything (adopted, nothing copied: that fills the manifest), and a
# no-change rescan. See bench/bench_scale.py for what is measured and how.
#
# usage: bench/scale.sh [--quick]
#   --quick   10^4 keys, one run (to check the script, not to measure)
#
# Environment (defaults in brackets):
#   DTH            the dth binary, best a release build [build/dth]
#   SCALE_SIZES    comma-separated N [100000,1000000,10000000]
#   BENCH_RUNS     plan and rescan runs per N, median and min-max reported [3]
#   SCALE_RUNS_LARGE  runs at N >= 10^7 [BENCH_RUNS]
#   SCALE_PORT     the synthetic server's port [19100]
#   SCALE_HEAP_MAX largest N also run under heaptrack for the peak heap [1000000]
#   SCALE_LIST_DELAY  milliseconds the server adds to each LIST [0]
#   BENCH_DIR      work dir (manifests, logs) [/tmp/dth-scale]
#   BENCH_OUT      raw numbers [bench/results/scale-latest.json]
#
# Needs python3 (3.11 stdlib), curl, mdb_stat (lmdb-utils) for the manifest's
# pages in use, heaptrack for the heap peak (skipped without it). Prints a
# Markdown table; exits 1 when a run failed or a rescan's LIST count is not
# ceil(N/1000).
set -euo pipefail

# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" = "--quick" ]; then
	: "${SCALE_SIZES:=10000}" "${BENCH_RUNS:=1}"
	: "${BENCH_OUT:=${BENCH_DIR:-/tmp/dth-scale}/quick.json}"
	shift
fi
bench_no_args "$@"
bench_dth
bench_need curl "curl is needed"
command -v mdb_stat >/dev/null || echo "scale.sh: no mdb_stat (lmdb-utils): manifest pages in use not measured" >&2
command -v heaptrack >/dev/null || echo "scale.sh: no heaptrack: heap peak not measured" >&2

BENCH_RUNS=${BENCH_RUNS:-3}
exec python3 "$HERE/bench_scale.py" --dth "$DTH" \
	--sizes "${SCALE_SIZES:-100000,1000000,10000000}" \
	--runs "$BENCH_RUNS" --runs-large "${SCALE_RUNS_LARGE:-$BENCH_RUNS}" \
	--port "${SCALE_PORT:-19100}" --heap-max "${SCALE_HEAP_MAX:-1000000}" \
	--list-delay "${SCALE_LIST_DELAY:-0}" \
	--work "${BENCH_DIR:-/tmp/dth-scale}" \
	--out "${BENCH_OUT:-$ROOT/bench/results/scale-latest.json}"
