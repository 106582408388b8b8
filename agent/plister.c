#include "agent/plister.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct pentry {
	struct s3_list_entry e;
	char *key; /* owned */
};

struct range {
	struct plister *p;
	struct s3_lister *l; /* NULL for the single-stream case's lazy lister */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pentry *ring;
	size_t cap, head, n;
	bool done;
	bool cancel;
	int rc;
	struct dth_err err;
	char *end_before; /* exclusive upper bound, owned */
};

struct plister {
	struct range *r;
	unsigned nr;
	unsigned cur;
	struct pentry out; /* the entry handed out last (owned key) */
	struct s3_lister *single;
};

static void *range_main(void *arg)
{
	struct range *r = arg;
	for (;;) {
		const struct s3_list_entry *e;
		struct dth_err err;
		err_clear(&err);
		int rc = s3_lister_next(r->l, &e, &err);
		pthread_mutex_lock(&r->lock);
		if (rc <= 0 || r->cancel) {
			r->rc = rc < 0 ? rc : 0;
			if (rc < 0)
				r->err = err;
			r->done = true;
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			break;
		}
		while (r->n == r->cap && !r->cancel)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->cancel) {
			r->done = true;
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			break;
		}
		struct pentry *pe = &r->ring[(r->head + r->n) % r->cap];
		pe->e = *e;
		pe->key = xstrndup(e->key, e->key_len);
		pe->e.key = pe->key;
		r->n++;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

struct plister *plister_new(struct s3_client *c, const char *bucket, const char *prefix,
			    const char *const *splits, unsigned n, size_t max_buffered)
{
	struct plister *p = xcalloc(1, sizeof(*p));
	struct s3_list_opts lo;
	memset(&lo, 0, sizeof(lo));
	lo.prefix = prefix;
	if (n == 0) {
		p->single = s3_lister_new(c, bucket, &lo);
		return p;
	}
	if (max_buffered < 1000)
		max_buffered = 1000;
	p->nr = n + 1;
	p->r = xcalloc(p->nr, sizeof(struct range));
	for (unsigned i = 0; i < p->nr; i++) {
		struct range *r = &p->r[i];
		r->p = p;
		pthread_mutex_init(&r->lock, NULL);
		pthread_cond_init(&r->cond, NULL);
		r->cap = max_buffered;
		r->ring = xcalloc(r->cap, sizeof(struct pentry));
		struct s3_list_opts o = lo;
		if (i > 0)
			o.start_after = splits[i - 1];
		if (i < n) {
			/* Keys never hold NUL, so the first key after splits[i] is at or
			 * above splits[i] + "\x01": stop there to include splits[i]. */
			size_t len = strlen(splits[i]);
			r->end_before = xmalloc(len + 2);
			memcpy(r->end_before, splits[i], len);
			r->end_before[len] = '\x01';
			r->end_before[len + 1] = '\0';
			o.end_before = r->end_before;
		}
		r->l = s3_lister_new(c, bucket, &o);
		int prc = pthread_create(&r->thread, NULL, range_main, r);
		if (prc == 0) {
			r->started = true;
		} else {
			r->done = true;
			r->rc = err_set(&r->err, -prc, "cannot start a listing thread: %s",
					strerror(prc));
		}
	}
	return p;
}

int plister_next(struct plister *p, const struct s3_list_entry **e, struct dth_err *err)
{
	free(p->out.key);
	p->out.key = NULL;
	if (p->single)
		return s3_lister_next(p->single, e, err);
	while (p->cur < p->nr) {
		struct range *r = &p->r[p->cur];
		pthread_mutex_lock(&r->lock);
		while (r->n == 0 && !r->done)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->n > 0) {
			p->out = r->ring[r->head];
			r->ring[r->head].key = NULL;
			r->head = (r->head + 1) % r->cap;
			r->n--;
			pthread_cond_broadcast(&r->cond);
			pthread_mutex_unlock(&r->lock);
			*e = &p->out.e;
			return 1;
		}
		int rc = r->rc;
		if (rc < 0 && err)
			*err = r->err;
		pthread_mutex_unlock(&r->lock);
		if (rc < 0)
			return rc;
		p->cur++;
	}
	return 0;
}

void plister_free(struct plister *p)
{
	if (!p)
		return;
	s3_lister_free(p->single);
	for (unsigned i = 0; i < p->nr; i++) {
		struct range *r = &p->r[i];
		pthread_mutex_lock(&r->lock);
		r->cancel = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		if (r->started)
			pthread_join(r->thread, NULL);
		s3_lister_free(r->l);
		for (size_t k = 0; k < r->n; k++)
			free(r->ring[(r->head + k) % r->cap].key);
		free(r->ring);
		free(r->end_before);
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
	}
	free(p->r);
	free(p->out.key);
	free(p);
}
