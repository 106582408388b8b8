/* The planner: a merge-join of up to three key-ordered streams (the source
 * listing, the task's manifest records, and optionally the destination
 * listing) that decides per key what a run must do. It holds one record of
 * each stream at a time, so memory does not grow with the number of objects.
 * A stream whose keys are not strictly increasing is an error (-EPROTO): the
 * planner never guesses, because a wrong "gone" could delete data. */
#ifndef DTH_PLANNER_H
#define DTH_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/sync.h"
#include "common/err.h"
#include "common/util.h"
#include "manifest/codec.h"

struct s3_lister;
struct manifest_cursor;
struct filter;
struct planner;

struct plan {
	enum sync_action action;
	const char *key; /* relative key, valid until the next planner_next */
	size_t key_len;
	/* source side (valid when in_src) */
	bool in_src;
	uint64_t size;
	char etag[S3_ETAG_MAX];
	int64_t last_modified;
	/* manifest side */
	bool has_rec;
	struct obj_record rec;
	/* destination side (valid when in_dst) */
	bool in_dst;
	uint64_t dst_size;
	char dst_etag[S3_ETAG_MAX];
};

/* All arguments are borrowed and must outlive the planner. src_prefix and
 * dst_prefix are stripped from listed keys (every listed key starts with
 * them). cur and dst may be NULL. */
struct planner *planner_new(struct s3_lister *src, const char *src_prefix,
			    struct manifest_cursor *cur, struct s3_lister *dst,
			    const char *dst_prefix, const struct filter *filter, bool delete_gone);
void planner_free(struct planner *p);
/* Restrict the planner to relative keys in (lo, hi] (either may be NULL for
 * no bound). A stream is finished as soon as it reaches hi, so a listing
 * bounded there sends no request past it. Strings are copied. */
void planner_set_bounds(struct planner *p, const char *lo, const char *hi);
/* Call fn for every source entry inside the bounds, in listing order,
 * whether the filter wants it or not (key relative; page_last as
 * s3_list_entry's): to sample the listing (keysample.h). fn may be NULL. */
void planner_set_source_hook(struct planner *p,
			     void (*fn)(void *ctx, const char *key, size_t len, bool page_last),
			     void *ctx);
/* 1 with *out filled, 0 when every stream is exhausted, negative errno on
 * error (err filled). Keys that need nothing (a deleted record with nothing at
 * either side) produce no item. */
int planner_next(struct planner *p, struct plan *out, struct dth_err *err) WUR;
/* Source keys seen so far after filtering. */
uint64_t planner_listed(const struct planner *p);
/* Destination keys seen so far after filtering (0 without a destination listing). */
uint64_t planner_dst_listed(const struct planner *p);

#endif
