/* Event intake: the change events a task is sent, checked against the task
 * and kept in the manifest's journal (manifest_events_*) before the sender is
 * answered; and the batches that event runs take from the journal.
 *
 * An event names a key to look at again (an object key relative to the
 * task's source prefix, or "repo:tag" for an image task), not a state: the run
 * asks the source for the key's current state, so events that come late,
 * twice or out of order cannot put an old state in place of a newer one. */
#ifndef DTH_INTAKE_H
#define DTH_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/sync.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

struct taskdef;
struct manifest;

struct evring;

struct intake_counts {
	unsigned accepted; /* kept for a run */
	unsigned ignored;  /* other buckets, prefixes, repositories, tags or event types */
	uint64_t backlog;  /* events of the task waiting after this call */
	uint64_t last_seq; /* the journal sequence of the last event kept (0: none) */
	bool rescan;	   /* a full rescan was asked for (events were lost) */
	/* With a kick (sqspoll.h, dirwatch.h): the events the source noted since
	 * its last kick (evring.h), which the kick may take (evring_move); NULL
	 * when none. intake_add leaves it NULL. */
	struct evring *seen;
};

/* Where intake_add notes the events it sees (evring.h): into ring, as coming
 * from source (a literal: "webhook", "registry", "sqs"). */
struct intake_note {
	struct evring *ring;
	const char *source;
};

/* Parse body (S3 event notifications for an S3 task, docker-registry
 * notifications for an image task) and keep the events that concern def (its
 * source bucket and prefix; its repositories and tag regex) in the journal of
 * task, in one transaction. 0 with c filled; -EINVAL/-EFBIG for a body that
 * is not such a notification (err says why; nothing kept); or the manifest's
 * error. def must have passed taskdef_check. With note (may be NULL): once
 * the events are kept, each accepted or ignored one is noted; a refused body
 * is noted as one event (kind "body"); after the manifest's error nothing
 * is (the sender sends it again). */
int intake_add(const struct taskdef *def, struct manifest *m, uint32_t task, const char *body,
	       size_t len, const struct intake_note *note, struct intake_counts *c,
	       struct dth_err *err) WUR;

/* The keys of body that concern def, without keeping anything: fn is called
 * for each (relative object key, or "repo:tag"; valid for the call), *ignored
 * counts the others. Returns how many were given (>= 0) or what intake_add
 * would refuse the body for (err set), or fn's negative errno. */
int intake_parse(const struct taskdef *def, const char *body, size_t len,
		 int (*fn)(void *ctx, const char *key, size_t len), void *ctx, unsigned *ignored,
		 struct dth_err *err) WUR;

/* Events taken for one run: each key once (NUL-terminated in store), the
 * highest sequence read, and whether a rescan was asked for. */
struct intake_batch {
	struct sync_key *keys; /* owned; point into store */
	size_t n;
	uint64_t upto; /* acknowledge up to this sequence when the run is done */
	bool rescan;
	struct buf store;
};

/* The oldest max events of task. 0 (b->n may be 0) or a negative errno. */
int intake_batch_take(struct manifest *m, uint32_t task, unsigned max, struct intake_batch *b) WUR;
void intake_batch_release(struct intake_batch *b);

#endif
