#include "common/compat.h"

#include "agent/budget.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* Locking: every field after limit is guarded by lock. Waiters wake on
 * every give (and every 100 ms, to see *stop). Takes are not queued: a large
 * take may wait while small ones pass; workers give back everything they hold
 * before waiting (transfer.c), so this cannot deadlock. */
struct budget {
	uint64_t limit;
	pthread_mutex_t lock;
	pthread_cond_t freed;
	uint64_t used;
	uint64_t peak;
	bool cancelled;
};

struct budget *budget_new(uint64_t limit)
{
	struct budget *b = xcalloc(1, sizeof(*b));
	b->limit = limit ? limit : 1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->freed, NULL);
	return b;
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->freed);
	free(b);
}

static void took(struct budget *b, uint64_t n)
{
	b->used += n;
	if (b->used > b->peak)
		b->peak = b->used;
}

int budget_take(struct budget *b, uint64_t n, volatile int *stop)
{
	if (n > b->limit)
		return -E2BIG;
	int rc = 0;
	pthread_mutex_lock(&b->lock);
	while (b->used + n > b->limit) {
		if (b->cancelled || (stop && *stop)) {
			rc = -ECANCELED;
			break;
		}
		struct timespec ts;
		deadline_in_ms(&ts, 100);
		pthread_cond_timedwait(&b->freed, &b->lock, &ts);
	}
	if (!rc)
		took(b, n);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

bool budget_try_take(struct budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->lock);
	bool ok = b->used + n <= b->limit;
	if (ok)
		took(b, n);
	pthread_mutex_unlock(&b->lock);
	return ok;
}

void budget_give(struct budget *b, uint64_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&b->lock);
	b->used = n > b->used ? 0 : b->used - n;
	pthread_cond_broadcast(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

void budget_cancel(struct budget *b)
{
	pthread_mutex_lock(&b->lock);
	b->cancelled = true;
	pthread_cond_broadcast(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

uint64_t budget_limit(const struct budget *b)
{
	return b->limit;
}

uint64_t budget_peak(struct budget *b)
{
	pthread_mutex_lock(&b->lock);
	uint64_t p = b->peak;
	pthread_mutex_unlock(&b->lock);
	return p;
}
