/* Several manifests read as one (see multi.h).
 *
 * The merge keeps, per directory, the record its cursor gave last (the head);
 * the heap orders the directories by their head's key. next() first advances
 * the directory whose head it returned the call before (its key stayed valid
 * until now: a cursor's key lives until its next call), then pops the
 * smallest head. Invariants: every directory is in the heap at most once,
 * exactly when its cursor has a head not yet returned; heads are compared
 * bytewise, as LMDB orders the keys, so the merged stream is strictly
 * increasing unless two heads are equal, which is the overlap error. */
#include "common/compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest/manifest.h"
#include "manifest/manifest_i.h"
#include "manifest/multi.h"

struct set_dir {
	char *dir;
	struct manifest *m;
	uint32_t task;
	struct task_record rec;
};

struct manifest_set {
	struct set_dir *d;
	size_t n;
	struct dth_err err; /* the last failure of a merged cursor */
};

static void set_dir_release(struct set_dir *d)
{
	manifest_free(d->m);
	free(d->dir);
}

void manifest_set_free(struct manifest_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		set_dir_release(&s->d[i]);
	free(s->d);
	free(s);
}

/* Open one directory, checking it before LMDB sees it; 0 or -errno with err. */
static int set_dir_open(struct set_dir *d, const char *dir, const char *task, struct stat *st,
			struct dth_err *err)
{
	d->dir = xstrdup(dir);
	if (stat(dir, st))
		return err_set(err, -errno, "state directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st->st_mode))
		return err_set(err, -ENOTDIR, "state directory %s is not a directory", dir);
	struct dth_err e;
	err_clear(&e);
	d->m = manifest_open(dir, MANIFEST_RDONLY, &e);
	if (!d->m)
		return err_set(err, e.code ? e.code : -EIO, "%s is not a dth manifest: %s", dir,
			       e.message);
	int rc = manifest_task_find(d->m, task, &d->task, &d->rec);
	if (rc == -ENOENT)
		return err_set(err, rc, "no task called '%s' in %s", task, dir);
	if (rc)
		return err_set(err, rc, "reading the tasks of %s: %s", dir, strerror(-rc));
	return 0;
}

struct manifest_set *manifest_set_open(const char *const *dirs, size_t n, const char *task,
				       struct dth_err *err)
{
	err_clear(err);
	if (!n || !task) {
		err_set(err, -EINVAL, "no state directory or no task");
		return NULL;
	}
	struct manifest_set *s = xcalloc(1, sizeof(*s));
	s->d = xcalloc(n, sizeof(*s->d));
	struct stat *st = xcalloc(n, sizeof(*st));
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		s->n = i + 1;
		rc = set_dir_open(&s->d[i], dirs[i], task, &st[i], err);
		for (size_t j = 0; j < i && !rc; j++)
			if (st[j].st_dev == st[i].st_dev && st[j].st_ino == st[i].st_ino)
				rc = err_set(err, -EINVAL, "state directory %s is given twice (%s)",
					     dirs[i], dirs[j]);
		const struct task_record *a = &s->d[0].rec, *b = &s->d[i].rec;
		if (!rc && (strcmp(a->src, b->src) || strcmp(a->dst, b->dst)))
			rc = err_set(err, -EINVAL,
				     "task %s copies %s -> %s in %s but %s -> %s in %s: not "
				     "shards of one task",
				     task, b->src, b->dst, dirs[i], a->src, a->dst, dirs[0]);
	}
	free(st);
	if (rc) {
		manifest_set_free(s);
		return NULL;
	}
	return s;
}

size_t manifest_set_size(const struct manifest_set *s)
{
	return s->n;
}

const char *manifest_set_dir(const struct manifest_set *s, size_t i)
{
	return i < s->n ? s->d[i].dir : NULL;
}

struct manifest *manifest_set_manifest(const struct manifest_set *s, size_t i, uint32_t *task_id)
{
	if (i >= s->n)
		return NULL;
	if (task_id)
		*task_id = s->d[i].task;
	return s->d[i].m;
}

const struct dth_err *manifest_set_error(const struct manifest_set *s)
{
	return &s->err;
}

void manifest_set_task(const struct manifest_set *s, struct task_record *out)
{
	*out = s->d[0].rec;
	for (size_t i = 1; i < s->n; i++) {
		const struct task_record *r = &s->d[i].rec;
		if (r->runs > out->runs)
			out->runs = r->runs;
		if (r->last_run_start > out->last_run_start)
			out->last_run_start = r->last_run_start;
		if (r->last_run_end > out->last_run_end)
			out->last_run_end = r->last_run_end;
		if (!r->dest_listed)
			out->dest_listed = 0;
		if (strcmp(r->state, out->state))
			str_copy_fit(out->state, "mixed", sizeof(out->state));
	}
}

