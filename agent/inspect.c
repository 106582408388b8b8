/* dth manifest diff and verify over an objects cursor (see inspect.h).
 *
 * Verify's threads share one mutex: it guards the ring (head, n, done), the
 * counters and the on_problem calls. The feeder blocks while the ring is full,
 * the workers while it is empty and not done; done is set once, after the
 * last record, and the workers drain the ring before they leave. */
#include "common/compat.h"

#include "agent/inspect.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent/planner.h"
#include "manifest/manifest.h"
#include "remote/exec.h"
#include "remote/s3.h"

/* ---- diff ---- */

/* One decision, counted and reported as a dry run of sync_run does. */
static void diff_item(const struct sync_opts *o, const struct plan *p, struct sync_result *res)
{
	const char *why = sync_key_unusable(p->key, p->key_len);
	if (why && (sync_action_is_copy(p->action) || p->action == SYNC_DELETE)) {
		res->failed++;
		if (o->on_failure)
			o->on_failure(o->on_failure_ctx, p->key, p->key_len, why);
		return;
	}
	res->planned[p->action]++;
	if (o->on_item) {
		struct sync_item it = {p->action, p->key, p->key_len,
				       p->in_src ? p->size : p->rec.size,
				       p->in_src ? p->etag : p->rec.etag};
		o->on_item(o->on_item_ctx, &it);
	}
	if (p->action == SYNC_SKIP || p->action == SYNC_ADOPT)
		res->skipped++;
	if (p->action == SYNC_ADOPT)
		res->adopted++;
	if (p->action == SYNC_DELETE)
		res->deleted++;
}

/* Whether to list the destination: asked for, and the bucket is there. */
static int diff_destination(const struct sync_opts *o, bool *list, struct sync_result *res,
			    struct dth_err *err)
{
	*list = false;
	if (!o->merge_destination)
		return 0;
	int rc = s3_head_bucket(o->dst, o->dst_bucket, err);
	if (rc == -ENOENT) { /* not there yet: everything is new */
		err_clear(err);
		return 0;
	}
	if (rc) {
		err_prefix(err, "destination %s:%s", s3_client_name(o->dst), o->dst_bucket);
		res->unreachable = true;
		return rc;
	}
	*list = true;
	return 0;
}

static struct s3_lister *lister_of(struct s3_client *c, const char *bucket, const char *prefix)
{
	struct s3_list_opts lo;
	memset(&lo, 0, sizeof(lo));
	lo.prefix = prefix[0] ? prefix : NULL;
	return s3_lister_new(c, bucket, &lo);
}

int inspect_diff(const struct sync_opts *o, struct manifest_cursor *cur, struct sync_result *res,
		 struct dth_err *err)
{
	memset(res, 0, sizeof(*res));
	err_clear(err);
	double t0 = now_mono();
	bool list_dst;
	int rc = diff_destination(o, &list_dst, res, err);
	if (rc)
		return rc;
	struct s3_lister *ls = lister_of(o->src, o->src_bucket, o->src_prefix);
	struct s3_lister *ld = list_dst ? lister_of(o->dst, o->dst_bucket, o->dst_prefix) : NULL;
	struct planner *pl =
	    planner_new(ls, o->src_prefix, cur, ld, o->dst_prefix, o->filter, o->delete_gone);
	struct plan p;
	while ((rc = planner_next(pl, &p, err)) == 1) {
		if (o->stop && *o->stop) {
			rc = err_set(err, -EINTR, "interrupted");
			break;
		}
		diff_item(o, &p, res);
	}
	if (rc < 0 && !planner_listed(pl) && (exec_unreachable(rc) || rc == -ENOENT))
		res->unreachable = true;
	planner_free(pl);
	s3_lister_free(ls);
	s3_lister_free(ld);
	res->seconds = now_mono() - t0;
	return rc < 0 ? rc : 0;
}

/* ---- verify ---- */

struct vjob {
	char *key;
	size_t len;
	struct obj_record rec;
};

struct verify {
	const struct inspect_verify_opts *o;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vjob *ring;
	size_t cap, head, n;
	bool done;
	struct inspect_verify_result *res;
};

static void verify_report(struct verify *v, const struct vjob *j, const char *problem)
{
	pthread_mutex_lock(&v->lock);
	v->res->bad++;
	if (v->o->on_problem)
		v->o->on_problem(v->o->ctx, j->key, j->len, problem);
	pthread_mutex_unlock(&v->lock);
}

