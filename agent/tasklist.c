/* The API's task list text (see tasklist.h).
 *
 * Locking: tl->lock guards every field. At most one build goes on at a time
 * (building): the builder thread's, or a request's when the text is of an
 * older generation (a request must then see the client's change, so it
 * waits for a build in progress and checks again). Builds run without
 * tl->lock (service_tasks_json takes the service's lock). */
#include "common/compat.h"

#include "agent/tasklist.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>

#include "agent/service.h"
#include "common/log.h"

struct tasklist {
	struct service *s;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a build ended, or the builder is wanted */
	struct buf text;
	uint64_t gen;  /* service_generation the text was built at */
	double built;  /* now_mono() of the build; 0: no text */
	bool building; /* a build goes on (text is the previous one) */
	bool want;     /* the builder thread should build */
	bool stopping; /* the builder thread should end */
	bool threaded; /* the builder thread runs */
	pthread_t thread;
};

/* Build a text into out (empty on entry); its generation into *gen. */
static int build(struct service *s, struct buf *out, uint64_t *gen)
{
	*gen = service_generation(s);
	json_t *j = service_tasks_json(s);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	buf_adds(out, text);
	buf_addch(out, '\n');
	free(text);
	return 0;
}

/* With tl->lock held, building set by the caller: build without the lock,
 * then put the text in place and wake the waiters. */
static int rebuild_locked(struct tasklist *tl)
{
	struct buf fresh = BUF_INIT;
	uint64_t gen;
	pthread_mutex_unlock(&tl->lock);
	int rc = build(tl->s, &fresh, &gen);
	double now = now_mono();
	pthread_mutex_lock(&tl->lock);
	if (!rc) {
		buf_release(&tl->text);
		tl->text = fresh;
		tl->gen = gen;
		tl->built = now;
		tl->want = false; /* whoever asked for it has it */
	} else {
		buf_release(&fresh);
	}
	tl->building = false;
	pthread_cond_broadcast(&tl->cond);
	return rc;
}

static void *builder(void *arg)
{
	struct tasklist *tl = arg;
	pthread_mutex_lock(&tl->lock);
	for (;;) {
		while (!tl->stopping && (!tl->want || tl->building))
			pthread_cond_wait(&tl->cond, &tl->lock);
		if (tl->stopping)
			break;
		tl->want = false;
		tl->building = true;
		if (rebuild_locked(tl))
			log_warn("the task list could not be built: out of memory");
	}
	pthread_mutex_unlock(&tl->lock);
	return NULL;
}

struct tasklist *tasklist_new(struct service *s)
{
	struct tasklist *tl = xcalloc(1, sizeof(*tl));
	tl->s = s;
	pthread_mutex_init(&tl->lock, NULL);
	pthread_cond_init(&tl->cond, NULL);
	buf_init(&tl->text);
	tl->threaded = pthread_create(&tl->thread, NULL, builder, tl) == 0;
	if (!tl->threaded)
		log_warn("the task list's builder thread did not start: requests build it");
	return tl;
}

void tasklist_free(struct tasklist *tl)
{
	if (!tl)
		return;
	if (tl->threaded) {
		pthread_mutex_lock(&tl->lock);
		tl->stopping = true;
		pthread_cond_broadcast(&tl->cond);
		pthread_mutex_unlock(&tl->lock);
		pthread_join(tl->thread, NULL);
	}
	buf_release(&tl->text);
	pthread_mutex_destroy(&tl->lock);
	pthread_cond_destroy(&tl->cond);
	free(tl);
}

int tasklist_text(struct tasklist *tl, struct buf *out)
{
	int rc = 0;
	pthread_mutex_lock(&tl->lock);
	for (;;) {
		bool current = tl->built && tl->gen == service_generation(tl->s);
		if (current && now_mono() - tl->built < TASKLIST_MAX_AGE)
			break;
		if (current && tl->threaded) {
			/* Only too old: served as it is; the builder makes the next. */
			if (!tl->building && !tl->want) {
				tl->want = true;
				pthread_cond_broadcast(&tl->cond);
			}
			break;
		}
		if (tl->building) {
			pthread_cond_wait(&tl->cond, &tl->lock);
			continue;
		}
		tl->building = true;
		rc = rebuild_locked(tl);
		if (rc)
			break;
	}
	if (!rc)
		buf_add(out, tl->text.data, tl->text.len);
	pthread_mutex_unlock(&tl->lock);
	return rc;
}
