/* Making a shard plan (dth sync --make-shard-plan N --shard-plan FILE): the
 * N - 1 cut keys that give N shards about equal numbers of keys, each cut a
 * key that ended one of the source's own listing pages when the source has
 * at least a page a shard (so the shards' listings add up to about one full
 * listing), written to a plan file (shard.h).
 *
 * The keys come from the sample of the task's last complete listing (task
 * note "sample", keysample.h) when the state directory knows the task and
 * its sample has enough keys; otherwise from one listing of the source,
 * sampled as it goes (memory bounded by the sample, not the listing). A
 * source with fewer keys than shards leaves the last shards empty: their
 * cuts follow its last key. */
#ifndef DTH_SHARDPLAN_H
#define DTH_SHARDPLAN_H

#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct taskdef;
struct config;
struct manifest;

struct shardplan_info {
	const char *from; /* "sample" or "listing" (static) */
	uint64_t keys;	  /* keys the sample or the listing counted */
	uint64_t lists;	  /* LIST requests sent (0 from a sample) */
};

/* Make a plan of n (1..SHARD_COUNT_MAX) shards for def's source (its
 * task def->name looked up in m, which may be NULL) and write it to path.
 * 0 with info filled, or a negative errno with err set. */
int shardplan_make(const struct taskdef *def, const struct config *cfg, struct manifest *m,
		   unsigned n, const char *path, struct shardplan_info *info,
		   struct dth_err *err) WUR;

/* The shard bounds recorded with task (note "bounds", written by a shard's
 * first run): *lo and *hi point into lo_buf and hi_buf (NULL: no bound;
 * both NULL for a task that is not a shard's). 0, or a negative errno for a
 * note that cannot be read. */
struct buf;
int shard_task_bounds(struct manifest *m, uint32_t task, struct buf *lo_buf, struct buf *hi_buf,
		      const char **lo, const char **hi) WUR;

#endif