int manifest_set_stats(struct manifest_set *s, struct task_stats *out, struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < s->n; i++) {
		struct task_stats st;
		int rc = manifest_stats_get(s->d[i].m, s->d[i].task, &st);
		if (rc == -ENOENT)
			continue;
		if (rc)
			return err_set(err, rc, "reading the stats in %s: %s", s->d[i].dir,
				       strerror(-rc));
		for (int k = 0; k < OBJ__COUNT; k++) {
			out->count[k] += st.count[k];
			out->bytes[k] += st.bytes[k];
		}
	}
	return 0;
}

static void key_show(struct buf *out, const char *key, size_t len);

int manifest_set_obj_get(struct manifest_set *s, const char *key, size_t key_len,
			 struct obj_record *out, size_t *which, struct dth_err *err)
{
	err_clear(err);
	bool found = false;
	for (size_t i = 0; i < s->n; i++) {
		struct obj_record r;
		int rc = manifest_obj_get(s->d[i].m, s->d[i].task, key, key_len, &r);
		if (rc == -ENOENT)
			continue;
		if (rc)
			return err_set(err, rc, "reading the manifest in %s: %s", s->d[i].dir,
				       strerror(-rc));
		if (found) {
			struct buf shown = BUF_INIT;
			key_show(&shown, key, key_len);
			rc = err_set(err, -EEXIST,
				     "key '%s' is recorded in both %s and %s: the shard plan "
				     "gave it to two shards",
				     buf_str(&shown), s->d[*which].dir, s->d[i].dir);
			buf_release(&shown);
			return rc;
		}
		found = true;
		*out = r;
		*which = i;
	}
	return found ? 0 : err_set(err, -ENOENT, "no record");
}

/* ---- the merge ---- */

struct merge_head {
	struct manifest_cursor *c;
	const char *key; /* the cursor's, valid until its next call */
	size_t len;
	struct obj_record rec;
};

struct merge {
	struct manifest_set *s;
	struct merge_head *h; /* one per directory */
	size_t *heap;	      /* directory indexes, smallest head first */
	size_t nheap;
	size_t advance; /* directory to advance before the next pop; s->n: none */
	bool primed;
	int failed; /* a sticky error */
};

static int head_cmp(const struct merge *g, size_t a, size_t b)
{
	return bytes_order(g->h[a].key, g->h[a].len, g->h[b].key, g->h[b].len);
}

static void heap_swap(struct merge *g, size_t i, size_t j)
{
	size_t t = g->heap[i];
	g->heap[i] = g->heap[j];
	g->heap[j] = t;
}

