#!/bin/bash
# The test command (CI runs it through .ci/run):  sudo bash tests/run-all.sh
#
#  1. install the dependencies (tests/install-deps.sh; quick when present)
#  2. build (build/, with Debian's hardening flags from dpkg-buildflags), run
#     the unit tests
#  3. build again with ASan+UBSan (build-asan/), run the unit tests again
#  4. build with ThreadSanitizer (build-tsan/) and run the threaded unit tests
#  5. build the libFuzzer targets (build-fuzz/, clang) and run each one
#     for a bounded time from its seed corpus (tests/fuzz/run.sh): one test
#     per target
#  6. check the source rules (tests/check-sources.sh) and the formatting of
#     every .c/.h with clang-format (one test each)
#  7. build the Debian package in a copy of the tree, lintian it, install
#     it, check it and purge it (tests/package.sh)
#  8. start two radosgw endpoints, s3rver and three docker-registry instances
#     with test images (tests/harness/), run the
#     integration tests (tests/integration/run.py) against build/dth, then a
#     few of them against a ThreadSanitizer build of dth, and stop the
#     servers again, even on failure or Ctrl-C; the web console test
#     leaves its screenshots in test-artefacts/console/
# and print one last line, "N passed, N failed" (", N skipped" when some
# were), over all of it. Exit status 1 when anything failed.
#
# Arguments are passed to run.py (e.g. -k kill9). Environment:
#   DTH_SKIP_INSTALL=1   do not run install-deps.sh
#   DTH_SKIP_ASAN=1      skip the sanitizer build
#   DTH_SKIP_TSAN=1      skip the ThreadSanitizer runs (unit and integration)
#   DTH_SKIP_FUZZ=1      skip the fuzz stage
#   DTH_SKIP_PACKAGE=1   skip the Debian package stage
#   DTH_FUZZ_SECONDS     how long each fuzz target runs (default 15)
#   DTH_BUILD_DIR, DTH_ASAN_BUILD_DIR, DTH_TSAN_BUILD_DIR, DTH_FUZZ_BUILD_DIR
#                        build dirs (build, build-asan, build-tsan, build-fuzz)
#   DTH_TEST_RUN_DIR     where servers, logs and test dirs go (default: a new
#                        /tmp/dth-test.XXXXXX, removed when all passed)
#   DTH_TEST_MEMSTORE_BYTES  RAM the Ceph OSD may fill (default 12 GiB)
#   DTH_TEST_REG_PORT_SRC/_DST/_TOKEN/_AUTH  registry ports (5000-5003)
#   DTH_TEST_RGW_PORT_A, DTH_TEST_RGW_PORT_B, DTH_TEST_MON_PORT,
#   DTH_TEST_S3RVER_PORT  ports (7480, 7481, 6789, 4568), to avoid clashes
#   SLURMCTLD_PORT, SLURMD_PORT  the test Slurm cluster's ports (16817, 16818)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PASS=0
FAIL=0
SKIP=0
FAILED_STAGES=()
BUILD_DIR=${DTH_BUILD_DIR:-build}
ASAN_DIR=${DTH_ASAN_BUILD_DIR:-build-asan}
TSAN_DIR=${DTH_TSAN_BUILD_DIR:-build-tsan}
FUZZ_DIR=${DTH_FUZZ_BUILD_DIR:-build-fuzz}
# Unit tests that run code on several threads: the read cache's fetchers, the
# workers' memory budget, the streamed copy's GET thread and ring, the request
# executor, the secret store, the HTTP server and the fair worker slots.
TSAN_TESTS="readahead budget pipe exec secret httpd fairshare dirwatch"
RUN_DIR=${DTH_TEST_RUN_DIR:-$(mktemp -d /tmp/dth-test.XXXXXX)}
mkdir -p "$RUN_DIR"
SERVERS_STARTED=0

stage() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }
failed() { # NAME [COUNT]
	FAIL=$((FAIL + ${2:-1}))
	FAILED_STAGES+=("$1")
}

stop_servers() {
	[ "$SERVERS_STARTED" = 1 ] || return 0
	SERVERS_STARTED=0
	local keep=0
	[ "$FAIL" -gt 0 ] && keep=1
	KEEP=$keep bash tests/harness/s3rver.sh stop "$RUN_DIR/s3rver" || true
	KEEP=$keep bash tests/harness/registry.sh stop "$RUN_DIR/registry" || true
	KEEP=$keep bash tests/harness/ceph.sh stop "$RUN_DIR/ceph" || true
}

