/* Notifications sent out for a task (its notify setting): to webhooks (a
 * JSON POST signed with X-Dth-Signature: sha256=HMAC of the body under the
 * task's notification secret, derived from the agent's token: token_derive
 * "notify:NAME") and to SNS topics (Publish, signed with the credentials of
 * notify_remote or the destination's remote).
 *
 * One thread delivers them from a bounded queue, every target of a message
 * retried with exponential backoff until it answers 2xx or the attempts run
 * out; posting never blocks and never waits for a delivery, so a slow or
 * dead receiver cannot hold up a transfer. A full queue drops its oldest
 * message (counted). Nothing secret is logged: a webhook is named by its
 * scheme and host only. */
#ifndef DTH_NOTIFY_H
#define DTH_NOTIFY_H

#include <jansson.h>
#include <stdint.h>

struct notifier;
struct taskdef;
struct config;
struct token;

struct notify_opts {
	const struct token *token; /* borrowed; outlives the notifier */
	unsigned queue_max;	   /* messages waiting at most; 0: 1000 */
	unsigned attempts;	   /* per target; 0: 6 */
	unsigned backoff_ms;	   /* first pause, doubled each time; 0: 1000 */
};

struct notifier *notifier_new(const struct notify_opts *o);
/* Stops the thread; what is still queued is dropped (counted). */
void notifier_free(struct notifier *n);

/* Queue event ("run_finished", "run_failed", "objects_failed",
 * "event_backlog") of def's task for each of its notify targets; payload is
 * stolen and gets "event", "task", "type" and "time" added. cfg (borrowed
 * for the call) gives SNS targets their remote. Never blocks. */
void notifier_post(struct notifier *n, const struct taskdef *def, const struct config *cfg,
		   const char *event, json_t *payload);

struct notify_counts {
	uint64_t sent;	  /* deliveries answered 2xx */
	uint64_t retried; /* attempts that failed and were tried again */
	uint64_t failed;  /* deliveries given up */
	uint64_t dropped; /* messages dropped from a full queue or at shutdown */
};
void notifier_counts(struct notifier *n, struct notify_counts *out);

#endif