static void heap_push(struct merge *g, size_t d)
{
	size_t i = g->nheap++;
	g->heap[i] = d;
	while (i && head_cmp(g, g->heap[i], g->heap[(i - 1) / 2]) < 0) {
		heap_swap(g, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static size_t heap_pop(struct merge *g)
{
	size_t top = g->heap[0];
	g->heap[0] = g->heap[--g->nheap];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < g->nheap && head_cmp(g, g->heap[l], g->heap[m]) < 0)
			m = l;
		if (r < g->nheap && head_cmp(g, g->heap[r], g->heap[m]) < 0)
			m = r;
		if (m == i)
			break;
		heap_swap(g, i, m);
		i = m;
	}
	return top;
}

/* Take directory d's next record into the heap (or drop d at its end). */
static int merge_advance(struct merge *g, size_t d)
{
	struct merge_head *h = &g->h[d];
	int rc = manifest_cursor_next(h->c, &h->key, &h->len, &h->rec);
	if (rc < 0)
		return err_set(&g->s->err, rc, "reading the manifest in %s: %s", g->s->d[d].dir,
			       strerror(-rc));
	if (rc == 1)
		heap_push(g, d);
	return 0;
}

/* A key for a message (appended to out): bytes that are not printable UTF-8
 * as \xHH, cut at 300 bytes with "...". */
static void key_show(struct buf *out, const char *key, size_t len)
{
	buf_add_printable(out, key, len > 300 ? 300 : len);
	if (len > 300)
		buf_adds(out, "...");
}

static int merge_next(void *ctx, const char **key, size_t *key_len, struct obj_record *rec)
{
	struct merge *g = ctx;
	if (g->failed)
		return g->failed;
	int rc = 0;
	if (!g->primed) {
		g->primed = true;
		for (size_t d = 0; d < g->s->n && !rc; d++)
			rc = merge_advance(g, d);
	} else if (g->advance < g->s->n) {
		rc = merge_advance(g, g->advance);
	}
	g->advance = g->s->n;
	if (rc)
		return g->failed = rc;
	if (!g->nheap)
		return 0;
	size_t d = heap_pop(g);
	if (g->nheap && head_cmp(g, d, g->heap[0]) == 0) {
		struct buf shown = BUF_INIT;
		key_show(&shown, g->h[d].key, g->h[d].len);
		size_t o = g->heap[0];
		const char *a = g->s->d[d < o ? d : o].dir, *b = g->s->d[d < o ? o : d].dir;
		g->failed = err_set(&g->s->err, -EEXIST,
				    "key '%s' is recorded in both %s and %s: the shard plan gave "
				    "it to two shards",
				    buf_str(&shown), a, b);
		buf_release(&shown);
		return g->failed;
	}
	*key = g->h[d].key;
	*key_len = g->h[d].len;
	*rec = g->h[d].rec;
	g->advance = d;
	return 1;
}

static void merge_free(void *ctx)
{
	struct merge *g = ctx;
	for (size_t d = 0; d < g->s->n; d++)
		manifest_cursor_free(g->h[d].c);
	free(g->h);
	free(g->heap);
	free(g);
}

struct manifest_cursor *manifest_set_cursor(struct manifest_set *s, const char *prefix,
					    struct dth_err *err)
{
	err_clear(err);
	err_clear(&s->err);
	if (s->n == 1)
		return manifest_cursor_new(s->d[0].m, MANIFEST_OBJECTS, s->d[0].task, prefix, NULL,
					   err);
	struct merge *g = xcalloc(1, sizeof(*g));
	g->s = s;
	g->h = xcalloc(s->n, sizeof(*g->h));
	g->heap = xcalloc(s->n, sizeof(*g->heap));
	g->advance = s->n;
	for (size_t d = 0; d < s->n; d++) {
		g->h[d].c = manifest_cursor_new(s->d[d].m, MANIFEST_OBJECTS, s->d[d].task, prefix,
						NULL, err);
		if (!g->h[d].c) {
			err_prefix(err, "%s", s->d[d].dir);
			merge_free(g);
			return NULL;
		}
	}
	return manifest_cursor_wrap(merge_next, merge_free, g);
}

/* ---- merging into one manifest ---- */

static int merge_write(struct manifest_set *s, struct manifest_writer *w, uint32_t id, uint64_t *n,
		       struct dth_err *err)
{
	struct manifest_cursor *c = manifest_set_cursor(s, NULL, err);
	if (!c)
		return err->code ? err->code : -EIO;
	const char *key;
	size_t len;
	struct obj_record r;
	int rc;
	while ((rc = manifest_cursor_next(c, &key, &len, &r)) == 1) {
		if ((rc = manifest_writer_put_obj(w, id, key, len, &r))) {
			err_set(err, rc, "writing the merged manifest: %s", strerror(-rc));
			break;
		}
		(*n)++;
	}
	manifest_cursor_free(c);
	if (rc < 0 && !err->code)
		*err = s->err.code ? s->err : *err;
	if (rc < 0 && !err->code)
		err_set(err, rc, "reading the manifests: %s", strerror(-rc));
	return rc < 0 ? rc : 0;
}

int manifest_set_merge_into(struct manifest_set *s, const char *dir, uint64_t *n,
			    struct dth_err *err)
{
	err_clear(err);
	*n = 0;
	struct buf p = BUF_INIT;
	buf_addf(&p, "%s/data.mdb", dir);
	struct stat st;
	bool exists = stat(buf_str(&p), &st) == 0;
	buf_release(&p);
	if (exists)
		return err_set(err, -ENOTEMPTY,
			       "%s already holds a manifest: merge into a new directory", dir);
	struct manifest *m = manifest_open(dir, MANIFEST_RDWR, err);
	if (!m)
		return err->code ? err->code : -EIO;
	struct task_record t;
	manifest_set_task(s, &t);
	str_copy_fit(t.state, "idle", sizeof(t.state));
	uint32_t id;
	bool created;
	int rc = manifest_task_ensure(m, &t, &id, &created);
	if (rc) {
		err_set(err, rc, "creating task %s in %s: %s", t.name, dir, strerror(-rc));
		manifest_free(m);
		return rc;
	}
	struct manifest_writer *w = manifest_writer_new(m, 1024, 200, err);
	if (!w) {
		manifest_free(m);
		return err->code ? err->code : -EIO;
	}
	rc = merge_write(s, w, id, n, err);
	int wrc = manifest_writer_free(w);
	if (wrc && !rc)
		rc = err_set(err, wrc, "writing the merged manifest: %s", strerror(-wrc));
	manifest_free(m);
	return rc;
}
