#!/bin/bash
# s3rver 3.7.1 (a second, independent S3 implementation) for the integration
# tests, installed by tests/install-deps.sh into tests/harness/node/.
# Key id S3RVER, secret S3RVER (it does not check signatures).
#
# usage: s3rver.sh start DIR   start on 127.0.0.1:$DTH_TEST_S3RVER_PORT [4568],
#                              data and log under DIR; writes DIR/env
#        s3rver.sh stop DIR    stop it by PID, then remove DIR (KEEP=1 keeps it)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NODE_DIR=${DTH_TEST_S3RVER_NODE_DIR:-$HERE/node}
PORT=${DTH_TEST_S3RVER_PORT:-4568}

[ $# -eq 2 ] || {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
BASE=$2
case $BASE in /*) ;; *) BASE="$PWD/$BASE" ;; esac

stop() {
	local p i
	p=$(cat "$BASE/s3rver.pid" 2>/dev/null) || p=""
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
		kill "$p" 2>/dev/null || true
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$BASE"; fi
}

start() {
	local js=$NODE_DIR/node_modules/s3rver/bin/s3rver.js p i
	[ -f "$js" ] || {
		echo "s3rver.sh: $js missing; run tests/install-deps.sh" >&2
		exit 1
	}
	p=$(cat "$BASE/s3rver.pid" 2>/dev/null) || p=""
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
		echo "s3rver.sh: already running in $BASE (pid $p); stop it first" >&2
		exit 1
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
		echo "s3rver.sh: port $PORT is in use; set DTH_TEST_S3RVER_PORT" >&2
		exit 1
	fi
	rm -rf "$BASE"
	mkdir -p "$BASE/data"
	# --openssl-legacy-provider: on Node >= 17 s3rver's continuation tokens
	# (DES) fail without it, so every listing over 1,000 keys would fail.
	NODE_OPTIONS=--openssl-legacy-provider setsid node "$js" -d "$BASE/data" \
		-a 127.0.0.1 -p "$PORT" --silent >"$BASE/s3rver.log" 2>&1 </dev/null &
	p=$!
	echo "$p" >"$BASE/s3rver.pid"
	i=0
	until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do
		i=$((i + 1))
		if ! kill -0 "$p" 2>/dev/null || [ $i -gt 400 ]; then
			echo "s3rver.sh: s3rver did not start; see $BASE/s3rver.log" >&2
			KEEP=1 stop
			exit 1
		fi
		sleep 0.05
	done
	cat >"$BASE/env" <<ENV
export DTH_TEST_S3RVER=http://127.0.0.1:$PORT
export DTH_TEST_S3RVER_DIR=$BASE
ENV
	echo "s3rver ready: http://127.0.0.1:$PORT (S3RVER/S3RVER); pid $p"
}

case $1 in
start) start ;;
stop) stop ;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
