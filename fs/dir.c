/* Directory listings: built from an S3 listing or a manifest scan into one
 * arena per snapshot, then sorted and de-duplicated; a small LRU cache of
 * snapshots keyed by directory key. */
#include "common/compat.h"

#include "fs/dir.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/codec.h"
#include "manifest/manifest.h"
#include "remote/s3.h"

#define NAME_MAX_BYTES 255

/* While building, names and ETags are offsets into the arena. */
struct raw_entry {
	size_t name_off;
	uint32_t name_len;
	bool is_dir;
	uint8_t status;
	uint64_t size;
	int64_t mtime;
	size_t etag_off;
};

struct dir_listing {
	atomic_uint refs;
	uint64_t time_ms;
	size_t n;
	struct dir_entry *e;
	char *arena; /* owned */
};

struct builder {
	struct buf arena;
	struct raw_entry *v;
	size_t n, cap;
	size_t skipped;
	char example[128];
};

static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len > NAME_MAX_BYTES)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	return memchr(name, '\0', len) == NULL && memchr(name, '/', len) == NULL;
}

static void add_entry(struct builder *b, const char *name, size_t len, bool is_dir, uint64_t size,
		      int64_t mtime, const char *etag, uint8_t status)
{
	if (!name_ok(name, len)) {
		if (b->skipped++ == 0) {
			size_t k = len < sizeof(b->example) - 1 ? len : sizeof(b->example) - 1;
			for (size_t i = 0; i < k; i++)
				b->example[i] = name[i] ? name[i] : '?';
			b->example[k] = '\0';
		}
		return;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
	}
	struct raw_entry *r = &b->v[b->n++];
	r->name_off = b->arena.len;
	r->name_len = (uint32_t)len;
	buf_add(&b->arena, name, len);
	buf_addch(&b->arena, '\0');
	r->is_dir = is_dir;
	r->status = status;
	r->size = size;
	r->mtime = mtime;
	r->etag_off = b->arena.len;
	buf_adds(&b->arena, etag ? etag : "");
	buf_addch(&b->arena, '\0');
}

static int raw_cmp(const void *pa, const void *pb, void *ctx)
{
	const char *sort_arena = ctx;
	const struct raw_entry *a = pa, *b = pb;
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(sort_arena + a->name_off, sort_arena + b->name_off, n);
	if (c)
		return c;
	if (a->name_len != b->name_len)
		return a->name_len < b->name_len ? -1 : 1;
	return (int)b->is_dir - (int)a->is_dir; /* the directory first */
}

static struct dir_listing *finish(struct builder *b, const char *dir_key)
{
	if (b->skipped) {
		/* Warn for the first directories only: a listing is repeated every
		 * time the cache expires, and the same names would be logged again. */
		static atomic_uint warned;
		unsigned n = atomic_fetch_add(&warned, 1);
		int lvl = n < 100 ? LOG_WARN : LOG_DEBUG;
		log_at(lvl,
		       "skipped %zu name(s) under '%s' that cannot be file names (e.g. '%s')%s",
		       b->skipped, dir_key, b->example,
		       n == 99 ? "; further ones are logged at debug level" : "");
	}
	struct dir_listing *l = xcalloc(1, sizeof(*l));
	atomic_init(&l->refs, 1);
	l->time_ms = now_mono_ms();
	size_t alen;
	l->arena = buf_detach(&b->arena, &alen);
	if (b->n > 1)
		qsort_r(b->v, b->n, sizeof(*b->v), raw_cmp, l->arena);
	l->e = xcalloc(b->n ? b->n : 1, sizeof(*l->e));
	for (size_t i = 0; i < b->n; i++) {
		const struct raw_entry *r = &b->v[i];
		if (l->n) {
			struct dir_entry *p = &l->e[l->n - 1];
			if (p->name_len == r->name_len &&
			    !memcmp(p->name, l->arena + r->name_off, r->name_len))
				continue; /* a file shadowed by the directory sorted before it */
		}
		struct dir_entry *e = &l->e[l->n++];
		e->name = l->arena + r->name_off;
		e->name_len = r->name_len;
		e->is_dir = r->is_dir;
		e->status = r->status;
		e->size = r->size;
		e->mtime = r->mtime;
		e->etag = l->arena + r->etag_off;
	}
	free(b->v);
	return l;
}

