/* The SQS poller of a task with events = sqs:QUEUE_URL: one thread that
 * long-polls the queue, keeps the keys of each S3 event notification in the
 * task's event journal (intake.h), and deletes a message from the queue only
 * once the run that acted on its keys has ended well (the journal no longer
 * holds its events) and none of them is recorded failed. Until then the
 * message stays in flight, its visibility timeout (the queue's) extended by
 * as much again each time a third of it is left.
 *
 * At least once: a message whose work is not done (the agent was killed, a
 * key failed) is not deleted, so SQS delivers it again; a key that keeps
 * failing is recorded failed with its reason at each run, and the message is
 * left to the queue's redrive policy (maxReceiveCount, a dead-letter queue).
 * A message that is not an S3 event notification is logged, counted as
 * refused and left to the redrive policy too. Test events are deleted.
 *
 * Memory: at most SQSPOLL_INFLIGHT_MAX messages (and SQSPOLL_INFLIGHT_BYTES
 * of their bodies) are held; past that, no more are received until some are
 * done. Stopping cancels the long poll in progress (http_engine_abort). */
#ifndef DTH_SQSPOLL_H
#define DTH_SQSPOLL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct taskdef;
struct config;
struct manifest;
struct intake_counts;
struct sqspoll;

#define SQSPOLL_INFLIGHT_MAX   1000
#define SQSPOLL_INFLIGHT_BYTES (16u << 20)
#define SQSPOLL_WAIT_S	       10

struct sqspoll_opts {
	const struct taskdef *def; /* copied; its events are sqs:QUEUE_URL */
	const struct config *cfg;  /* borrowed: the source remote's credentials and TLS */
	struct manifest *m;	   /* borrowed; must outlive the poller */
	uint32_t task;		   /* the task's manifest id */
	unsigned visibility_s;	   /* 0: the queue's VisibilityTimeout */
	/* Called from the poller's thread (ctx borrowed): events were kept
	 * (counts), or bodies refused (c->accepted 0, refused > 0); c->seen
	 * holds the events noted since the last call (source "sqs"), emptied
	 * after it. */
	void (*kick)(void *ctx, const struct intake_counts *c, unsigned refused);
	/* Whether to take messages now (false while the task is stopped). */
	bool (*active)(void *ctx);
	void *ctx;
};

/* Start the thread. NULL with err set when the queue URL, the source remote or
 * its credentials cannot be used. */
struct sqspoll *sqspoll_start(const struct sqspoll_opts *o, struct dth_err *err);
/* Ask it to stop (returns at once), then free it (waits for the thread). The
 * messages in flight are left: SQS delivers them again. */
void sqspoll_signal(struct sqspoll *p);
void sqspoll_free(struct sqspoll *p);
/* The ctx it was started with. */
void *sqspoll_ctx(const struct sqspoll *p);
/* Requests sent to SQS so far. */
uint64_t sqspoll_requests(const struct sqspoll *p);

#endif
