/* What `dth manifest diff` and `verify` do, over any objects cursor: one
 * manifest's, or the merge of several shards' state directories
 * (manifest/multi.h), so a task recorded by N shards is inspected as if one
 * manifest held all its records.
 *
 * inspect_diff is the dry run of sync_run for a full run: the same planner
 * (merge-join of the source listing, the cursor and, when asked, the
 * destination listing) in one ordered stream, counting and reporting each
 * decision, copying and recording nothing. inspect_verify sends a HEAD per
 * done record to the destination from a pool of threads fed through a bounded
 * ring. Both hold a bounded number of records (the planner's one per stream,
 * the ring's slots), never one per object. */
#ifndef DTH_INSPECT_H
#define DTH_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/sync.h"
#include "common/err.h"
#include "common/util.h"

struct manifest_cursor;
struct s3_client;

/* Plan o's task (o->manifest and o->task_id are not used: the records come
 * from cur, borrowed) as a dry run of a full run would: o->on_item gets every
 * decision, o->on_failure every key no request can carry; res as sync_run's
 * (planned, failed, adopted, unreachable). 0 or a negative errno with err set;
 * a cursor error is the cursor's (a merged cursor's message is the caller's
 * to fetch: manifest_set_error). */
int inspect_diff(const struct sync_opts *o, struct manifest_cursor *cur, struct sync_result *res,
		 struct dth_err *err) WUR;

struct inspect_verify_opts {
	struct s3_client *dst; /* borrowed */
	const char *bucket;
	const char *prefix;   /* the destination prefix, "" for none */
	unsigned concurrency; /* HEADs in flight, 1..256 (0: 16) */
	/* Called for each object missing, different or not checkable, with what
	 * is wrong; serialised (one call at a time, from any thread). */
	void (*on_problem)(void *ctx, const char *key, size_t key_len, const char *problem);
	void *ctx;
};

struct inspect_verify_result {
	uint64_t checked; /* done records sent to be checked */
	uint64_t ok;
	uint64_t bad;
};

/* HEAD every done record of cur (borrowed) at the destination and compare
 * its size and, when recorded, its ETag. 0 when the whole cursor was read
 * (mismatches are in res), or a negative errno with err set (the cursor
 * failed, or no thread could start); res counts what was checked before. */
int inspect_verify(const struct inspect_verify_opts *o, struct manifest_cursor *cur,
		   struct inspect_verify_result *res, struct dth_err *err) WUR;

#endif
