#!/bin/sh
# Build the libFuzzer targets and run each for a while.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      (default 20 s, every target)
#
# Environment: BUILD (build directory, default build-fuzz in the repo root),
# FUZZ_ARGS (extra libFuzzer options). Each target starts from a scratch copy
# of its seed corpus (tests/fuzz/corpus/NAME), so the tree is left alone; a
# crashing input is written to $BUILD/fuzz-artifacts/. Prints one line per
# target, "ok fuzz_NAME (N execs)" or "FAIL fuzz_NAME ...", and exits non-zero
# when any target failed.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2

secs=${1:-20}
[ $# -gt 0 ] && shift
targets=${*:-"s3_xml codec config filter sigv4 registry_manifest"}
build=${BUILD:-build-fuzz}

case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [TARGET...]" >&2
	exit 2
	;;
esac

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Db_lundef=false >"$build.setup.log" 2>&1 || {
		cat "$build.setup.log" >&2
		echo "FAIL meson setup (see $build.setup.log)" >&2
		exit 2
	}
	rm -f "$build.setup.log"
fi
names=
for t in $targets; do
	names="$names fuzz_$t"
done
# shellcheck disable=SC2086
if ! ninja -C "$build" $names >"$build/fuzz-build.log" 2>&1; then
	cat "$build/fuzz-build.log" >&2
	echo "FAIL build (see $build/fuzz-build.log)" >&2
	exit 2
fi

art="$build/fuzz-artifacts"
mkdir -p "$art"
status=0
for t in $targets; do
	work="$build/fuzz-corpus/$t"
	rm -rf "$work"
	mkdir -p "$work"
	if [ -d "tests/fuzz/corpus/$t" ]; then
		cp tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
	fi
	log="$build/fuzz-$t.log"
	# shellcheck disable=SC2086
	"$build/fuzz_$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/fuzz_$t-" ${FUZZ_ARGS:-} \
		"$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "ok fuzz_$t (${execs:-?} execs)"
	else
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "FAIL fuzz_$t (exit $rc; log $log${crash:+; input $crash})"
		status=1
	fi
done
exit $status