static int list_s3(const struct dir_source *src, const char *dir_key, struct builder *b,
		   struct dth_err *err)
{
	struct buf prefix = BUF_INIT;
	buf_adds(&prefix, src->prefix ? src->prefix : "");
	buf_adds(&prefix, dir_key);
	struct s3_list_opts o = {.prefix = prefix.len ? prefix.data : NULL,
				 .delimiter = "/",
				 .max_keys = src->page_size};
	struct s3_lister *ls = s3_lister_new(src->s3, src->bucket, &o);
	const struct s3_list_entry *e;
	int rc;
	while ((rc = s3_lister_next(ls, &e, err)) == 1) {
		if (e->key_len < prefix.len)
			continue;
		const char *rest = e->key + prefix.len;
		size_t len = e->key_len - prefix.len;
		if (len == 0)
			continue; /* this directory's own folder marker */
		if (e->is_prefix) {
			add_entry(b, rest, len - 1, true, 0, 0, NULL, 0);
		} else if (rest[len - 1] == '/') {
			add_entry(b, rest, len - 1, true, 0, e->last_modified, NULL, 0);
		} else {
			add_entry(b, rest, len, false, e->size, e->last_modified, e->etag, 0);
		}
	}
	s3_lister_free(ls);
	buf_release(&prefix);
	return rc < 0 ? rc : 0;
}

static int list_manifest(const struct dir_source *src, const char *dir_key, struct builder *b,
			 struct dth_err *err)
{
	struct buf prefix = BUF_INIT, start = BUF_INIT;
	buf_adds(&prefix, src->mf_prefix ? src->mf_prefix : "");
	buf_adds(&prefix, dir_key);
	int rc = 0;
	bool more = true;
	while (more) {
		struct manifest_cursor *c = manifest_cursor_new(src->m, MANIFEST_OBJECTS, src->task,
								prefix.len ? prefix.data : NULL,
								start.len ? start.data : NULL, err);
		if (!c)
			return err->code ? err->code : -EIO;
		more = false;
		const char *key;
		size_t klen;
		struct obj_record rec;
		while ((rc = manifest_cursor_next(c, &key, &klen, &rec)) == 1) {
			if (rec.status == OBJ_DELETED || klen <= prefix.len)
				continue;
			const char *rest = key + prefix.len;
			size_t len = klen - prefix.len;
			const char *slash = memchr(rest, '/', len);
			if (!slash) {
				add_entry(b, rest, len, false, rec.size, rec.last_modified,
					  rec.etag, rec.status);
				continue;
			}
			/* A subdirectory: one entry, then skip every key under it by
			 * restarting at the first key after "name/" ('/' + 1 is '0'). */
			size_t nlen = (size_t)(slash - rest);
			add_entry(b, rest, nlen, true, 0,
				  slash + 1 == rest + len ? rec.last_modified : 0, NULL, 0);
			buf_reset(&start);
			buf_add(&start, key, prefix.len + nlen);
			buf_addch(&start, '0');
			more = true;
			break;
		}
		manifest_cursor_free(c);
		if (rc < 0) {
			err_set(err, rc, "reading the manifest: %s", strerror(-rc));
			break;
		}
	}
	buf_release(&prefix);
	buf_release(&start);
	return rc < 0 ? rc : 0;
}

int dir_list(const struct dir_source *src, const char *dir_key, struct dir_listing **out,
	     struct dth_err *err)
{
	struct builder b;
	memset(&b, 0, sizeof(b));
	buf_init(&b.arena);
	*out = NULL;
	int rc = src->m ? list_manifest(src, dir_key, &b, err) : list_s3(src, dir_key, &b, err);
	if (rc < 0) {
		buf_release(&b.arena);
		free(b.v);
		return rc;
	}
	*out = finish(&b, dir_key);
	return 0;
}

void dir_listing_ref(struct dir_listing *l)
{
	atomic_fetch_add(&l->refs, 1);
}

void dir_listing_unref(struct dir_listing *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	free(l->e);
	free(l->arena);
	free(l);
}

size_t dir_listing_count(const struct dir_listing *l)
{
	return l->n;
}

const struct dir_entry *dir_listing_at(const struct dir_listing *l, size_t i)
{
	return i < l->n ? &l->e[i] : NULL;
}

const struct dir_entry *dir_listing_find(const struct dir_listing *l, const char *name,
					 size_t name_len)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dir_entry *e = &l->e[mid];
		size_t n = e->name_len < name_len ? e->name_len : name_len;
		int c = memcmp(e->name, name, n);
		if (!c && e->name_len != name_len)
			c = e->name_len < name_len ? -1 : 1;
		if (!c)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

uint64_t dir_listing_time(const struct dir_listing *l)
{
	return l->time_ms;
}

/* ---- the cache ---- */

struct slot {
	char *key;	       /* owned */
	struct dir_listing *l; /* one reference, NULL while loading */
	bool loading;
	struct slot *next; /* hash chain */
	struct slot *prev_lru, *next_lru;
};

struct dir_cache {
	const struct dir_source *src;
	uint64_t ttl_ms;
	size_t max_entries;
	pthread_mutex_t mu;
	pthread_cond_t loaded;
	struct slot **tab;
	size_t nbuckets;
	size_t held;	 /* entries over cached listings */
	struct slot lru; /* sentinel: next_lru is the most recent */
	uint64_t listings;
};