/* Compare one record with the destination's HEAD. */
static void verify_one(struct verify *v, const struct vjob *j, struct buf *key)
{
	const struct inspect_verify_opts *o = v->o;
	buf_reset(key);
	buf_adds(key, o->prefix);
	buf_add(key, j->key, j->len);
	struct s3_object_head h;
	struct dth_err err;
	err_clear(&err);
	int rc = s3_head_object(o->dst, o->bucket, key->data, 0, &h, &err);
	char problem[640];
	if (rc == -ENOENT) {
		verify_report(v, j, "missing at the destination");
		return;
	}
	if (rc) {
		msg_snprintf(problem, sizeof(problem), "cannot check: %.600s", err.message);
		verify_report(v, j, problem);
		return;
	}
	if (h.size != j->rec.size) {
		msg_snprintf(problem, sizeof(problem),
			     "size differs (destination %llu, recorded %llu)",
			     (unsigned long long)h.size, (unsigned long long)j->rec.size);
		verify_report(v, j, problem);
	} else if (j->rec.dest_etag[0] && strcmp(h.etag, j->rec.dest_etag)) {
		msg_snprintf(problem, sizeof(problem),
			     "etag differs (destination %.128s, recorded %.128s)", h.etag,
			     j->rec.dest_etag);
		verify_report(v, j, problem);
	} else {
		pthread_mutex_lock(&v->lock);
		v->res->ok++;
		pthread_mutex_unlock(&v->lock);
	}
	s3_object_head_release(&h);
}

static void *verify_main(void *arg)
{
	struct verify *v = arg;
	struct buf key = BUF_INIT;
	for (;;) {
		pthread_mutex_lock(&v->lock);
		while (!v->n && !v->done)
			pthread_cond_wait(&v->cond, &v->lock);
		if (!v->n) {
			pthread_mutex_unlock(&v->lock);
			break;
		}
		struct vjob j = v->ring[v->head];
		v->head = (v->head + 1) % v->cap;
		v->n--;
		pthread_cond_broadcast(&v->cond);
		pthread_mutex_unlock(&v->lock);
		verify_one(v, &j, &key);
		free(j.key);
	}
	buf_release(&key);
	return NULL;
}

/* Queue every done record of cur; 0 at its end or its error. */
static int verify_feed(struct verify *v, struct manifest_cursor *cur)
{
	const char *key;
	size_t len;
	struct obj_record r;
	int rc;
	while ((rc = manifest_cursor_next(cur, &key, &len, &r)) == 1) {
		if (r.status != OBJ_DONE)
			continue;
		pthread_mutex_lock(&v->lock);
		while (v->n == v->cap)
			pthread_cond_wait(&v->cond, &v->lock);
		struct vjob *j = &v->ring[(v->head + v->n) % v->cap];
		j->key = xstrndup(key, len);
		j->len = len;
		j->rec = r;
		v->n++;
		v->res->checked++;
		pthread_cond_broadcast(&v->cond);
		pthread_mutex_unlock(&v->lock);
	}
	return rc;
}

int inspect_verify(const struct inspect_verify_opts *o, struct manifest_cursor *cur,
		   struct inspect_verify_result *res, struct dth_err *err)
{
	memset(res, 0, sizeof(*res));
	err_clear(err);
	struct verify v;
	memset(&v, 0, sizeof(v));
	v.o = o;
	v.res = res;
	pthread_mutex_init(&v.lock, NULL);
	pthread_cond_init(&v.cond, NULL);
	v.cap = 1024;
	v.ring = xcalloc(v.cap, sizeof(struct vjob));
	unsigned nt = o->concurrency ? o->concurrency : 16;
	pthread_t *th = xcalloc(nt, sizeof(pthread_t));
	unsigned started = 0;
	for (unsigned i = 0; i < nt; i++)
		if (pthread_create(&th[started], NULL, verify_main, &v) == 0)
			started++;
	int rc;
	if (!started) /* nobody would take the jobs: the ring would fill and block */
		rc = err_set(err, -EAGAIN, "cannot start any verify thread");
	else if ((rc = verify_feed(&v, cur)) < 0)
		err_set(err, rc, "reading the manifest: %s", strerror(-rc));
	pthread_mutex_lock(&v.lock);
	v.done = true;
	pthread_cond_broadcast(&v.cond);
	pthread_mutex_unlock(&v.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	free(v.ring);
	pthread_mutex_destroy(&v.lock);
	pthread_cond_destroy(&v.cond);
	return rc < 0 ? rc : 0;
}
