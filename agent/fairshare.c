/* Fair worker slots (see fairshare.h).
 *
 * Locking: f->lock guards everything. Invariants: free + sum(held) == slots;
 * a client's granted <= waiting; free > 0 only when no client has waiters
 * without a grant (a slot that frees goes to a waiter first). Grants go
 * round robin: the search for the next client to serve starts after the last
 * one served. */
#include "common/compat.h"

#include <pthread.h>
#include <stdlib.h>

#include "agent/fairshare.h"

struct fairshare_client {
	struct fairshare *f;
	struct fairshare_client *prev, *next; /* ring of clients */
	unsigned waiting;		      /* threads in fairshare_acquire */
	unsigned granted;		      /* slots given to those, not yet taken */
	unsigned held;
	unsigned passed;   /* slots given to others since c last had none waiting */
	unsigned max_wait; /* the most of passed */
};

struct fairshare {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned slots, free;
	struct fairshare_client *ring; /* NULL when there is no client */
	struct fairshare_client *last; /* last served */
};

struct fairshare *fairshare_new(unsigned slots)
{
	struct fairshare *f = xcalloc(1, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->slots = f->free = slots ? slots : 1;
	return f;
}

void fairshare_free(struct fairshare *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
}

struct fairshare_client *fairshare_join(struct fairshare *f)
{
	struct fairshare_client *c = xcalloc(1, sizeof(*c));
	c->f = f;
	pthread_mutex_lock(&f->lock);
	if (!f->ring) {
		c->prev = c->next = c;
		f->ring = c;
	} else {
		c->next = f->ring;
		c->prev = f->ring->prev;
		c->prev->next = c;
		f->ring->prev = c;
	}
	pthread_mutex_unlock(&f->lock);
	return c;
}

void fairshare_leave(struct fairshare_client *c)
{
	if (!c)
		return;
	struct fairshare *f = c->f;
	pthread_mutex_lock(&f->lock);
	if (c->next == c) {
		f->ring = NULL;
	} else {
		c->prev->next = c->next;
		c->next->prev = c->prev;
		if (f->ring == c)
			f->ring = c->next;
	}
	if (f->last == c)
		f->last = NULL;
	pthread_mutex_unlock(&f->lock);
	free(c);
}

/* Slots went to w: count it against every other client kept waiting. */
static void served(struct fairshare *f, struct fairshare_client *w)
{
	f->last = w;
	struct fairshare_client *c = f->ring;
	do {
		if (c != w && c->waiting > c->granted && ++c->passed > c->max_wait)
			c->max_wait = c->passed;
		c = c->next;
	} while (c != f->ring);
}

/* The next client after the last served with a waiter not yet granted. */
static struct fairshare_client *next_waiter(struct fairshare *f)
{
	if (!f->ring)
		return NULL;
	struct fairshare_client *start = f->last ? f->last->next : f->ring, *c = start;
	do {
		if (c->waiting > c->granted)
			return c;
		c = c->next;
	} while (c != start);
	return NULL;
}

void fairshare_acquire(struct fairshare_client *c)
{
	struct fairshare *f = c->f;
	pthread_mutex_lock(&f->lock);
	if (f->free && !next_waiter(f)) {
		f->free--;
		c->held++;
		served(f, c);
		pthread_mutex_unlock(&f->lock);
		return;
	}
	if (c->waiting == c->granted)
		c->passed = 0;
	c->waiting++;
	while (!c->granted)
		pthread_cond_wait(&f->cond, &f->lock);
	c->granted--;
	c->waiting--;
	c->held++;
	pthread_mutex_unlock(&f->lock);
}

void fairshare_release(struct fairshare_client *c)
{
	struct fairshare *f = c->f;
	pthread_mutex_lock(&f->lock);
	c->held--;
	struct fairshare_client *w = next_waiter(f);
	if (w) {
		w->granted++;
		served(f, w);
		pthread_cond_broadcast(&f->cond);
	} else {
		f->free++;
	}
	pthread_mutex_unlock(&f->lock);
}

unsigned fairshare_held(const struct fairshare_client *c)
{
	pthread_mutex_lock(&c->f->lock);
	unsigned n = c->held;
	pthread_mutex_unlock(&c->f->lock);
	return n;
}

unsigned fairshare_in_use(const struct fairshare *f)
{
	struct fairshare *m = (struct fairshare *)f;
	pthread_mutex_lock(&m->lock);
	unsigned n = m->slots - m->free;
	pthread_mutex_unlock(&m->lock);
	return n;
}

unsigned fairshare_max_wait(const struct fairshare_client *c)
{
	pthread_mutex_lock(&c->f->lock);
	unsigned n = c->max_wait;
	pthread_mutex_unlock(&c->f->lock);
	return n;
}