finish() {
	stop_servers
	echo
	if [ "$FAIL" -gt 0 ]; then
		echo "failed: ${FAILED_STAGES[*]}; logs and test dirs kept in $RUN_DIR"
	elif [ -z "${DTH_TEST_RUN_DIR:-}" ]; then
		rm -rf "$RUN_DIR"
	fi
	local line="$PASS passed, $FAIL failed"
	[ "$SKIP" -gt 0 ] && line="$line, $SKIP skipped"
	echo "$line"
}
trap finish EXIT
trap 'echo "interrupted"; FAIL=$((FAIL + 1)); FAILED_STAGES+=(interrupted); exit 130' INT TERM

# Configure (or re-configure) a meson build dir and build it; log in $RUN_DIR.
build() { # DIR [meson options...] [-- ninja targets...]
	local dir=$1 log=$RUN_DIR/$(basename "$1").log
	shift
	local opts=() targets=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	[ "${1:-}" = -- ] && shift
	targets=("$@")
	{
		if [ -f "$dir/build.ninja" ]; then
			meson setup --reconfigure "$dir" "${opts[@]}" ||
				meson setup --wipe "$dir" "${opts[@]}"
		elif [ -d "$dir/meson-private" ]; then
			meson setup --wipe "$dir" "${opts[@]}"
		else
			meson setup "$dir" "${opts[@]}"
		fi && ninja -C "$dir" "${targets[@]}"
	} >"$log" 2>&1
	local rc=$?
	if [ $rc -ne 0 ]; then
		echo "build of $dir failed; the end of $log:"
		tail -n 60 "$log"
	fi
	return $rc
}

# meson test; adds its Ok/Fail/Skipped counts.
unit_tests() { # DIR NAME [meson test arguments...]
	local dir=$1 name=$2 log=$RUN_DIR/$2-test.log ok fail skip
	shift 2
	meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$log"
	ok=$(awk '/^Ok:/ {n += $2} /^Expected Fail:/ {n += $3} END {print n + 0}' "$log")
	fail=$(awk '/^Fail:/ {n += $2} /^Unexpected Pass:/ {n += $3} /^Timeout:/ {n += $2} END {print n + 0}' "$log")
	skip=$(awk '/^Skipped:/ {n += $2} END {print n + 0}' "$log")
	if ! grep -q '^Ok:' "$log"; then
		echo "$name: no test summary from meson"
		failed "$name"
		return
	fi
	PASS=$((PASS + ok))
	SKIP=$((SKIP + skip))
	[ "$fail" -gt 0 ] && failed "$name" "$fail"
	echo "$name: $ok passed, $fail failed, $skip skipped"
}

stage "dependencies"
if [ -z "${DTH_SKIP_INSTALL:-}" ]; then
	if ! bash tests/install-deps.sh; then
		failed install-deps
		exit 1
	fi
fi
PY=$(sh tests/harness/pick-python.sh) || {
	echo "no python3 with boto3 (run tests/install-deps.sh as root)"
	failed python
	exit 1
}

# The build the integration tests use has Debian's build flags (what a
# package build uses: -O2, -D_FORTIFY_SOURCE=2, the stack protector, full
# RELRO), passed as options so a reconfigure of an existing directory takes
# them too.
HCPPFLAGS=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS)
HCFLAGS=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)
HLDFLAGS=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)
stage "build ($BUILD_DIR, dpkg-buildflags hardening=+all: $HCPPFLAGS $HCFLAGS $HLDFLAGS)"
BUILT=0
if build "$BUILD_DIR" --buildtype=plain -Dc_args="$HCPPFLAGS $HCFLAGS" -Dc_link_args="$HLDFLAGS"; then
	BUILT=1
	stage "unit tests"
	unit_tests "$BUILD_DIR" unit
else
	failed build
fi

if [ -z "${DTH_SKIP_ASAN:-}" ]; then
	stage "ASan+UBSan build ($ASAN_DIR) and unit tests"
	if build "$ASAN_DIR" -Db_sanitize=address,undefined -Db_lundef=false; then
		ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1} \
			UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1} \
			unit_tests "$ASAN_DIR" asan
	else
		failed asan-build
	fi
fi

