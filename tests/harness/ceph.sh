#!/bin/bash
# A throw-away single-node Ceph cluster for the integration tests: one mon, one
# memstore OSD (RAM-backed, wiped on stop), cephx off, and two radosgw
# daemons on the same cluster, A and B, so the tests have two S3 endpoints.
# Both gateways share one bucket namespace: use distinct bucket names.
#
# usage: ceph.sh start DIR   start everything; writes DIR/env (shell exports)
#        ceph.sh stop DIR    stop every daemon by its PID, then remove DIR
#                            (KEEP=1 keeps DIR and its logs)
#
# Environment (defaults in brackets):
#   DTH_TEST_RGW_PORT_A [7480]  DTH_TEST_RGW_PORT_B [7481]  DTH_TEST_MON_PORT [6789]
#   DTH_TEST_MEMSTORE_BYTES [6442450944]
#   DTH_TEST_RGW_SECRET [test]  DTH_TEST_RP_SECRET [rpsecret]  the users' secret keys
# Users: test/$DTH_TEST_RGW_SECRET (owner of everything the tests create) and
# rp/$DTH_TEST_RP_SECRET (a second user, for requester-pays checks). The test
# suite gives them values of its own per run, so it can search every output
# of dth for them (no secret may appear).
set -euo pipefail

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
CMD=$1
BASE=$2
case $BASE in /*) ;; *) BASE="$PWD/$BASE" ;; esac

PORT_A=${DTH_TEST_RGW_PORT_A:-7480}
PORT_B=${DTH_TEST_RGW_PORT_B:-7481}
MON_PORT=${DTH_TEST_MON_PORT:-6789}
MEM_BYTES=${DTH_TEST_MEMSTORE_BYTES:-6442450944}
RGW_SECRET=${DTH_TEST_RGW_SECRET:-test}
RP_SECRET=${DTH_TEST_RP_SECRET:-rpsecret}
DAEMONS="client.rgw.a client.rgw.b osd.0 mon.a"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
	local pids="" p n i
	for n in $DAEMONS; do
		p=$(cat "$BASE/run/$n.pid" 2>/dev/null) || continue
		[ -n "$p" ] && pids="$pids $p"
	done
	# Also the PIDs recorded at start, in case a daemon lost its pid file.
	for p in $(cat "$BASE/pids" 2>/dev/null); do
		case " $pids " in *" $p "*) ;; *) pids="$pids $p" ;; esac
	done
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
	done
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$BASE"; fi
}

wait_http() { # PORT PID-FILE
	local i
	for i in $(seq 1 240); do
		curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.25
	done
	echo "ceph.sh: radosgw on port $1 did not answer; see $BASE/log" >&2
	return 1
}

start() {
	local p n
	for n in $DAEMONS; do
		p=$(cat "$BASE/run/$n.pid" 2>/dev/null) || continue
		if kill -0 "$p" 2>/dev/null; then
			echo "ceph.sh: $n already running in $BASE (pid $p); stop it first" >&2
			exit 1
		fi
	done
	for p in "$PORT_A" "$PORT_B" "$MON_PORT"; do
		if port_busy "$p"; then
			echo "ceph.sh: port $p is in use; set DTH_TEST_RGW_PORT_A/_B or DTH_TEST_MON_PORT" >&2
			exit 1
		fi
	done
	rm -rf "$BASE"
	mkdir -p "$BASE"/{mon,osd0,run,log,rgw-a,rgw-b}
	trap 'echo "ceph.sh: start failed; stopping what was started (logs kept in $BASE/log)" >&2; KEEP=1 stop' ERR

	local fsid C id osd_uuid
	fsid=$(uuidgen)
	C="$BASE/ceph.conf"
	cat >"$C" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms bind ipv6 = false
ms bind msgr2 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
run dir = $BASE/run
admin socket = $BASE/run/\$name.asok
log file = $BASE/log/\$name.log
pid file = $BASE/run/\$name.pid
keyring = /dev/null
[mon.a]
mon data = $BASE/mon
[osd.0]
osd data = $BASE/osd0
osd objectstore = memstore
memstore device bytes = $MEM_BYTES
osd memory target = 1073741824
osd class update on start = false
osd crush update on start = false
[client]
rgw dns name = localhost
rgw thread pool size = 64
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=YmluCmJvb3N0CmJvb3N0LWJ1aWxkCmNlcGguY29uZgo= testkey-2=aWIKTWFrZWZpbGUKbWFuCm91dApzcmMKVGVzdGluZwo=
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT_A
rgw data = $BASE/rgw-a
[client.rgw.b]
rgw frontends = beast endpoint=127.0.0.1:$PORT_B
rgw data = $BASE/rgw-b
CONF
	monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$BASE/monmap" >/dev/null
	ceph-mon -c "$C" --mkfs -i a --monmap "$BASE/monmap" 2>>"$BASE/log/stderr.log"
	ceph-mon -c "$C" -i a 2>>"$BASE/log/stderr.log"
	osd_uuid=$(uuidgen)
	id=$(ceph -c "$C" osd new "$osd_uuid" 2>>"$BASE/log/stderr.log")
	ceph-osd -c "$C" -i "$id" --mkfs --osd-uuid "$osd_uuid" 2>>"$BASE/log/stderr.log"
	ceph -c "$C" osd crush add "osd.$id" 1.0 root=default >/dev/null 2>&1 || true
	ceph-osd -c "$C" -i "$id" 2>>"$BASE/log/stderr.log"
	local i
	for i in $(seq 1 120); do
		ceph -c "$C" osd stat 2>/dev/null | grep -q "1 up" && break
		sleep 0.5
	done
	# Users and a second storage class (STANDARD_IA, for --storage-class
	# tests) are set up before the gateways start, which read them at start.
	radosgw-admin -c "$C" user create --uid test --display-name test \
		--access-key test --secret "$RGW_SECRET" >/dev/null 2>>"$BASE/log/stderr.log"
	radosgw-admin -c "$C" user create --uid rp --display-name "requester pays" \
		--access-key rp --secret "$RP_SECRET" >/dev/null 2>>"$BASE/log/stderr.log"
	radosgw-admin -c "$C" zonegroup placement add --rgw-zonegroup default \
		--placement-id default-placement --storage-class STANDARD_IA \
		>/dev/null 2>>"$BASE/log/stderr.log"
	radosgw-admin -c "$C" zone placement add --rgw-zone default \
		--placement-id default-placement --storage-class STANDARD_IA \
		--data-pool default.rgw.standard-ia.data >/dev/null 2>>"$BASE/log/stderr.log"
	radosgw -c "$C" -n client.rgw.a 2>>"$BASE/log/stderr.log"
	radosgw -c "$C" -n client.rgw.b 2>>"$BASE/log/stderr.log"
	wait_http "$PORT_A"
	wait_http "$PORT_B"
	for n in $DAEMONS; do cat "$BASE/run/$n.pid"; done | tr '\n' ' ' >"$BASE/pids"
	cat >"$BASE/env" <<ENV
export DTH_TEST_CEPH_DIR=$BASE
export DTH_TEST_CEPH_CONF=$C
export DTH_TEST_RGW_A=http://127.0.0.1:$PORT_A
export DTH_TEST_RGW_B=http://127.0.0.1:$PORT_B
export DTH_TEST_RGW_A_ASOK=$BASE/run/client.rgw.a.asok
export DTH_TEST_RGW_B_ASOK=$BASE/run/client.rgw.b.asok
export DTH_TEST_RGW_SECRET=$RGW_SECRET
export DTH_TEST_RP_SECRET=$RP_SECRET
ENV
	trap - ERR
	echo "ceph ready in $BASE: radosgw A http://127.0.0.1:$PORT_A, B http://127.0.0.1:$PORT_B (user test); pids $(cat "$BASE/pids")"
}

case $CMD in
start) start ;;
stop) stop ;;
*) usage ;;
esac
