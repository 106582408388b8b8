/* Sharding one task over N independent processes (dth sync --shard I/N).
 *
 * The key space of a task (keys relative to the source prefix, compared as
 * byte strings) is cut by N-1 cut keys c1 < c2 < ... < c(N-1) into N ranges:
 * shard 0 holds the keys k <= c1, shard i the keys c(i) < k <= c(i+1), the
 * last shard the keys k > c(N-1). Every key falls in exactly one range,
 * whatever its bytes (the empty key is in shard 0; a key equal to a cut key
 * is in the shard below it), so the ranges cover the key space with no gap
 * and no overlap. A shard lists its range with StartAfter = its low cut and
 * stops at its high cut.
 *
 * Where the cuts come from (the same inputs give every shard the same cuts):
 *  - a plan file (--shard-plan FILE): N-1 cut keys, one a line,
 *    percent-encoded, after the header line "dth-shard-plan 1 N"; made by
 *    `dth sync --make-shard-plan N --shard-plan FILE` (keyplan.h) from the
 *    task's sample or one listing, so the ranges hold about equal numbers of
 *    keys and start at the source's listing pages;
 *  - without a plan, the even cut: the cut keys are the N-1 two-byte
 *    strings that divide the printable-ASCII space (bytes 0x20..0x7e, two
 *    base-95 digits) evenly. It needs no listing, no state and no
 *    coordination, and is balanced only when the keys are spread over that
 *    alphabet (random or hashed names); keys below 0x20 go to shard 0, keys
 *    from 0x7f up to the last shard.
 * Cut keys never hold a NUL byte (no S3 request could carry one) and are at
 * most SHARD_KEY_MAX bytes.
 *
 * The shard index I and count N come from "I/N", or from the scheduler's
 * environment with "auto" / "auto/N" (shard_spec_parse says which
 * variables). */
#ifndef DTH_SHARD_H
#define DTH_SHARD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#define SHARD_COUNT_MAX	   4096
#define SHARD_KEY_MAX	   2048
#define SHARD_PLAN_VERSION 1

struct shard_spec {
	unsigned index; /* 0 <= index < count */
	unsigned count; /* 1..SHARD_COUNT_MAX */
};

/* Check the form of a shard setting without resolving "auto" ("I/N",
 * "auto", "auto/N"). 0 or -EINVAL with err set. */
int shard_spec_check(const char *text, struct dth_err *err) WUR;

/* Resolve text to an index and count. "auto" takes the index from, in this
 * order: SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN, with the count
 * SLURM_ARRAY_TASK_COUNT), JOB_COMPLETION_INDEX (a Kubernetes Indexed Job),
 * AWS_BATCH_JOB_ARRAY_INDEX, DTH_SHARD_INDEX; the count from "auto/N", else
 * the scheduler's, else DTH_SHARD_COUNT. getenv_fn reads a variable (NULL:
 * getenv). 0, or -EINVAL with err saying what is missing or wrong. */
int shard_spec_parse(const char *text, const char *(*getenv_fn)(const char *name),
		     struct shard_spec *out, struct dth_err *err) WUR;

/* A plan: the count and its N-1 cut keys. Opaque; free with shard_plan_free. */
struct shard_plan;

/* The even cut into n (1..SHARD_COUNT_MAX) shards. */
struct shard_plan *shard_plan_even(unsigned n);
/* A plan of n shards from n-1 cut keys (copied): each 1..SHARD_KEY_MAX bytes,
 * without NUL, strictly increasing. NULL with err set when they are not. */
struct shard_plan *shard_plan_from_cuts(unsigned n, const char *const *keys, const size_t *lens,
					struct dth_err *err);
/* Read a plan file; NULL with err set (which line is wrong and why). */
struct shard_plan *shard_plan_load(const char *path, struct dth_err *err);
/* Write p to path (through a temporary file renamed over it). */
int shard_plan_save(const struct shard_plan *p, const char *path, struct dth_err *err) WUR;
/* The file's text (appended to out). */
void shard_plan_format(const struct shard_plan *p, struct buf *out);
void shard_plan_free(struct shard_plan *p);

unsigned shard_plan_count(const struct shard_plan *p);
/* Whether p is the even cut (no plan file). */
bool shard_plan_is_even(const struct shard_plan *p);
/* Shard i's bounds: *lo exclusive (NULL for shard 0), *hi inclusive (NULL
 * for the last); NUL-terminated, valid while p lives. */
void shard_plan_range(const struct shard_plan *p, unsigned i, const char **lo, const char **hi);
/* The shard holding key (len bytes of any content). */
unsigned shard_plan_find(const struct shard_plan *p, const char *key, size_t len);
/* A short text naming the plan's cuts: "even" or "plan:" and 16 hex digits
 * of a hash of the cut keys (for the task's record). */
void shard_plan_id(const struct shard_plan *p, char out[32]);

/* A run's shard: the spec resolved, its plan and its bounds. */
struct shard_bind {
	struct shard_spec spec;
	struct shard_plan *plan; /* owned */
	const char *lo, *hi;	 /* shard_plan_range of spec.index, valid while plan lives */
};
/* Resolve spec_text (shard_spec_parse, with getenv) and load plan_path (NULL:
 * the even cut); a plan of another count than the spec's is refused. 0 with b
 * filled (release it with shard_bind_release), or -EINVAL with err set. */
int shard_bind_open(const char *spec_text, const char *plan_path, struct shard_bind *b,
		    struct dth_err *err) WUR;
void shard_bind_release(struct shard_bind *b);
/* Whether the relative key is in the range (lo, hi] (NULL: no bound), the
 * range of shard_plan_range. */
bool shard_range_holds(const char *lo, const char *hi, const char *key, size_t len);
/* The text recorded with a task for b: "I/N PLAN-ID" (shard_plan_id). */
void shard_bind_note(const struct shard_bind *b, struct buf *out);

/* The bounds of b as the text kept with the task (note "bounds"): two lines,
 * each "-" (no bound) or "=" and the percent-encoded key; and back (lo, hi
 * reset and filled; *has_lo, *has_hi set). -EPROTO for other text. */
void shard_bounds_format(const struct shard_bind *b, struct buf *out);
int shard_bounds_parse(const char *text, size_t len, struct buf *lo, bool *has_lo, struct buf *hi,
		       bool *has_hi) WUR;

/* Percent-encoding of the plan file: bytes outside A-Z a-z 0-9 - . _ ~ /
 * become %XX. Decoding refuses a malformed escape (-EINVAL). */
void shard_key_encode(const char *key, size_t len, struct buf *out);
int shard_key_decode(const char *text, size_t len, struct buf *out) WUR;

#endif
