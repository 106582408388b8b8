/* One run of an S3 task: list the source, merge-join it with the manifest (and
 * the destination listing on a task's first run, or always with --delete),
 * copy what is new or changed with a pool of workers, record every result in
 * the manifest. Memory is bounded by the memory limit (bodies) and the
 * concurrency (connections, buffers), never by the number of objects. */
#ifndef DTH_SYNC_H
#define DTH_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "remote/s3.h"

struct manifest;
struct filter;
struct fairshare_client;

/* What the planner decided for one key. */
enum sync_action {
	SYNC_COPY_NEW = 0, /* not in the manifest */
	SYNC_COPY_CHANGED, /* size or ETag changed */
	SYNC_COPY_RETRY,   /* recorded but not done (failed, pending, copying) */
	SYNC_COPY_MISSING, /* done, but gone from the destination listing */
	SYNC_SKIP,	   /* unchanged */
	SYNC_ADOPT,	   /* already at the destination with the same size and ETag */
	SYNC_DELETE,	   /* gone from the source; removed at the destination (--delete) */
	SYNC_GONE,	   /* gone from the source; kept (no --delete) */
	SYNC__COUNT
};
/* "new", "changed", "retry", "missing", "skip", "adopt", "delete", "gone". */
const char *sync_action_name(enum sync_action a);
/* Whether the action copies the object (new, changed, retry, missing). */
bool sync_action_is_copy(enum sync_action a);
/* Why no S3 request can carry this key (a NUL byte) or the manifest cannot
 * hold it (too long), as a static string; NULL when it is usable. */
const char *sync_key_unusable(const char *key, size_t len);

struct sync_item {
	enum sync_action action;
	const char *key; /* relative to the source prefix; borrowed for the callback */
	size_t key_len;
	uint64_t size;
	const char *etag;
};

/* Counters, updated atomically while the run goes on (progress reads them). */
struct sync_progress {
	uint64_t listed;  /* source keys seen (after filters) */
	uint64_t planned; /* objects to copy found so far */
	uint64_t planned_bytes;
	uint64_t transferred; /* objects copied */
	uint64_t bytes;	      /* bytes of objects copied (whole objects) */
	uint64_t bytes_moved; /* bytes moved so far, parts included (for rates) */
	uint64_t bytes_sent;  /* body bytes of this run's accepted uploads (PUT, UploadPart) */
	uint64_t bytes_server_side; /* bytes the destination copied itself (CopyObject, ...) */
	uint64_t skipped;
	uint64_t failed;
	uint64_t deleted;
	bool listing_done;
};

/* A key given to a run (sync_opts.keys): len bytes of any content; with a
 * hint, what its event said the object is (size, ETag): when the record
 * differs, the copy starts from it without asking the source first (the
 * copy's GET, with If-Match, finds out when the object has changed since and
 * copies what is there then). Not for a server-side copy, whose answer gives
 * no Last-Modified for the record. */
struct sync_key {
	const char *key;
	size_t len;
	bool hint;
	uint64_t size;
	const char *etag;
};

