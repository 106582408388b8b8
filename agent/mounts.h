/* The [mount NAME] sections the agent serves: each is a `dth mount -f`
 * child process (the agent's own binary), so one service browses and
 * mirrors, and a mount that fails (FUSE missing, the source unreachable, a
 * crash) never touches the tasks. A child that exits is started again with a
 * growing pause (1 s doubling to 5 min), but not after a usage or config error
 * (exit 2), which no retry mends; its state and last exit are in the agent's
 * info.
 *
 * Keys of a section: mountpoint (required), source (REMOTE:BUCKET[/PREFIX];
 * optional with manifest = true), manifest, task, and any other `dth mount`
 * option under its name (dir_cache_ttl = 30, cache_memory = 512M, options =
 * allow_other). The children get the agent's config file and state directory.
 * A reload (SIGHUP) applies the sections anew: a mount whose section is the
 * same keeps its child untouched, a removed or changed one is unmounted
 * (SIGTERM, SIGKILL after 10 s) and a changed or new one started once its
 * mountpoint is free; one that had given up is tried again. Thread-safe. */
#ifndef DTH_MOUNTS_H
#define DTH_MOUNTS_H

#include <jansson.h>

#include "common/err.h"
#include "common/util.h"

struct config;
struct mounts;

/* The mounts of cfg's [mount NAME] sections; exe is the dth binary to run,
 * config_path and state_dir are passed on (each may be NULL). A section
 * without a mountpoint is a mount in the error state. Nothing starts yet. */
struct mounts *mounts_new(const struct config *cfg, const char *exe, const char *config_path,
			  const char *state_dir);
/* Start the children and their supervisor thread. */
int mounts_start(struct mounts *ms, struct dth_err *err) WUR;
/* Apply the [mount NAME] sections of cfg (borrowed for the call) as a
 * reload does (see above); the children and the supervisor carry on. */
void mounts_reload(struct mounts *ms, const struct config *cfg);
/* Unmount: SIGTERM to every child, SIGKILL after timeout_s, then reap. */
void mounts_stop(struct mounts *ms, unsigned timeout_s);
void mounts_free(struct mounts *ms);
/* [{"name", "source", "mountpoint", "state": starting|mounted|failed|stopped,
 *   "pid", "restarts", "last_exit", "error"}] (new reference). */
json_t *mounts_json(struct mounts *ms);
/* How many there are. */
size_t mounts_count(struct mounts *ms);

#endif
