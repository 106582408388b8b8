#include "common/compat.h"

#include "agent/pipe.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "remote/s3.h"

/* Locking: lock guards the ring and every flag; the GET thread (producer)
 * waits on room, the writer (consumer) on data, each waking every 100 ms to
 * look at *stop. The producer's error is final; so is the consumer's abort. */
struct pipe {
	struct pipe_src src;
	EVP_MD_CTX *md5[2];
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t data, room;
	char *ring;
	size_t cap, head, count; /* read position and bytes held */
	bool get_done;		 /* the GET ended (get_rc says how) */
	int get_rc;
	struct dth_err get_err;
	bool aborted; /* the writer gave up */
};

static bool stopped(const struct pipe *p)
{
	return p->src.stop && *p->src.stop;
}

static void wait_on(struct pipe *p, pthread_cond_t *c)
{
	struct timespec ts;
	deadline_in_ms(&ts, 100);
	pthread_cond_timedwait(c, &p->lock, &ts);
}

/* http_sink_fn of the GET: copy into the ring, waiting for room. */
static int ring_put(void *ctx, const void *data, size_t len)
{
	struct pipe *p = ctx;
	const char *d = data;
	int rc = 0;
	pthread_mutex_lock(&p->lock);
	while (len && !rc) {
		if (p->aborted || stopped(p)) {
			rc = -ECANCELED;
			break;
		}
		if (p->count == p->cap) {
			wait_on(p, &p->room);
			continue;
		}
		/* The free run after the data: up to the end of the ring, or up to
		 * the head when the data wraps. */
		size_t tail = (p->head + p->count) % p->cap;
		size_t n = tail >= p->head ? p->cap - tail : p->head - tail;
		if (n > len)
			n = len;
		memcpy(p->ring + tail, d, n);
		p->count += n;
		d += n;
		len -= n;
		pthread_cond_signal(&p->data);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

long pipe_read(void *ctx, void *dst, size_t room)
{
	struct pipe *p = ctx;
	long rc;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (stopped(p)) {
			rc = -ECANCELED;
			break;
		}
		if (p->count) {
			size_t n = p->cap - p->head;
			if (n > p->count)
				n = p->count;
			if (n > room)
				n = room;
			memcpy(dst, p->ring + p->head, n);
			for (int k = 0; k < 2; k++)
				if (p->md5[k])
					EVP_DigestUpdate(p->md5[k], dst, n);
			p->head = (p->head + n) % p->cap;
			p->count -= n;
			pthread_cond_signal(&p->room);
			rc = (long)n;
			break;
		}
		if (p->get_done) {
			rc = p->get_rc ? p->get_rc : 0;
			break;
		}
		wait_on(p, &p->data);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static void *get_main(void *arg)
{
	struct pipe *p = arg;
	struct dth_err err;
	err_clear(&err);
	int rc = s3_get_object_to(p->src.c, p->src.bucket, p->src.key, p->src.offset, p->src.length,
				  p->src.if_match, ring_put, p, &err);
	pthread_mutex_lock(&p->lock);
	p->get_done = true;
	p->get_rc = rc;
	p->get_err = err;
	pthread_cond_broadcast(&p->data);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pipe *pipe_start(const struct pipe_src *src, size_t ring_bytes, EVP_MD_CTX *const md5[2],
			struct dth_err *err)
{
	struct pipe *p = xcalloc(1, sizeof(*p));
	p->src = *src;
	if (md5) {
		p->md5[0] = md5[0];
		p->md5[1] = md5[1];
	}
	p->cap = ring_bytes ? ring_bytes : 1;
	p->ring = xmalloc(p->cap);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->data, NULL);
	pthread_cond_init(&p->room, NULL);
	if (pthread_create(&p->thread, NULL, get_main, p) != 0) {
		err_set(err, -EAGAIN, "cannot start a thread for a streamed copy");
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->data);
		pthread_cond_destroy(&p->room);
		free(p->ring);
		free(p);
		return NULL;
	}
	return p;
}

int pipe_finish(struct pipe *p, int write_rc, struct dth_err *err)
{
	pthread_mutex_lock(&p->lock);
	if (write_rc)
		p->aborted = true;
	pthread_cond_broadcast(&p->room);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	int rc = p->get_rc;
	if (write_rc && rc == -ECANCELED)
		rc = 0; /* stopped because the write gave up: the write's error stands */
	if (rc && err)
		*err = p->get_err;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->data);
	pthread_cond_destroy(&p->room);
	free(p->ring);
	free(p);
	return rc;
}