struct sync_opts {
	/* endpoints (borrowed) */
	struct s3_client *src;
	struct s3_client *dst;
	const char *src_bucket;
	const char *src_prefix; /* "" for none */
	const char *dst_bucket;
	const char *dst_prefix;
	bool same_endpoint; /* copy server-side */
	/* state */
	struct manifest *manifest; /* borrowed, opened RDWR (RDONLY is enough with dry_run) */
	uint32_t task_id;
	bool merge_destination; /* list the destination too (first run, --delete) */
	/* transfer */
	unsigned concurrency;
	/* Objects under 1 MiB (TRANSFER_SMALL_MAX) and deletes in flight at once (0: 4 x
	 * concurrency, at most 256; less than concurrency counts as concurrency):
	 * each is a round trip or two, which latency rather than bandwidth bounds.
	 * Without fair only: an agent's tasks take the agent's worker slots. */
	unsigned small_concurrency;
	uint64_t multipart_threshold;
	uint64_t part_size;
	/* Bytes of object bodies all workers together may hold (0: the default,
	 * 512 MiB). A body or part larger than a worker's share (the limit over
	 * the concurrency) is streamed from the source to the destination. */
	uint64_t memory_limit;
	/* Copy single-part sources of multipart_threshold or more in parts of
	 * part_size, in parallel, instead of as one streamed PUT that keeps their
	 * ETag (false: keep the source's layout, the default). */
	bool parallel_parts;
	bool metadata; /* copy headers, user metadata and tags */
	const char *storage_class;
	const char *acl;
	const char *sse;
	const char *sse_kms_key_id;
	const struct filter *filter; /* NULL: everything */
	/* One shard's part of the key space (shard.h): relative keys in
	 * (shard_lo, shard_hi], either NULL for no bound (borrowed, without NUL).
	 * Only those keys are listed, recorded, copied and deleted; given keys
	 * outside it are ignored. */
	const char *shard_lo;
	const char *shard_hi;
	bool dry_run;
	/* Copy again only the objects the manifest records as failed (each asked
	 * for at the source with a HEAD; one the source no longer has is
	 * forgotten): no listing, no deletes. */
	bool retry_failed;
	bool delete_gone;
	/* Act on these keys only (relative to the source prefix; the runs that
	 * events start): no listing. Each key passing the filter is asked for at
	 * the source (HEAD) and compared with its record: copied when new,
	 * changed or not done; with merge_destination, one not recorded done is
	 * first asked for at the destination and adopted when it is there
	 * already (a run killed between the copy and its record). A key the
	 * source no longer has is deleted at the destination when delete_gone
	 * and it has a record (the brake below does not apply: one key at a
	 * time), else left. Keys are borrowed; NULL: a full run. */
	const struct sync_key *keys;
	size_t n_keys;
	/* The brake on deletes (--max-delete): at most max_delete objects (-1: not
	 * given), or at most max_delete_percent % of the objects the destination
	 * lists in the task's scope (-1: not given). Deletes wait until the whole
	 * listing has been read and checked, so the count is known first; over
	 * the limit, none is sent and the run fails. With neither given, a run
	 * whose source lists nothing deletes nothing (a mistyped prefix). */
	int64_t max_delete;
	int max_delete_percent;
	/* Called for every planned action (dry runs and `manifest diff` print
	 * them); may be NULL. Runs on the planner thread. */
	void (*on_item)(void *ctx, const struct sync_item *it);
	void *on_item_ctx;
	/* Called for every object that failed, with its reason (any thread). The
	 * key is len bytes of any content (it may hold a NUL). */
	void (*on_failure)(void *ctx, const char *key, size_t key_len, const char *reason);
	void *on_failure_ctx;
	/* Set by the caller (e.g. a signal handler) to stop early. */
	volatile int *stop;
	/* NULL, or the live counters of this run (zeroed by sync_run); else the
	 * process-wide ones of sync_progress_get. */
	struct sync_progress *progress;
	/* NULL, or the task's share of the agent's worker slots (fairshare.h):
	 * each transfer (an object, a part, a delete) then waits for a slot. */
	struct fairshare_client *fair;
};

struct sync_result {
	uint64_t transferred;
	uint64_t bytes;
	uint64_t skipped;
	uint64_t failed;
	uint64_t deleted;
	uint64_t adopted;
	double seconds;
	uint64_t planned[SYNC__COUNT]; /* decisions by action */
	uint64_t deletes_refused;      /* planned deletes withheld by the brake */
	uint64_t bytes_sent;	       /* see struct sync_progress */
	uint64_t bytes_server_side;
	uint64_t memory_peak;		       /* the most body bytes held at once */
	unsigned small_lanes, small_lanes_low; /* see transfer_small_lanes */
	bool unreachable; /* an endpoint could not be reached or refused the credentials */
};

/* The live counters of the run in progress (or last finished) in this
 * process, for runs without their own (sync_opts.progress). */
struct sync_progress *sync_progress_get(void);

/* Run once. Returns 0 when the run went through (objects may still have
 * failed: see res->failed), or a negative errno when it could not (listing
 * failed, manifest error); err says why. -EACCES/-ENOENT/-ETIMEDOUT etc. from
 * the first request to an endpoint mean it cannot be reached. */
int sync_run(const struct sync_opts *o, struct sync_result *res, struct dth_err *err) WUR;

#endif
