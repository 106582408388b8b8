#!/bin/sh
# Source rules that the compiler cannot check by itself:
#  - every .c file includes "common/compat.h" before anything else, so glibc's
#    fortified headers are read before the bans of common/banned.h (and every
#    file gets the bans);
#  - no header but compat.h includes banned.h;
#  - dth's own code (not the tests) formats into fixed arrays only with
#    xsnprintf or msg_snprintf (common/util.h), never a bare snprintf whose
#    truncation nobody would see.
# Prints one line per violation; exit status 1 when there is any.
cd "$(dirname "$0")/.." || exit 2
bad=0
files=$(git ls-files -co --exclude-standard -- '*.c' 2>/dev/null) ||
	files=$(find . \( -path './build*' -o -path ./.git -o -path ./tests/harness/node \) -prune -o -name '*.c' -print)
for f in $files; do
	[ -f "$f" ] || continue
	first=$(grep -m1 -E '^[[:space:]]*#[[:space:]]*(include|define|if)' "$f")
	if [ "$first" != '#include "common/compat.h"' ]; then
		echo "$f: the first preprocessor line must be #include \"common/compat.h\" (found: ${first:-none})"
		bad=1
	fi
done
for f in $(grep -rl --include='*.h' '#include "common/banned.h"' . 2>/dev/null); do
	case $f in ./common/compat.h) ;; *)
		echo "$f: only common/compat.h may include common/banned.h"
		bad=1
		;;
	esac
done
for f in $(git ls-files -- 'agent/*.c' 'cli/*.c' 'common/*.c' 'fs/*.c' 'manifest/*.c' \
	'remote/*.c' 2>/dev/null); do
	[ "$f" = common/util.c ] && continue
	grep -n '[^a-z_]snprintf(' "$f" | grep -v 'msg_snprintf\|xsnprintf' |
		sed "s|^|$f:|; s|\$| (use xsnprintf or msg_snprintf)|" | grep . && bad=1
done
exit $bad
