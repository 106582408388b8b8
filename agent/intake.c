/* Event intake (intake.h). */
#include "common/compat.h"

#include "agent/intake.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "agent/evparse.h"
#include "agent/evring.h"
#include "agent/shard.h"
#include "agent/taskdef.h"
#include "common/log.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"

/* What an event must match to concern a task. */
struct scope {
	const struct taskdef *def;
	int (*fn)(void *ctx, const char *key, size_t len); /* NULL: collect in keys */
	void *ctx;
	char *bucket, *prefix;	 /* S3 */
	struct shard_bind shard; /* S3 with a shard that resolves: its range */
	bool have_shard;
	regex_t tags; /* image: the tag regex, anchored */
	bool have_tags;
	struct buf keys; /* accepted keys: size_t length + bytes, repeated */
	unsigned accepted, ignored;
	struct evring *seen; /* NULL, or where each event is noted */
	const char *source;
};

static const char *kind_name(enum evparse_kind k)
{
	return k == EV_REMOVED ? "delete" : k == EV_PUSHED ? "push" : "put";
}

/* Note an event (when the caller asked for notes). */
static void note(struct scope *sc, const char *kind, const char *key, size_t len,
		 const char *outcome, const char *why)
{
	if (sc->seen)
		evring_add(sc->seen, sc->source, kind, key, len, outcome, why);
}

static bool scope_image(const struct scope *sc, const char *repo, const char *tag)
{
	const struct taskdef *d = sc->def;
	bool listed = d->all, explicit_tag = false;
	size_t rl = strlen(repo);
	for (size_t i = 0; i < d->n_images && !explicit_tag; i++) {
		const char *im = d->images[i];
		if (strncmp(im, repo, rl))
			continue;
		if (!im[rl])
			listed = true;
		else if (im[rl] == ':' && !strcmp(im + rl + 1, tag))
			explicit_tag = true;
	}
	if (explicit_tag)
		return true;
	return listed && (!sc->have_tags || regexec(&sc->tags, tag, 0, NULL, 0) == 0);
}

/* An event that concerns the task: to fn, or kept in sc->keys as size_t
 * key length, key, int64 size (-1: no hint), NUL-terminated ETag. */
static int keep(struct scope *sc, const char *k, size_t len, int64_t size, const char *etag)
{
	sc->accepted++;
	if (sc->fn)
		return sc->fn(sc->ctx, k, len);
	buf_add(&sc->keys, &len, sizeof(len));
	buf_add(&sc->keys, k, len);
	buf_add(&sc->keys, &size, sizeof(size));
	buf_adds(&sc->keys, etag);
	buf_addch(&sc->keys, '\0');
	return 0;
}

/* Why an S3 event does not concern the task, or NULL when it does. */
static const char *s3_out_of_scope(const struct scope *sc, const struct evparse_item *it)
{
	size_t pl = strlen(sc->prefix);
	if (strcmp(it->bucket, sc->bucket))
		return "another bucket";
	if (it->key_len <= pl || memcmp(it->key, sc->prefix, pl))
		return "outside the prefix";
	if (it->key_len - pl > MANIFEST_EVENT_KEY_MAX)
		return "a key too long for the journal";
	if (sc->have_shard &&
	    !shard_range_holds(sc->shard.lo, sc->shard.hi, it->key + pl, it->key_len - pl))
		return "another shard's key";
	return NULL;
}

static int on_item(void *ctx, const struct evparse_item *it)
{
	struct scope *sc = ctx;
	const char *kind = kind_name(it->kind);
	if (it->kind == EV_PUSHED) {
		struct buf ref = BUF_INIT;
		buf_addf(&ref, "%s:%s", it->bucket, it->key);
		bool mine = scope_image(sc, it->bucket, it->key);
		note(sc, kind, ref.data, ref.len, mine ? "accepted" : "ignored",
		     mine ? NULL : "not one of the task's images or tags");
		int rc = mine ? keep(sc, ref.data, ref.len, -1, "") : 0;
		sc->ignored += !mine;
		buf_release(&ref);
		return rc;
	}
	size_t pl = strlen(sc->prefix);
	const char *why = s3_out_of_scope(sc, it);
	note(sc, kind, it->key, it->key_len, why ? "ignored" : "accepted", why);
	if (why) {
		sc->ignored++;
		return 0;
	}
	return keep(sc, it->key + pl, it->key_len - pl, it->etag[0] ? it->size : -1, it->etag);
}