if [ -z "${DTH_SKIP_TSAN:-}" ]; then
	# ThreadSanitizer over the unit tests whose code runs on several threads.
	stage "ThreadSanitizer build ($TSAN_DIR) and the threaded unit tests ($TSAN_TESTS)"
	tsan_targets=()
	for t in $TSAN_TESTS; do tsan_targets+=("test_$t"); done
	if build "$TSAN_DIR" -Db_sanitize=thread -Db_lundef=false -- "${tsan_targets[@]}"; then
		TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
			unit_tests "$TSAN_DIR" tsan --no-rebuild $TSAN_TESTS
	else
		failed tsan-build
	fi
fi

if [ -z "${DTH_SKIP_FUZZ:-}" ]; then
	# libFuzzer targets (tests/fuzz): each runs from its seed corpus for a
	# bounded time; a crash, hang, leak or sanitizer report fails its test.
	FUZZ_SECS=${DTH_FUZZ_SECONDS:-15}
	stage "fuzz targets ($FUZZ_DIR, clang + libFuzzer, $FUZZ_SECS s each)"
	# only configure here ("build.ninja"): run.sh builds the fuzz_* targets
	# and nothing else of this directory
	if CC=clang build "$FUZZ_DIR" -Dfuzz=true -Db_lundef=false -- build.ninja; then
		BUILD=$FUZZ_DIR sh tests/fuzz/run.sh "$FUZZ_SECS" 2>&1 | tee "$RUN_DIR/fuzz.log"
		fuzz_ok=$(grep -c '^ok fuzz_' "$RUN_DIR/fuzz.log")
		fuzz_fail=$(grep -c '^FAIL' "$RUN_DIR/fuzz.log")
		PASS=$((PASS + fuzz_ok))
		if [ "$fuzz_fail" -gt 0 ]; then
			failed fuzz "$fuzz_fail"
		elif [ "$fuzz_ok" -eq 0 ]; then
			echo "fuzz: no target ran"
			failed fuzz
		fi
		echo "fuzz: $fuzz_ok passed, $fuzz_fail failed"
	else
		failed fuzz-build
	fi
fi

stage "source rules (tests/check-sources.sh)"
if sh tests/check-sources.sh; then
	echo "source rules: ok"
	PASS=$((PASS + 1))
else
	failed source-rules
fi

