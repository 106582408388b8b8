#!/bin/sh
# Build the libFuzzer targets and run each for a while.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      (default 20 s, every target)
#
# TARGET is a name without "fuzz_" (s3_xml, registry_link, ...); the default is
# every fuzz_* executable meson.build defines (its fuzz_targets). Environment:
# BUILD (build directory, default build-fuzz in the repo root), FUZZ_ARGS
# (extra libFuzzer options). Each target starts from a scratch copy of its seed
# corpus (tests/fuzz/corpus/NAME), so the tree is left alone, and uses
# tests/fuzz/dict/NAME.dict when there is one; a crashing input is written to
# $BUILD/fuzz-artifacts/ and the inputs that found new coverage stay in
# $BUILD/fuzz-corpus/NAME (to keep the useful ones:
# $BUILD/fuzz_NAME -merge=1 tests/fuzz/corpus/NAME $BUILD/fuzz-corpus/NAME).
# Prints one line per target, "ok fuzz_NAME (N execs in S s)" or
# "FAIL fuzz_NAME ...", and exits 1 when a target failed, 2 when the build did.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2

secs=${1:-20}
[ $# -gt 0 ] && shift
build=${BUILD:-build-fuzz}

case $secs in
'' | *[!0-9]* | 0 | 0*) # libFuzzer takes 0 as "no limit"
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

# Every fuzz target the build defines (meson.build's fuzz_targets).
all=$(meson introspect "$build" --targets 2>/dev/null |
	grep -o '"name": *"fuzz_[A-Za-z0-9_]*"' | sed 's/.*"fuzz_\(.*\)"$/\1/' | sort -u)
if [ -z "$all" ]; then
	echo "FAIL no fuzz targets in $build (was it set up with -Dfuzz=true?)" >&2
	exit 2
fi
targets=${*:-$all}
names=
for t in $targets; do
	if ! printf '%s\n' "$all" | grep -qx "$t"; then
		echo "FAIL unknown target '$t' (known: $(printf '%s' "$all" | tr '\n' ' '))" >&2
		exit 2
	fi
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
	dict=
	[ -f "tests/fuzz/dict/$t.dict" ] && dict="-dict=tests/fuzz/dict/$t.dict"
	log="$build/fuzz-$t.log"
	start=$(date +%s)
	# shellcheck disable=SC2086
	"$build/fuzz_$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/fuzz_$t-" $dict ${FUZZ_ARGS:-} \
		"$work" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	if [ $rc -eq 0 ]; then
		echo "ok fuzz_$t (${execs:-?} execs in $took s)"
	else
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "FAIL fuzz_$t (exit $rc after ${execs:-?} execs in $took s; log $log${crash:+; input $crash})"
		status=1
	fi
done
exit $status