static int scope_init(struct scope *sc, const struct taskdef *def, struct dth_err *err)
{
	memset(sc, 0, sizeof(*sc));
	sc->def = def;
	buf_init(&sc->keys);
	if (def->kind == TASKDEF_S3) {
		char *remote = NULL;
		int rc = remote_parse_path(def->source, &remote, &sc->bucket, &sc->prefix, err);
		free(remote);
		/* A shard that does not resolve (no index in the environment, a
		 * plan that cannot be read) lets every key through: the run
		 * then fails and says why. */
		struct dth_err e;
		if (!rc && def->shard &&
		    !shard_bind_open(def->shard, def->shard_plan, &sc->shard, &e))
			sc->have_shard = true;
		return rc;
	}
	if (def->tags) {
		struct buf re = BUF_INIT;
		buf_addf(&re, "^(%s)$", def->tags);
		sc->have_tags = regcomp(&sc->tags, re.data, REG_EXTENDED | REG_NOSUB) == 0;
		buf_release(&re);
	}
	return 0;
}

static void scope_release(struct scope *sc)
{
	free(sc->bucket);
	free(sc->prefix);
	if (sc->have_shard)
		shard_bind_release(&sc->shard);
	if (sc->have_tags)
		regfree(&sc->tags);
	buf_release(&sc->keys);
}

/* The accepted keys as journal events (pointing into sc->keys). */
static struct manifest_event *scope_events(struct scope *sc)
{
	struct manifest_event *ev = xcalloc(sc->accepted ? sc->accepted : 1, sizeof(*ev));
	size_t off = 0;
	for (unsigned i = 0; i < sc->accepted; i++) {
		size_t len;
		int64_t size;
		memcpy(&len, sc->keys.data + off, sizeof(len));
		off += sizeof(len);
		ev[i].key = sc->keys.data + off;
		ev[i].key_len = len;
		off += len;
		memcpy(&size, sc->keys.data + off, sizeof(size));
		off += sizeof(size);
		const char *etag = sc->keys.data + off;
		off += strlen(etag) + 1;
		ev[i].has_hint = size >= 0 && *etag;
		ev[i].size = ev[i].has_hint ? (uint64_t)size : 0;
		str_copy_fit(ev[i].etag, ev[i].has_hint ? etag : "", sizeof(ev[i].etag));
	}
	return ev;
}

/* Parse body into sc (initialised here; fn may be NULL: keys collected;
 * seen may be NULL: nothing noted). */
static int parse(struct scope *sc, const struct taskdef *def, const char *body, size_t len,
		 int (*fn)(void *ctx, const char *key, size_t len), void *ctx, unsigned *ignored,
		 struct evring *seen, const char *source, struct dth_err *err)
{
	int rc = scope_init(sc, def, err);
	sc->fn = fn;
	sc->ctx = ctx;
	sc->seen = seen;
	sc->source = source;
	if (!rc)
		rc = def->kind == TASKDEF_S3
			 ? evparse_s3(body, len, on_item, sc, ignored, err)
			 : evparse_registry(body, len, on_item, sc, ignored, err);
	return rc;
}

int intake_parse(const struct taskdef *def, const char *body, size_t len,
		 int (*fn)(void *ctx, const char *key, size_t len), void *ctx, unsigned *ignored,
		 struct dth_err *err)
{
	err_clear(err);
	struct scope sc;
	unsigned other = 0;
	int rc = parse(&sc, def, body, len, fn, ctx, &other, NULL, NULL, err);
	if (ignored)
		*ignored = sc.ignored + other;
	rc = rc < 0 ? rc : (int)sc.accepted;
	scope_release(&sc);
	return rc;
}

