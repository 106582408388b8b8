#!/bin/bash
# The Debian package, built, linted, installed, checked and purged (twice),
# as root on a machine where dth is not installed otherwise. run-all.sh runs
# it as its "Debian package" stage:  bash tests/package.sh RUN_DIR
#
#  1. copies the tree (git ls-files: what a clean clone has, plus uncommitted
#     edits) into RUN_DIR/pkg/src, so the checkout stays clean, and builds it
#     with `dpkg-buildpackage -us -uc -b` (DEB_BUILD_OPTIONS=nocheck: the
#     unit tests ran in the stages before; the .deb lands in RUN_DIR/pkg)
#  2. lintian --fail-on error,warning on the .changes
#  3. apt-get install ./dth_*.deb (man pages included even where
#     /etc/dpkg/dpkg.cfg.d/ excludes /usr/share/man, as minimal images do),
#     then checks dth --help, man dth-sync, the bash completion (complete -p
#     dth) and the zsh one (zsh -n), systemd-analyze verify of the installed
#     units, the dth user and /var/lib/dth (0750 dth:dth), the fuse.dth helper
#  4. apt-get purge with /var/lib/dth/.keep-on-purge present: the state
#     directory stays, nothing else the package installed is left
#  5. installs again, purges without the keep file: /var/lib/dth is gone too
# Prints "ok NAME" or "FAIL NAME: why" per check; exit status 1 when any
# failed. Refuses to run (FAIL) when a dth package or /usr/bin/dth is already
# on the machine: it would be replaced and then purged.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_DIR=${1:?usage: package.sh RUN_DIR}
PKG_DIR=$RUN_DIR/pkg
LOG=$RUN_DIR/package.log
FAILS=0

ok() { echo "ok $1"; }
fail() {
	echo "FAIL $1"
	FAILS=$((FAILS + 1))
}
check() { # NAME COMMAND...
	local name=$1
	shift
	if "$@" >>"$LOG" 2>&1; then ok "$name"; else fail "$name (see $LOG)"; fi
}

st=$(dpkg-query -W -f='${db:Status-Status} ${Version}' dth 2>/dev/null || true)
if [ -n "$st" ] && [[ $st != not-installed* ]]; then
	fail "a dth package is already on this machine ($st): this stage would replace and purge it; remove it first or set DTH_SKIP_PACKAGE=1"
	exit 1
fi
if [ -e /usr/bin/dth ]; then
	fail "/usr/bin/dth exists (not from a package): this stage would overwrite it; remove it first or set DTH_SKIP_PACKAGE=1"
	exit 1
fi
: >"$LOG"

# 1. build in a copy of the tree
rm -rf "$PKG_DIR"
mkdir -p "$PKG_DIR/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$PKG_DIR/src"
else
	tar --exclude='./build*' --exclude=./tests/harness/node --exclude=./test-artefacts -cf - . |
		tar -xf - -C "$PKG_DIR/src"
fi
t0=$(date +%s)
if (cd "$PKG_DIR/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) \
	>"$PKG_DIR/build.log" 2>&1; then
	ok "package build ($(($(date +%s) - t0)) s)"
else
	tail -n 40 "$PKG_DIR/build.log"
	fail "package build (see $PKG_DIR/build.log)"
	exit 1
fi
DEB=$(ls "$PKG_DIR"/dth_*.deb 2>/dev/null | head -n 1)
CHANGES=$(ls "$PKG_DIR"/dth_*.changes 2>/dev/null | head -n 1)

# 2. lintian
lintian --fail-on error,warning "$CHANGES" >"$PKG_DIR/lintian.log" 2>&1
rc=$?
grep -v 'running with root privileges' "$PKG_DIR/lintian.log"
if [ $rc -eq 0 ]; then ok lintian; else fail "lintian: errors or warnings above"; fi

install_pkg() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		-o 'DPkg::Options::=--path-include=/usr/share/man/*' "$DEB" >>"$LOG" 2>&1
}

# Every file the package installed that is still there after a purge
# (directories other packages also own, or that are not empty, excepted).
leftovers() { # LISTFILE
	local p
	while IFS= read -r p; do
		[ -e "$p" ] || [ -L "$p" ] || continue
		if [ -d "$p" ] && [ ! -L "$p" ]; then
			[ -n "$(ls -A "$p" 2>/dev/null)" ] && continue
			dpkg-query -S "$p" >/dev/null 2>&1 && continue
		fi
		echo "$p"
	done <"$1"
}

purge_and_check() { # ROUND KEEP(0|1)
	local round=$1 keep=$2 list=$PKG_DIR/files-$1.txt left
	dpkg-query -L dth >"$list" 2>/dev/null
	echo state >/var/lib/dth/some-state
	[ "$keep" = 1 ] && touch /var/lib/dth/.keep-on-purge
	check "purge ($round)" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q dth
	left=$(leftovers "$list")
	if [ -z "$left" ]; then
		ok "nothing the package installed is left ($round, $(wc -l <"$list") paths)"
	else
		fail "left after the purge ($round): $(echo "$left" | tr '\n' ' ')"
	fi
	if [ "$keep" = 1 ]; then
		check "/var/lib/dth kept with .keep-on-purge" test -f /var/lib/dth/some-state
		rm -rf /var/lib/dth
	else
		check "/var/lib/dth removed" test ! -e /var/lib/dth
	fi
	check "dpkg knows no dth ($round)" sh -c '! dpkg-query -W -f="\${db:Status-Status}" dth 2>/dev/null | grep -qv not-installed'
}

# 3. install and look at it
if ! install_pkg; then
	tail -n 20 "$LOG"
	fail "apt-get install $DEB"
	exit 1
fi
ok "install"
check "dth --help" sh -c 'dth --help | grep -q "^usage: dth"'
check "dth version" dth version
check "man dth-sync" sh -c 'man -P cat dth-sync 2>/dev/null | grep -q -- --dry-run'
check "bash completion" bash -c 'source /usr/share/bash-completion/completions/dth && complete -p dth | grep -q _dth'
if command -v zsh >/dev/null 2>&1; then
	check "zsh completion (zsh -n)" zsh -n /usr/share/zsh/vendor-completions/_dth
fi
for u in dth-agent.service dth-mount@.service; do
	check "systemd-analyze verify $u" sh -c "out=\$(systemd-analyze verify --man=no /usr/lib/systemd/system/$u 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
done
check "dth user" getent passwd dth
check "/var/lib/dth 0750 dth:dth" sh -c '[ "$(stat -c "%a %U %G" /var/lib/dth)" = "750 dth dth" ]'
check "mount.fuse.dth -> mount.fuse3" sh -c '[ "$(readlink -f /usr/sbin/mount.fuse.dth)" = "$(readlink -f /sbin/mount.fuse3)" ]'
check "example config passes dth config check" sh -c 'cp /usr/share/doc/dth/examples/dth.conf '"$PKG_DIR"'/ex.conf && chmod 600 '"$PKG_DIR"'/ex.conf && dth config check --offline --config '"$PKG_DIR"'/ex.conf'

# 4. purge keeping the state, 5. install again and purge it all
purge_and_check 1 1
if install_pkg; then ok "install again"; else fail "install again"; fi
purge_and_check 2 0

[ "$FAILS" -eq 0 ]
