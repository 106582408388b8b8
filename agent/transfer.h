/* Transfer workers: a pool of threads that copies objects (one GET + one PUT
 * for small ones, server-side CopyObject on the same endpoint) and multipart
 * uploads whose parts are jobs of their own, so one large object keeps every
 * worker busy. Parts are taken before new objects. Each worker owns one body
 * buffer, so memory is concurrency x max(part size, threshold). Results go to
 * the manifest writer; an interrupted multipart upload is recorded so the
 * next run resumes it. */
#ifndef DTH_TRANSFER_H
#define DTH_TRANSFER_H

#include "agent/planner.h"
#include "agent/sync.h"
#include "common/err.h"
#include "common/util.h"

struct manifest_writer;
struct transfer;

/* o, w and prog are borrowed and must outlive the pool. Starts the threads. */
struct transfer *transfer_new(const struct sync_opts *o, struct manifest_writer *w,
			      struct sync_progress *prog);
/* Queue a copy (SYNC_COPY_*) or a delete (SYNC_DELETE) of the planned key;
 * blocks while the queue is full. What it needs from p is copied. */
int transfer_submit(struct transfer *t, const struct plan *p) WUR;
/* Wait until every queued job is done and stop the threads. Returns 0, or the
 * first fatal error (the manifest could not be written) with err set. */
int transfer_finish(struct transfer *t, struct dth_err *err) WUR;
void transfer_free(struct transfer *t);

/* Compute the part layout of a multipart copy of an object of size bytes:
 * the part size (from part_size, doubled until the object fits in 10,000
 * parts) and the part count. Exposed for tests. */
void transfer_layout(uint64_t size, uint64_t part_size, uint64_t *out_part_size,
		     uint32_t *out_count);

/* Part sizes that split an object of size bytes into exactly nparts parts,
 * the likeliest first (round MiB sizes that tools use by default, then other
 * whole MiB, then whole MB). For sources that do not answer HEAD
 * ?partNumber=1. Returns how many were written to out (at most max). */
unsigned transfer_guess_part_sizes(uint64_t size, unsigned nparts, uint64_t *out, unsigned max);

#endif