int intake_add(const struct taskdef *def, struct manifest *m, uint32_t task, const char *body,
	       size_t len, const struct intake_note *note, struct intake_counts *c,
	       struct dth_err *err)
{
	memset(c, 0, sizeof(*c));
	err_clear(err);
	struct scope sc;
	unsigned ignored = 0;
	struct evring *seen = note ? evring_new() : NULL; /* moved to note once kept */
	int rc =
	    parse(&sc, def, body, len, NULL, NULL, &ignored, seen, note ? note->source : NULL, err);
	if (rc >= 0 && sc.accepted) {
		struct manifest_event *ev = scope_events(&sc);
		struct manifest_events_state st;
		rc = manifest_events_add(m, task, ev, sc.accepted, false, &st);
		free(ev);
		if (rc) {
			err_set(err, rc, "keeping the events: %s", strerror(-rc));
		} else {
			c->backlog = st.count;
			c->last_seq = st.next - 1;
		}
	}
	if (rc >= 0) {
		c->accepted = sc.accepted;
		c->ignored = sc.ignored + ignored;
		rc = 0;
	}
	if (note && !rc)
		evring_move(note->ring, seen);
	else if (note && (rc == -EINVAL || rc == -EFBIG))
		evring_add(note->ring, note->source, "body", "", 0, "refused", err->message);
	evring_free(seen);
	scope_release(&sc);
	return rc;
}

/* ---- batches ---- */

static int cmp_key(const void *a, const void *b)
{
	const struct sync_key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Where one taken event's strings are in the batch's store. */
struct slot {
	size_t off, len, etag_off;
	bool hint;
	uint64_t size;
};

struct take {
	struct intake_batch *b;
	struct buf slots; /* struct slot per event */
};

static int take_one(void *ctx, const struct manifest_event *ev)
{
	struct take *t = ctx;
	struct buf *st = &t->b->store;
	struct slot sl = {st->len, ev->key_len, 0, ev->has_hint, ev->size};
	buf_add(st, ev->key, ev->key_len);
	buf_addch(st, '\0');
	sl.etag_off = st->len;
	buf_adds(st, ev->has_hint ? ev->etag : "");
	buf_addch(st, '\0');
	buf_add(&t->slots, &sl, sizeof(sl));
	t->b->upto = ev->seq;
	return 0;
}

/* Sort and keep each key once; a key named twice keeps no hint (which of
 * its events is the newest is not known: the source is asked). */
static size_t dedupe(struct sync_key *k, size_t n)
{
	qsort(k, n, sizeof(*k), cmp_key);
	size_t u = 0;
	for (size_t i = 0; i < n; i++) {
		if (u && !cmp_key(&k[u - 1], &k[i])) {
			k[u - 1].hint = false;
			continue;
		}
		k[u++] = k[i];
	}
	return u;
}

int intake_batch_take(struct manifest *m, uint32_t task, unsigned max, struct intake_batch *b)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->store);
	struct manifest_events_state st;
	int rc = manifest_events_state(m, task, &st);
	if (rc)
		return rc;
	b->rescan = st.rescan;
	struct take t = {b, BUF_INIT};
	int n = manifest_events_page(m, task, max, take_one, &t);
	if (n < 0) {
		buf_release(&t.slots);
		return n;
	}
	b->keys = xcalloc(n ? (size_t)n : 1, sizeof(*b->keys));
	for (int i = 0; i < n; i++) {
		struct slot sl;
		memcpy(&sl, t.slots.data + (size_t)i * sizeof(sl), sizeof(sl));
		b->keys[i] = (struct sync_key){b->store.data + sl.off, sl.len, sl.hint, sl.size,
					       b->store.data + sl.etag_off};
	}
	buf_release(&t.slots);
	b->n = dedupe(b->keys, (size_t)n);
	return 0;
}

void intake_batch_release(struct intake_batch *b)
{
	free(b->keys);
	buf_release(&b->store);
	memset(b, 0, sizeof(*b));
}
