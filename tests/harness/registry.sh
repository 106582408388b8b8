#!/bin/bash
# Three throw-away docker-registry (distribution 2.8) instances on loopback for
# the integration tests, and the token server the third one needs:
#   src    no auth                              DTH_TEST_REG_PORT_SRC   [5000]
#   dst    htpasswd basic auth testuser/$DTH_TEST_REG_PASS [testpass]
#                                               DTH_TEST_REG_PORT_DST   [5001]
#   token  bearer tokens (auth: token)           DTH_TEST_REG_PORT_TOKEN [5002]
#          from tests/harness/token-server.py    DTH_TEST_REG_PORT_AUTH  [5003]
# src also accepts schema 1 manifests (compatibility.schema1.enabled), so a
# test can push one. Access logs are on (DIR/logs/*.log count requests).
#
# usage: registry.sh start DIR   start everything; writes DIR/env (shell exports)
#        registry.sh stop DIR    stop every process by its PID, then remove DIR
#                                (KEEP=1 keeps DIR and its logs)
set -euo pipefail

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
CMD=$1
BASE=$2
case $BASE in /*) ;; *) BASE="$PWD/$BASE" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)

REG_PASS=${DTH_TEST_REG_PASS:-testpass}
PORT_SRC=${DTH_TEST_REG_PORT_SRC:-5000}
PORT_DST=${DTH_TEST_REG_PORT_DST:-5001}
PORT_TOKEN=${DTH_TEST_REG_PORT_TOKEN:-5002}
PORT_AUTH=${DTH_TEST_REG_PORT_AUTH:-5003}
SERVICE=dth-test-registry
ISSUER=dth-test-issuer

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
	local p i pids
	pids=$(cat "$BASE/pids" 2>/dev/null || true)
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
	done
	rm -f "$BASE/pids"
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$BASE"; fi
}

# The python that has PyJWT and cryptography.
pick_jwt_python() {
	local py
	for py in ${DTH_TEST_JWT_PYTHON:-} /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
		[ -n "$py" ] && [ -x "$py" ] || continue
		if "$py" -c 'import jwt, cryptography' >/dev/null 2>&1; then
			echo "$py"
			return 0
		fi
	done
	return 1
}

write_config() { # NAME PORT AUTH-YAML
	cat >"$BASE/$1.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $BASE/data/$1
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  secret: dth-test-secret-$1
  addr: 127.0.0.1:$2
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
$3
EOF
}

wait_v2() { # PORT PID NAME
	local i code
	for i in $(seq 1 400); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v2/" || true)
		case $code in 200 | 401) return 0 ;; esac
		if ! kill -0 "$2" 2>/dev/null; then
			echo "registry.sh: $3 died; see $BASE/logs/$3.log" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "registry.sh: $3 on port $1 did not answer; see $BASE/logs/$3.log" >&2
	return 1
}

start_registry() { # NAME PORT
	# docker-registry reads every REGISTRY_* variable as a config override.
	nohup env -u REGISTRY_AUTH_FILE -u REGISTRY_HTTP_ADDR docker-registry serve "$BASE/$1.yml" \
		>"$BASE/logs/$1.log" 2>&1 &
	local pid=$!
	echo $pid >>"$BASE/pids"
	wait_v2 "$2" $pid "$1"
}

start() {
	local p py i
	if [ -s "$BASE/pids" ]; then
		for p in $(cat "$BASE/pids"); do
			if kill -0 "$p" 2>/dev/null; then
				echo "registry.sh: already running in $BASE (pid $p); stop it first" >&2
				exit 1
			fi
		done
	fi
	for p in "$PORT_SRC" "$PORT_DST" "$PORT_TOKEN" "$PORT_AUTH"; do
		if port_busy "$p"; then
			echo "registry.sh: port $p is in use; set DTH_TEST_REG_PORT_SRC/_DST/_TOKEN/_AUTH" >&2
			exit 1
		fi
	done
	command -v docker-registry >/dev/null || {
		echo "registry.sh: docker-registry not installed (tests/install-deps.sh)" >&2
		exit 1
	}
	py=$(pick_jwt_python) || {
		echo "registry.sh: no python3 with PyJWT and cryptography" >&2
		exit 1
	}
	rm -rf "$BASE"
	mkdir -p "$BASE/data/src" "$BASE/data/dst" "$BASE/data/token" "$BASE/logs"
	: >"$BASE/pids"
	htpasswd -Bbn testuser "$REG_PASS" >"$BASE/htpasswd"

	write_config src "$PORT_SRC" "compatibility:
  schema1:
    enabled: true"
	write_config dst "$PORT_DST" "auth:
  htpasswd:
    realm: dth-test-realm
    path: $BASE/htpasswd"
	write_config token "$PORT_TOKEN" "auth:
  token:
    realm: http://127.0.0.1:$PORT_AUTH/token
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $BASE/token.crt"

	DTH_TEST_REG_PASS=$REG_PASS nohup "$py" "$HERE/token-server.py" "$BASE" "$PORT_AUTH" "$SERVICE" "$ISSUER" \
		>"$BASE/logs/token-server.log" 2>&1 &
	p=$!
	echo $p >>"$BASE/pids"
	for i in $(seq 1 400); do
		[ -s "$BASE/token.crt" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT_AUTH/token" && break
		kill -0 "$p" 2>/dev/null || {
			echo "registry.sh: token server died; see $BASE/logs/token-server.log" >&2
			return 1
		}
		sleep 0.05
	done

	start_registry src "$PORT_SRC"
	start_registry dst "$PORT_DST"
	start_registry token "$PORT_TOKEN"

	cat >"$BASE/env" <<EOF
export DTH_TEST_REG_DIR=$BASE
export DTH_TEST_REG_SRC=http://127.0.0.1:$PORT_SRC
export DTH_TEST_REG_DST=http://127.0.0.1:$PORT_DST
export DTH_TEST_REG_TOKEN=http://127.0.0.1:$PORT_TOKEN
export DTH_TEST_REG_AUTH=http://127.0.0.1:$PORT_AUTH/token
export DTH_TEST_REG_USER=testuser
export DTH_TEST_REG_PASS=$REG_PASS
EOF
	echo "registry.sh: src :$PORT_SRC, dst :$PORT_DST (basic), token :$PORT_TOKEN (bearer via :$PORT_AUTH); env in $BASE/env"
}

case $CMD in
start)
	if ! start; then
		KEEP=1 stop # the logs say why
		exit 1
	fi
	;;
stop) stop ;;
*) usage ;;
esac
