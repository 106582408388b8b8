/* A task's recent change events (see evring.h).
 *
 * Invariants: v[(head + i) % EVRING_CAP] is the i-th oldest of the n
 * entries; an entry's key and reason are owned (malloc'd), source, kind and
 * outcome are static. */
#include "common/compat.h"

#include "agent/evring.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"

struct entry {
	int64_t t;
	const char *source, *kind, *outcome;
	char *key, *reason;
};

struct evring {
	struct entry v[EVRING_CAP];
	size_t head, n;
};

struct evring *evring_new(void)
{
	return xcalloc(1, sizeof(struct evring));
}

static void entry_release(struct entry *e)
{
	free(e->key);
	free(e->reason);
	memset(e, 0, sizeof(*e));
}

void evring_clear(struct evring *r)
{
	for (size_t i = 0; i < r->n; i++)
		entry_release(&r->v[(r->head + i) % EVRING_CAP]);
	r->head = r->n = 0;
}

void evring_free(struct evring *r)
{
	if (!r)
		return;
	evring_clear(r);
	free(r);
}

size_t evring_count(const struct evring *r)
{
	return r ? r->n : 0;
}

/* Put e in (taking its strings), dropping the oldest when full. */
static void push(struct evring *r, const struct entry *e)
{
	if (r->n == EVRING_CAP) {
		entry_release(&r->v[r->head]);
		r->head = (r->head + 1) % EVRING_CAP;
		r->n--;
	}
	r->v[(r->head + r->n++) % EVRING_CAP] = *e;
}

/* len bytes of key, cut at a character's start within EVRING_KEY_MAX, as
 * text (buf_add_text). */
static char *key_text(const char *key, size_t len)
{
	if (len > EVRING_KEY_MAX) {
		len = EVRING_KEY_MAX;
		while (len && ((unsigned char)key[len] & 0xc0) == 0x80)
			len--;
	}
	struct buf b = BUF_INIT;
	buf_add_text(&b, key, len);
	return buf_detach(&b, NULL);
}

void evring_add(struct evring *r, const char *source, const char *kind, const char *key, size_t len,
		const char *outcome, const char *reason)
{
	struct entry e = {(int64_t)time(NULL), source, kind, outcome, key_text(key, len), NULL};
	if (reason) {
		e.reason = xmalloc(EVRING_REASON_MAX);
		str_copy_msg(e.reason, reason, EVRING_REASON_MAX);
	}
	push(r, &e);
}

void evring_move(struct evring *to, struct evring *from)
{
	for (size_t i = 0; i < from->n; i++)
		push(to, &from->v[(from->head + i) % EVRING_CAP]);
	memset(from, 0, sizeof(*from));
}

json_t *evring_json(const struct evring *r)
{
	json_t *a = json_array();
	for (size_t i = r ? r->n : 0; i-- > 0;) {
		const struct entry *e = &r->v[(r->head + i) % EVRING_CAP];
		json_t *o =
		    json_pack("{s:I, s:s, s:s, s:s, s:s}", "t", (json_int_t)e->t, "source",
			      e->source, "kind", e->kind, "key", e->key, "outcome", e->outcome);
		if (o && e->reason)
			json_object_set_new(o, "reason", json_string(e->reason));
		json_array_append_new(a, o);
	}
	return json_pack("{s:o}", "events", a);
}
