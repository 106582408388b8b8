/* Transfer workers: a pool of threads that copies objects and multipart
 * uploads whose parts are jobs of their own, so one large object keeps every
 * worker busy. Parts are taken before new objects, and objects before small
 * ones (under TRANSFER_SMALL_MAX) and deletes, which small lanes (workers that
 * take nothing else, sync_opts.small_concurrency) also serve, so more of those
 * round-trip-bound jobs are in flight than large ones. Results go to the manifest
 * writer; an interrupted multipart upload is recorded so the next run resumes
 * it.
 *
 * How an object is copied:
 *  - on one endpoint, server-side (CopyObject, or UploadPartCopy by parts);
 *  - a source in parts ("md5-N" ETag): in the same parts, whose sizes are read
 *    from the source and checked (layout.h), so the destination's ETag equals
 *    the source's; an impossible layout is not repeated;
 *  - a single-part source up to 5 GiB: as one PUT (keeping its ETag), with
 *    Content-MD5 from its MD5 ETag so the server checks the bytes; streamed
 *    from the GET when larger than a worker's share of the memory budget;
 *  - otherwise (larger, no MD5 ETag, or parallel_parts): in dth's own parts.
 * An object is recorded done only when the destination's answer agrees with
 * what was expected (its ETag is the MD5 sent, or the source's ETag); else it
 * fails with the reason and the next run copies it again.
 *
 * What is hashed here (the proof of the bytes):
 *  - a single PUT of a source with an MD5 ETag: nothing; that ETag is the
 *    Content-MD5, so the destination refuses other bytes (BadDigest);
 *  - a copy in the source's layout: nothing; the parts go without
 *    Content-MD5 (and unsigned), and before CompleteMultipartUpload the ETag
 *    that the destination's own MD5s of the parts make must be the source's
 *    "md5-N" (after it, the final ETag too), so a part changed on the way, or
 *    a wrong guessed layout, never becomes the destination's object;
 *  - everything else (no MD5 ETag, dth's own layout, SSE-KMS asked for, a
 *    destination whose answers said its ETags are no MD5s): every byte, sent
 *    with Content-MD5 and checked against the answer, and a single-part
 *    source's whole MD5 against its ETag.
 * A copy that was not hashed here and that the servers' answers do not prove
 * (refused, or an ETag that differs) is copied once more, hashed here where
 * that can help; only when that fails too is it recorded as failed.
 *
 * Memory: body buffers come from one budget (budget.h, memory_limit); a body
 * or part over a worker's share is streamed through a small ring (pipe.h). */
#ifndef DTH_TRANSFER_H
#define DTH_TRANSFER_H

#include "agent/planner.h"
#include "agent/sync.h"
#include "common/err.h"
#include "common/util.h"

struct manifest_writer;
struct transfer;

#define TRANSFER_DEFAULT_MEMORY (512ULL << 20)
/* Objects under this size, and deletes, are "small": one or two requests
 * each, whose round trips bound them, so more of them are in flight at once
 * (sync_opts.small_concurrency) on workers that take nothing else. */
#define TRANSFER_SMALL_MAX (1ULL << 20)

/* o, w and prog are borrowed and must outlive the pool. Starts the threads. */
struct transfer *transfer_new(const struct sync_opts *o, struct manifest_writer *w,
			      struct sync_progress *prog);
/* Queue a copy (SYNC_COPY_*) or a delete (SYNC_DELETE) of the planned key;
 * blocks while the queue is full. What it needs from p is copied. */
int transfer_submit(struct transfer *t, const struct plan *p) WUR;
/* Wait until every queued job is done and stop the threads. Returns 0, or the
 * first fatal error (the manifest could not be written) with err set. */
int transfer_finish(struct transfer *t, struct dth_err *err) WUR;
/* The most body bytes held at once so far. */
uint64_t transfer_memory_peak(struct transfer *t);
/* The most small-object lanes allowed (they start as small jobs come), and
 * the fewest the gate let in at once after throttled answers (lanes when
 * never throttled; both 0 without small lanes). */
void transfer_small_lanes(struct transfer *t, unsigned *lanes, unsigned *low);
void transfer_free(struct transfer *t);

#endif
