#!/bin/bash
# A one-node Slurm cluster on 127.0.0.1 for the tests that run dth as an array
# job (tests/integration/test_slurm.py): munged, slurmctld and slurmd, each
# started and stopped by its PID, everything (munge key and socket, state,
# spool, logs, pid files, slurm.conf) under DIR; /etc is not touched, so it
# runs beside a system Slurm or another test cluster on other ports.
#
# usage: slurm.sh start DIR   start the three daemons, wait until the node is
#                             idle; writes DIR/env (export SLURM_CONF=...)
#        slurm.sh stop DIR    cancel the jobs left, stop the daemons by PID,
#                             then remove DIR (KEEP=1 keeps it and its logs)
#
# Environment (defaults in brackets):
#   SLURMCTLD_PORT [16817]  SLURMD_PORT [16818]  SLURM_CPUS [nproc]
#
# Debian 12: apt-get install --no-install-recommends slurmctld slurmd
# slurm-client munge (tests/install-deps.sh does). Run as root: slurmd starts
# the jobs as their submitter.
#
# What makes it work in a container without systemd (each one cost time):
#  - no cgroups: proctrack/linuxproc and task/none (the cgroup plugins want
#    systemd, or leave directories behind in /sys/fs/cgroup);
#  - batch_sched_delay=0: array tasks start at once, not a few seconds apart;
#  - munged's socket directory must be 0711 (and the directories above it
#    searchable by all) and its key 0400, ours;
#  - the host name is not "localhost": slurmd is told its node name (-N);
#  - PID 1 may reap orphans late, and kill -0 succeeds on a zombie: a zombie
#    counts as stopped;
#  - no accounting (sacct does not work): each finished job or array task
#    gets a line in DIR/log/jobcomp.txt instead.
set -euo pipefail

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
CMD=$1
BASE=$2
case $BASE in /*) ;; *) BASE="$PWD/$BASE" ;; esac
CTLD_PORT=${SLURMCTLD_PORT:-16817}
SLURMD_PORT=${SLURMD_PORT:-16818}
CPUS=${SLURM_CPUS:-$(nproc)}
CONF=$BASE/slurm.conf
SOCK=$BASE/munge/munge.socket.2
export SLURM_CONF=$CONF

say() { echo "slurm.sh: $*" >&2; }

# running PID: exists and is not a zombie
running() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

pid_of() { cat "$BASE/run/$1.pid" 2>/dev/null || true; }

# await_pid NAME SECONDS: until run/NAME.pid names a running process
await_pid() {
	local i=$(($2 * 10)) p
	while [ $i -gt 0 ]; do
		p=$(pid_of "$1")
		[ -n "$p" ] && running "$p" && return 0
		sleep 0.1
		i=$((i - 1))
	done
	return 1
}

# halt NAME: TERM the daemon of run/NAME.pid (only if its command line
# names BASE, so a stale pid file never hits another process), KILL after 15 s
halt() {
	local p i
	p=$(pid_of "$1")
	[ -n "$p" ] || return 0
	if running "$p" && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$BASE/"; then
		kill -TERM "$p" 2>/dev/null || true
		i=150
		while running "$p" && [ $i -gt 0 ]; do
			sleep 0.1
			i=$((i - 1))
		done
		if running "$p"; then
			say "$1 ($p) still running after TERM: KILL"
			kill -KILL "$p" 2>/dev/null || true
		fi
	fi
	rm -f "$BASE/run/$1.pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_conf() {
	cat >"$CONF" <<EOF
# written by tests/harness/slurm.sh
ClusterName=dthtest
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
PlugStackConfig=$BASE/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
	: >"$BASE/plugstack.conf"
}

start_munge() {
	mkdir -p "$BASE/munge"
	chmod 0711 "$BASE/munge"
	[ -s "$BASE/munge/munge.key" ] ||
		head -c 1024 /dev/urandom >"$BASE/munge/munge.key"
	chmod 0400 "$BASE/munge/munge.key"
	munged --socket="$SOCK" --key-file="$BASE/munge/munge.key" \
		--log-file="$BASE/log/munged.log" --pid-file="$BASE/run/munged.pid" \
		--seed-file="$BASE/munge/munged.seed" || return 1
	await_pid munged 10 || return 1
	local i=50
	until munge -S "$SOCK" -n </dev/null 2>/dev/null | unmunge -S "$SOCK" >/dev/null 2>&1; do
		i=$((i - 1))
		[ $i -gt 0 ] || return 1
		sleep 0.1
	done
}

node_idle() { [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ]; }

start() {
	local b i
	for b in munged munge slurmctld slurmd sinfo sbatch; do
		command -v "$b" >/dev/null || {
			say "$b not found (apt-get install --no-install-recommends slurmctld slurmd slurm-client munge)"
			exit 1
		}
	done
	if [ -n "$(pid_of slurmctld)" ] && running "$(pid_of slurmctld)"; then
		say "already running in $BASE"
		return 0
	fi
	for b in "$CTLD_PORT" "$SLURMD_PORT"; do
		if port_busy "$b"; then
			say "port $b is in use (set SLURMCTLD_PORT / SLURMD_PORT)"
			exit 1
		fi
	done
	mkdir -p "$BASE/state" "$BASE/spool" "$BASE/log" "$BASE/run"
	# munged wants every directory above its socket searchable by all (a
	# mktemp -d directory is 0700)
	chmod a+x "$BASE"
	write_conf
	start_munge || { say "munged did not start, see $BASE/log/munged.log"; KEEP=1 stop; exit 1; }
	# -c: no job or node state from an earlier run
	if ! { slurmctld -f "$CONF" -c && await_pid slurmctld 20; }; then
		say "slurmctld did not start, see $BASE/log/slurmctld.log"
		KEEP=1 stop
		exit 1
	fi
	if ! { slurmd -f "$CONF" -N localhost && await_pid slurmd 20; }; then
		say "slurmd did not start, see $BASE/log/slurmd.log"
		KEEP=1 stop
		exit 1
	fi
	i=300
	until node_idle; do
		i=$((i - 1))
		if [ $i -le 0 ]; then
			say "the node is not idle after 30 s: $(sinfo -h -o '%t %E' 2>&1)"
			KEEP=1 stop
			exit 1
		fi
		sleep 0.1
	done
	echo "export SLURM_CONF=$CONF" >"$BASE/env"
	say "up in $BASE: slurmctld port $CTLD_PORT, slurmd port $SLURMD_PORT, $CPUS CPUs"
}

# The job steps' processes, when a job could not be cancelled (slurmctld
# gone): slurmstepd rewrites its command line, but it holds slurmd.log open.
leftover_steps() {
	{ find /proc/[0-9]*/fd -maxdepth 1 -lname "$BASE/log/slurmd.log" 2>/dev/null || true; } |
		cut -d/ -f3 | sort -u
}

# ROOT... and all their descendants
with_descendants() {
	ps -eo pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
		{ parent[$1] = $2 }
		END {
			do { more = 0
				for (c in parent) if (!(c in keep) && (parent[c] in keep)) { keep[c] = 1; more = 1 }
			} while (more)
			for (k in keep) printf "%s ", k
		}'
}

stop() {
	local i steps
	if [ -n "$(pid_of slurmctld)" ] && running "$(pid_of slurmctld)"; then
		scancel --partition=debug >/dev/null 2>&1 || true
		i=100
		while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -gt 0 ]; do
			sleep 0.1
			i=$((i - 1))
		done
	fi
	halt slurmd
	halt slurmctld
	halt munged
	steps=$(leftover_steps | tr '\n' ' ')
	if [ -n "${steps// /}" ]; then
		steps=$(with_descendants "$steps")
		say "killing what is left of the jobs: $steps"
		# shellcheck disable=SC2086
		kill -KILL $steps 2>/dev/null || true
	fi
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$BASE"; fi
}

case $CMD in
start) start ;;
stop) stop ;;
*) usage ;;
esac
