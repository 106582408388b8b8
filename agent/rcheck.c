/* Remote checks in the background (see rcheck.h).
 *
 * Locking: c->lock guards everything in struct rcheck. Probes run without
 * it; a worker takes it to pick the next remote, to register the engine it
 * probes with (so rcheck_free can abort it) and to publish the result. The
 * round's done callback is called without it.
 *
 * Invariants: running is true from rcheck_start until the round's thread has
 * called done, set it false (its last use of the lock) and is about to
 * return; joinable says a thread exists that nobody has joined yet. An
 * engine in c->engines is freed only by its worker, after removing it under
 * the lock, so an abort never touches a freed engine. */
#include "common/compat.h"

#include "agent/rcheck.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "remote/http.h"
#include "remote/probe.h"
#include "remote/remotes.h"

#define CHECKING (-1) /* a status: the probe goes on (else enum probe_outcome) */

struct result {
	char *name;
	int status;
	const char *call; /* static (probe's) */
	double seconds;
	int64_t at; /* started_at while checking, else checked_at */
	char message[512];
};

struct rcheck {
	pthread_mutex_t lock;
	struct result *res;
	size_t n;
	bool running, joinable, stopping;
	pthread_t thread;
	struct http_engine *engines[RCHECK_PARALLEL]; /* in flight, by worker */
	/* the round */
	const struct config *cfg;
	size_t next;
	void (*done)(void *ctx);
	void *ctx;
};

struct rcheck *rcheck_new(void)
{
	struct rcheck *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void results_clear(struct rcheck *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->res[i].name);
	free(c->res);
	c->res = NULL;
	c->n = 0;
}

void rcheck_stop(struct rcheck *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	for (size_t i = 0; i < RCHECK_PARALLEL; i++)
		if (c->engines[i])
			http_engine_abort(c->engines[i]);
	bool join = c->joinable;
	c->joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(c->thread, NULL);
}

void rcheck_free(struct rcheck *c)
{
	if (!c)
		return;
	rcheck_stop(c);
	results_clear(c);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* With c->lock held: the result of the remote called name, or NULL (a
 * result whose name was taken over by mark_checking_locked has none). */
static struct result *find_locked(struct rcheck *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->res[i].name && !strcmp(c->res[i].name, name))
			return &c->res[i];
	return NULL;
}

/* With c->lock held: one result per remote of cfg, each "checking". */
static void mark_checking_locked(struct rcheck *c, const struct config *cfg)
{
	size_t n = config_remote_count(cfg);
	struct result *res = xcalloc(n ? n : 1, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		const char *name = config_remote_at(cfg, i)->name;
		struct result *old = find_locked(c, name);
		res[i].name = old ? old->name : xstrdup(name);
		if (old)
			old->name = NULL;
		res[i].status = CHECKING;
		res[i].at = (int64_t)time(NULL);
	}
	results_clear(c);
	c->res = res;
	c->n = n;
}

/* With c->lock held: publish what probe told of remote name. */
static void publish_locked(struct rcheck *c, const char *name, const struct probe_result *p)
{
	struct result *r = find_locked(c, name);
	if (!r)
		return;
	r->status = (int)p->outcome;
	r->call = p->call;
	r->seconds = p->seconds;
	r->at = (int64_t)time(NULL);
	str_copy_msg(r->message, p->outcome == PROBE_OK ? "" : p->err.message, sizeof(r->message));
}

/* One worker (slot w of c->engines): probe remotes until none is left. */
static void work(struct rcheck *c, size_t w)
{
	for (;;) {
		pthread_mutex_lock(&c->lock);
		size_t i = c->next++;
		bool go = !c->stopping && i < config_remote_count(c->cfg);
		pthread_mutex_unlock(&c->lock);
		if (!go)
			return;
		const struct remote_def *r = config_remote_at(c->cfg, i);
		struct http_engine *http = remote_http_new(r);
		pthread_mutex_lock(&c->lock);
		c->engines[w] = http;
		if (c->stopping && http)
			http_engine_abort(http);
		pthread_mutex_unlock(&c->lock);
		struct probe_result p;
		probe_remote_on(r, http, &p);
		pthread_mutex_lock(&c->lock);
		c->engines[w] = NULL;
		if (!c->stopping)
			publish_locked(c, r->name, &p);
		pthread_mutex_unlock(&c->lock);
		http_engine_free(http);
		log_debug("remote %s: %s (%s, %.3f s)", r->name, probe_outcome_name(p.outcome),
			  p.call ? p.call : "-", p.seconds);
	}
}

struct helper {
	struct rcheck *c;
	size_t w;
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	work(h->c, h->w);
	return NULL;
}

static void *round_main(void *arg)
{
	struct rcheck *c = arg;
	size_t n = config_remote_count(c->cfg);
	size_t k = n < RCHECK_PARALLEL ? n : RCHECK_PARALLEL;
	pthread_t th[RCHECK_PARALLEL];
	struct helper hs[RCHECK_PARALLEL];
	size_t started = 0;
	for (size_t w = 1; w < k; w++) {
		hs[started] = (struct helper){c, w};
		if (pthread_create(&th[started], NULL, helper_main, &hs[started]) == 0)
			started++;
	}
	work(c, 0);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	c->done(c->ctx);
	pthread_mutex_lock(&c->lock);
	c->running = false;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int rcheck_start(struct rcheck *c, const struct config *cfg, void (*done)(void *ctx), void *ctx)
{
	pthread_mutex_lock(&c->lock);
	if (c->running || c->stopping) {
		pthread_mutex_unlock(&c->lock);
		return c->running ? -EALREADY : -ECANCELED;
	}
	if (c->joinable) /* the last round's thread has ended, or is about to */
		pthread_join(c->thread, NULL);
	c->joinable = false;
	mark_checking_locked(c, cfg);
	c->cfg = cfg;
	c->next = 0;
	c->done = done;
	c->ctx = ctx;
	int rc = pthread_create(&c->thread, NULL, round_main, c) ? -EAGAIN : 0;
	c->running = c->joinable = rc == 0;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

json_t *rcheck_json(struct rcheck *c, const char *name)
{
	pthread_mutex_lock(&c->lock);
	const struct result *r = find_locked(c, name);
	json_t *o = json_null();
	if (r && r->status == CHECKING)
		o = json_pack("{s:s, s:I}", "status", "checking", "started_at", (json_int_t)r->at);
	else if (r)
		o = json_pack("{s:s, s:s?, s:f, s:I}", "status", probe_outcome_name(r->status),
			      "call", r->call, "seconds", r->seconds, "checked_at",
			      (json_int_t)r->at);
	if (r && r->status != CHECKING && r->status != PROBE_OK)
		json_object_set_new(o, "message", json_string(r->message));
	pthread_mutex_unlock(&c->lock);
	return o;
}
