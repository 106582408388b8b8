/* A task's recent change events for the console: the last EVRING_CAP events
 * it was sent or saw (webhook, SQS, inotify), each with when, where from,
 * what kind, its key, and what became of it, so memory is bounded whatever
 * the traffic.
 *
 *   {"events": [{"t", "source", "kind", "key", "outcome", "reason"?}, ...]}
 *
 * newest first. source: "webhook", "registry" (a registry's webhook), "sqs",
 * "inotify"; kind: "put", "delete", "push" (a tagged image), "attrib" (a
 * file's times or mode), "rescan" (a full rescan asked for), "body" (a
 * refused body); outcome: "accepted", "ignored" (not the task's: another
 * bucket, prefix, shard, repository or tag), "refused" (not a notification).
 * Keys that are not UTF-8 are shown in their printable form (\xNN), cut to
 * EVRING_KEY_MAX bytes.
 *
 * Not thread-safe: one thread fills a ring of its own and moves it into the
 * task's under the service's lock (svc_events.c). */
#ifndef DTH_EVRING_H
#define DTH_EVRING_H

#include <jansson.h>
#include <stddef.h>

#define EVRING_CAP	  100
#define EVRING_KEY_MAX	  1024
#define EVRING_REASON_MAX 256

struct evring;

struct evring *evring_new(void);
void evring_free(struct evring *r);
/* Note an event at the current time. source, kind and outcome are static
 * strings (literals); key is len bytes of any content; reason may be NULL.
 * Past EVRING_CAP the oldest goes. */
void evring_add(struct evring *r, const char *source, const char *kind, const char *key, size_t len,
		const char *outcome, const char *reason);
/* Append every event of from to to, oldest first; from is left empty. */
void evring_move(struct evring *to, struct evring *from);
void evring_clear(struct evring *r);
size_t evring_count(const struct evring *r);
/* The document above; r may be NULL (no event). New reference. */
json_t *evring_json(const struct evring *r);

#endif