stage "format (clang-format --dry-run -Werror)"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t SOURCES < <(git ls-files -co --exclude-standard -- '*.c' '*.h')
else
	mapfile -t SOURCES < <(find . \( -path "./build*" -o -path ./.git \
		-o -path ./tests/harness/node \) -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi
EXISTING=()
for f in "${SOURCES[@]}"; do [ -f "$f" ] && EXISTING+=("$f"); done
if clang-format --dry-run -Werror "${EXISTING[@]}"; then
	echo "format: ${#EXISTING[@]} files ok"
	PASS=$((PASS + 1))
else
	failed format
fi

# The Debian package (tests/package.sh): built in a copy of the tree with
# DEB_BUILD_OPTIONS=nocheck (the unit tests ran above), lintian, installed,
# checked, purged twice (keeping /var/lib/dth when asked, then not); one test
# per check. It refuses to touch a dth installed otherwise.
if [ -z "${DTH_SKIP_PACKAGE:-}" ]; then
	stage "Debian package (build, lintian, install, checks, purge)"
	bash tests/package.sh "$RUN_DIR" 2>&1 | tee "$RUN_DIR/package-stage.log"
	pkg_ok=$(grep -c '^ok ' "$RUN_DIR/package-stage.log")
	pkg_fail=$(grep -c '^FAIL' "$RUN_DIR/package-stage.log")
	PASS=$((PASS + pkg_ok))
	if [ "$pkg_fail" -gt 0 ]; then
		failed package "$pkg_fail"
	elif [ "$pkg_ok" -eq 0 ]; then
		echo "package: no check ran"
		failed package
	fi
	echo "package: $pkg_ok passed, $pkg_fail failed"
fi

# The worker pool, the planner threads and the streamed copies of a real
# sync (and an image sync), and the agent's scheduler, runs, drop-in watcher
# and API threads, under ThreadSanitizer, against the same servers.
tsan_integration() {
	[ -n "${DTH_SKIP_TSAN:-}" ] && return 0
	stage "integration tests under ThreadSanitizer ($TSAN_DIR/dth)"
	if ! build "$TSAN_DIR" -Db_sanitize=thread -Db_lundef=false -- dth; then
		failed tsan-dth-build
		return
	fi
	local log=$RUN_DIR/integration-tsan.log
	case $TSAN_DIR in /*) ;; *) TSAN_BIN=$ROOT/$TSAN_DIR/dth ;; esac
	DTH_BIN=${TSAN_BIN:-$TSAN_DIR/dth} DTH_TEST_WORKDIR=$RUN_DIR/it-tsan \
		"$PY" tests/integration/run.py -k test_copy.test_copy_everything -k test_copy.test_small_objects \
		-k test_integrity.test_single_part -k test_incremental.test_delete_propagation \
		-k test_image_sync.test_copy_and_rerun_floor -k test_agent.test_scheduled_s3 \
		-k test_agent.test_dropin_files -k test_agent.test_api_refusals \
		-k test_agent.test_mounts -k test_events.test_rgw_notifications \
		-k test_local.test_local_inotify_events 2>&1 | tee "$log"
	local last
	last=$(tail -n 1 "$log")
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		PASS=$((PASS + BASH_REMATCH[1]))
		[ "${BASH_REMATCH[2]}" -gt 0 ] && failed integration-tsan "${BASH_REMATCH[2]}"
	else
		failed integration-tsan
	fi
}

stage "integration tests"
if [ $BUILT = 0 ]; then
	echo "skipped: the build failed"
else
	# memstore keeps every object in RAM and radosgw stalls when it is full;
	# the suite stores a few GiB (the mount tests' 1 GiB object among them),
	# and RAM is only taken as objects are written.
	# Secrets of this run's test servers: long and random, so the tests can
	# search every output of dth for them (lib.check_no_secrets).
	rand() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
	export DTH_TEST_RGW_SECRET=${DTH_TEST_RGW_SECRET:-rgw-$(rand)}
	export DTH_TEST_RP_SECRET=${DTH_TEST_RP_SECRET:-rp-$(rand)}
	export DTH_TEST_REG_PASS=${DTH_TEST_REG_PASS:-reg-$(rand)}
	if DTH_TEST_MEMSTORE_BYTES=${DTH_TEST_MEMSTORE_BYTES:-12884901888} \
		bash tests/harness/ceph.sh start "$RUN_DIR/ceph" &&
		SERVERS_STARTED=1 &&
		bash tests/harness/s3rver.sh start "$RUN_DIR/s3rver" &&
		bash tests/harness/registry.sh start "$RUN_DIR/registry" &&
		bash tests/harness/make-images.sh "$RUN_DIR/registry" >"$RUN_DIR/make-images.log" 2>&1; then
		SERVERS_STARTED=1
		# shellcheck disable=SC1091
		. "$RUN_DIR/ceph/env"
		# shellcheck disable=SC1091
		. "$RUN_DIR/s3rver/env"
		# shellcheck disable=SC1091
		. "$RUN_DIR/registry/env"
		case $BUILD_DIR in /*) DTH_BIN=$BUILD_DIR/dth ;; *) DTH_BIN=$ROOT/$BUILD_DIR/dth ;; esac
		export DTH_BIN DTH_TEST_REQUIRE_SERVERS=1 DTH_TEST_REQUIRE_REGISTRIES=1
		# install-deps.sh installed chromium, playwright-core and axe-core;
		# the console's screenshots outlive the run dir (git-ignored).
		export DTH_TEST_REQUIRE_BROWSER=1
		# install-deps.sh installed Slurm: test_slurm starts its own one-node
		# cluster (tests/harness/slurm.sh) and must not skip.
		export DTH_TEST_REQUIRE_SLURM=1
		export DTH_TEST_ARTEFACTS=${DTH_TEST_ARTEFACTS:-$ROOT/test-artefacts}
		export DTH_TEST_WORKDIR=$RUN_DIR/it
		"$PY" tests/integration/run.py "$@" 2>&1 | tee "$RUN_DIR/integration.log"
		last=$(tail -n 1 "$RUN_DIR/integration.log")
		if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
			PASS=$((PASS + BASH_REMATCH[1]))
			[ "${BASH_REMATCH[2]}" -gt 0 ] && failed integration "${BASH_REMATCH[2]}"
			SKIP=$((SKIP + ${BASH_REMATCH[4]:-0}))
		else
			echo "the integration runner did not finish"
			failed integration
		fi
		tsan_integration
	else
		echo "the test servers did not start (logs in $RUN_DIR)"
		SERVERS_STARTED=1 # stop whatever did start
		failed servers
	fi
	stop_servers
fi

[ "$FAIL" -eq 0 ]