static size_t key_bucket(const struct dir_cache *c, const char *key)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = key; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	return h & (c->nbuckets - 1);
}

static void lru_unlink(struct slot *s)
{
	if (s->prev_lru) {
		s->prev_lru->next_lru = s->next_lru;
		s->next_lru->prev_lru = s->prev_lru;
	}
	s->prev_lru = s->next_lru = NULL;
}

static void lru_front(struct dir_cache *c, struct slot *s)
{
	lru_unlink(s);
	s->next_lru = c->lru.next_lru;
	s->prev_lru = &c->lru;
	c->lru.next_lru->prev_lru = s;
	c->lru.next_lru = s;
}

static struct slot *slot_find(struct dir_cache *c, const char *key)
{
	for (struct slot *s = c->tab[key_bucket(c, key)]; s; s = s->next)
		if (!strcmp(s->key, key))
			return s;
	return NULL;
}

static void slot_remove(struct dir_cache *c, struct slot *s)
{
	for (struct slot **p = &c->tab[key_bucket(c, s->key)]; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	lru_unlink(s);
	if (s->l) {
		c->held -= s->l->n;
		dir_listing_unref(s->l);
	}
	free(s->key);
	free(s);
}

struct dir_cache *dir_cache_new(const struct dir_source *src, uint64_t ttl_ms, size_t max_entries)
{
	struct dir_cache *c = xcalloc(1, sizeof(*c));
	c->src = src;
	c->ttl_ms = ttl_ms;
	c->max_entries = max_entries ? max_entries : 1000000;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->loaded, NULL);
	c->nbuckets = 256;
	c->tab = xcalloc(c->nbuckets, sizeof(*c->tab));
	c->lru.next_lru = c->lru.prev_lru = &c->lru;
	return c;
}

void dir_cache_free(struct dir_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		for (struct slot *s = c->tab[i], *nx; s; s = nx) {
			nx = s->next;
			if (s->l)
				dir_listing_unref(s->l);
			free(s->key);
			free(s);
		}
	}
	free(c->tab);
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static bool fresh(const struct dir_cache *c, const struct slot *s, uint64_t now)
{
	return s->l && now - s->l->time_ms < c->ttl_ms;
}

struct dir_listing *dir_cache_peek(struct dir_cache *c, const char *dir_key)
{
	struct dir_listing *l = NULL;
	if (!c->ttl_ms)
		return NULL;
	pthread_mutex_lock(&c->mu);
	struct slot *s = slot_find(c, dir_key);
	if (s && fresh(c, s, now_mono_ms())) {
		l = s->l;
		dir_listing_ref(l);
		lru_front(c, s);
	}
	pthread_mutex_unlock(&c->mu);
	return l;
}

int dir_cache_get(struct dir_cache *c, const char *dir_key, struct dir_listing **out,
		  struct dth_err *err)
{
	*out = NULL;
	if (!c->ttl_ms) {
		pthread_mutex_lock(&c->mu);
		c->listings++;
		pthread_mutex_unlock(&c->mu);
		return dir_list(c->src, dir_key, out, err);
	}
	pthread_mutex_lock(&c->mu);
	struct slot *s;
	for (;;) {
		s = slot_find(c, dir_key);
		if (!s || !s->loading)
			break;
		pthread_cond_wait(&c->loaded, &c->mu);
	}
	if (s && fresh(c, s, now_mono_ms())) {
		*out = s->l;
		dir_listing_ref(s->l);
		lru_front(c, s);
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->key = xstrdup(dir_key);
		size_t b = key_bucket(c, dir_key);
		s->next = c->tab[b];
		c->tab[b] = s;
	}
	s->loading = true;
	c->listings++;
	pthread_mutex_unlock(&c->mu);

	struct dir_listing *l = NULL;
	int rc = dir_list(c->src, dir_key, &l, err);

	pthread_mutex_lock(&c->mu);
	s->loading = false;
	if (rc == 0) {
		if (s->l) {
			c->held -= s->l->n;
			dir_listing_unref(s->l);
		}
		s->l = l;
		dir_listing_ref(l);
		c->held += l->n;
		lru_front(c, s);
		*out = l;
		/* Drop least recently used listings beyond the bound (never this one). */
		while (c->held > c->max_entries && c->lru.prev_lru != s &&
		       !c->lru.prev_lru->loading)
			slot_remove(c, c->lru.prev_lru);
	} else if (!s->l) {
		slot_remove(c, s);
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

uint64_t dir_cache_listings(struct dir_cache *c)
{
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->listings;
	pthread_mutex_unlock(&c->mu);
	return n;
}
