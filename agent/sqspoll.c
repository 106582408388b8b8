/* The SQS poller (sqspoll.h).
 *
 * Threads and locking: one thread per poller owns the messages in flight
 * (inf, n, bytes) and the SQS client; nothing else touches them. lock and
 * cond only carry the stop request.
 *
 * A message in flight is done once the journal's oldest event is newer than
 * the last event it put there (the run that acted on it ended well and
 * acknowledged them); it is then deleted from the queue, unless one of its
 * keys is recorded failed: that one is left to become visible again. */
#include "common/compat.h"

#include "agent/sqspoll.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/evring.h"
#include "agent/intake.h"
#include "agent/taskdef.h"
#include "common/buf.h"
#include "common/log.h"
#include "manifest/manifest.h"
#include "remote/creds.h"
#include "remote/http.h"
#include "remote/remotes.h"
#include "remote/sqs.h"

#define ERROR_PAUSE_S 5 /* after a failed receive */

struct inflight {
	char *id, *receipt, *body;
	size_t body_len;
	uint64_t last_seq; /* the last journal event it made */
	double deadline;   /* when it becomes visible again (monotonic seconds) */
};

struct sqspoll {
	struct taskdef def;
	struct manifest *m;
	uint32_t task;
	unsigned vis;
	void (*kick)(void *ctx, const struct intake_counts *c, unsigned refused);
	bool (*active)(void *ctx);
	void *ctx;
	struct http_engine *http;
	struct creds_provider *creds;
	struct sqs_client *sqs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct inflight *inf; /* the poller thread's own */
	size_t n, cap, bytes;
	struct evring *seen; /* the poller thread's own: events noted until the next kick */
};

static bool stopping(struct sqspoll *p)
{
	pthread_mutex_lock(&p->lock);
	bool s = p->stop;
	pthread_mutex_unlock(&p->lock);
	return s;
}

/* Sleep up to seconds, or until asked to stop. */
static void pause_s(struct sqspoll *p, unsigned seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	pthread_mutex_lock(&p->lock);
	if (!p->stop)
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	pthread_mutex_unlock(&p->lock);
}

static void inflight_drop(struct sqspoll *p, size_t i)
{
	struct inflight *f = &p->inf[i];
	p->bytes -= f->body_len;
	free(f->id);
	free(f->receipt);
	free(f->body);
	p->inf[i] = p->inf[--p->n];
}

static struct inflight *inflight_find(struct sqspoll *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->inf[i].id, id))
			return &p->inf[i];
	return NULL;
}

static void delete_one(struct sqspoll *p, const char *receipt, const char *id)
{
	struct dth_err err;
	if (sqs_delete(p->sqs, &receipt, 1, &err))
		log_warn("task %s: cannot delete message %s from the queue: %s", p->def.name, id,
			 err.message);
}

/* Tell the agent, with the events noted since the last kick. */
static void kick(struct sqspoll *p, struct intake_counts *c, unsigned refused)
{
	c->seen = p->seen;
	p->kick(p->ctx, c, refused);
	evring_clear(p->seen);
}

/* A message just received: its keys kept in the journal, then held. */
static void take(struct sqspoll *p, struct sqs_message *msg)
{
	struct inflight *had = inflight_find(p, msg->id);
	if (had) { /* seen again before we were done: the newer receipt counts */
		free(had->receipt);
		had->receipt = xstrdup(msg->receipt);
		had->deadline = now_mono() + p->vis;
		return;
	}
	struct intake_counts c;
	struct dth_err err;
	struct intake_note note = {p->seen, "sqs"};
	int rc = intake_add(&p->def, p->m, p->task, msg->body, msg->body_len, &note, &c, &err);
	if (rc == -EINVAL || rc == -EFBIG) {
		log_warn("task %s: message %s (received %u times) is not an S3 event "
			 "notification: %s; left to the queue's redrive policy",
			 p->def.name, msg->id, msg->receives, err.message);
		kick(p, &c, 1);
		return;
	}
	if (rc) {
		log_warn("task %s: message %s: %s; it will come again", p->def.name, msg->id,
			 err.message);
		return;
	}
	kick(p, &c, 0);
	if (!c.accepted) { /* a test event, or nothing of this task's */
		delete_one(p, msg->receipt, msg->id);
		return;
	}
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->inf = xrealloc(p->inf, p->cap * sizeof(*p->inf));
	}
	struct inflight *f = &p->inf[p->n++];
	f->id = msg->id;
	f->receipt = msg->receipt;
	f->body = msg->body;
	f->body_len = msg->body_len;
	f->last_seq = c.last_seq;
	f->deadline = now_mono() + p->vis;
	msg->id = msg->receipt = msg->body = NULL; /* now owned by f */
	p->bytes += f->body_len;
}

static void receive(struct sqspoll *p)
{
	struct sqs_message *msgs;
	size_t n;
	struct dth_err err;
	unsigned wait = p->n ? 1 : SQSPOLL_WAIT_S; /* messages wait to be settled */
	int rc = sqs_receive(p->sqs, 10, wait, 0, &msgs, &n, &err);
	if (rc == -ECANCELED)
		return;
	if (rc) {
		log_warn("task %s: cannot receive from the queue: %s", p->def.name, err.message);
		pause_s(p, ERROR_PAUSE_S);
		return;
	}
	for (size_t i = 0; i < n && !stopping(p); i++)
		take(p, &msgs[i]);
	sqs_messages_free(msgs, n);
}

static int first_seq(void *ctx, const struct manifest_event *ev)
{
	*(uint64_t *)ctx = ev->seq;
	return 0;
}

/* The oldest event still in the journal (next when none). */
static int oldest_event(struct sqspoll *p, uint64_t *oldest)
{
	struct manifest_events_state st;
	int rc = manifest_events_state(p->m, p->task, &st);
	if (rc)
		return rc;
	*oldest = st.next;
	rc = manifest_events_page(p->m, p->task, 1, first_seq, oldest);
	return rc < 0 ? rc : 0;
}

struct fail_check {
	struct sqspoll *p;
	unsigned failed;
};

static int key_failed(void *ctx, const char *key, size_t len)
{
	struct fail_check *fc = ctx;
	struct obj_record rec;
	if (len <= MANIFEST_KEY_MAX &&
	    manifest_obj_get(fc->p->m, fc->p->task, key, len, &rec) == 0 &&
	    rec.status == OBJ_FAILED)
		fc->failed++;
	return 0;
}

/* Delete the messages whose work is done; leave those with a failed key. */
static void settle(struct sqspoll *p)
{
	uint64_t oldest;
	if (!p->n || oldest_event(p, &oldest))
		return;
	for (size_t i = 0; i < p->n;) {
		struct inflight *f = &p->inf[i];
		if (f->last_seq >= oldest) {
			i++;
			continue;
		}
		struct fail_check fc = {p, 0};
		struct dth_err err;
		if (intake_parse(&p->def, f->body, f->body_len, key_failed, &fc, NULL, &err) < 0 ||
		    fc.failed)
			log_info("task %s: message %s: %u of its keys failed (dth task failures); "
				 "left to the queue's redrive policy",
				 p->def.name, f->id, fc.failed);
		else
			delete_one(p, f->receipt, f->id);
		inflight_drop(p, i);
	}
}

/* Keep the messages still being worked on invisible. */
static void extend(struct sqspoll *p)
{
	double now = now_mono();
	for (size_t i = 0; i < p->n; i++) {
		struct inflight *f = &p->inf[i];
		if (f->deadline - now > p->vis / 3.0)
			continue;
		struct dth_err err;
		const char *r = f->receipt;
		if (sqs_extend(p->sqs, &r, 1, p->vis, &err))
			log_warn("task %s: cannot extend the visibility of message %s: %s",
				 p->def.name, f->id, err.message);
		else
			f->deadline = now + p->vis;
	}
}

/* How long a received message stays hidden: the queue's own setting (a
 * first request that also proves the queue and the credentials). */
static int queue_visibility(struct sqspoll *p, struct dth_err *err)
{
	unsigned v = 0;
	int rc = sqs_visibility(p->sqs, &v, err);
	if (!rc)
		p->vis = v ? v : 1; /* 0 would make every message visible again at once */
	return rc;
}

static void *poll_main(void *arg)
{
	struct sqspoll *p = arg;
	while (!p->vis && !stopping(p)) {
		struct dth_err err;
		if (queue_visibility(p, &err) == 0)
			break;
		log_warn("task %s: cannot read the queue's attributes: %s", p->def.name,
			 err.message);
		pause_s(p, ERROR_PAUSE_S);
	}
	while (!stopping(p)) {
		bool room = p->n < SQSPOLL_INFLIGHT_MAX && p->bytes < SQSPOLL_INFLIGHT_BYTES;
		if (room && p->active(p->ctx))
			receive(p);
		else
			pause_s(p, 1);
		if (stopping(p))
			break;
		settle(p);
		extend(p);
	}
	return NULL;
}

/* The SQS client of the queue, with the source remote's credentials. */
static int open_client(struct sqspoll *p, const struct config *cfg, const char *url,
		       struct dth_err *err)
{
	char *remote = NULL, *bucket = NULL, *prefix = NULL;
	int rc = remote_parse_path(p->def.source, &remote, &bucket, &prefix, err);
	const struct remote_def *r = rc ? NULL : config_remote(cfg, remote);
	if (!rc && !r)
		rc = err_set(err, -EINVAL, "no remote called %s", remote);
	if (!rc && !(p->http = remote_http_new(r)))
		rc = err_set(err, -ENOMEM, "cannot initialise libcurl");
	if (!rc)
		rc = remote_open_creds(r, p->http, &p->creds, err);
	if (!rc) {
		struct buf region = BUF_INIT;
		if (sqs_region_of_url(url, &region) && r->region)
			buf_adds(&region, r->region);
		struct sqs_config sc = {p->def.name, url,     region.len ? region.data : NULL,
					p->creds,    p->http, RETRY_POLICY_DEFAULT};
		p->sqs = sqs_client_new(&sc);
		buf_release(&region);
		if (!p->sqs)
			rc = err_set(err, -EINVAL, "events: cannot use the queue URL %s", url);
	}
	free(remote);
	free(bucket);
	free(prefix);
	return rc;
}

static void release(struct sqspoll *p)
{
	while (p->n)
		inflight_drop(p, p->n - 1);
	free(p->inf);
	sqs_client_free(p->sqs);
	creds_provider_free(p->creds);
	http_engine_free(p->http);
	taskdef_release(&p->def);
	evring_free(p->seen);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

struct sqspoll *sqspoll_start(const struct sqspoll_opts *o, struct dth_err *err)
{
	const char *url;
	err_clear(err);
	if (taskdef_events(o->def, &url) != TASKDEF_EVENTS_SQS || !url) {
		err_set(err, -EINVAL, "events: not sqs:QUEUE_URL");
		return NULL;
	}
	struct sqspoll *p = xcalloc(1, sizeof(*p));
	taskdef_copy(&p->def, o->def);
	p->m = o->m;
	p->task = o->task;
	p->kick = o->kick;
	p->active = o->active;
	p->ctx = o->ctx;
	p->seen = evring_new();
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	taskdef_events(&p->def, &url);
	p->vis = o->visibility_s;
	if (open_client(p, o->cfg, url, err) || pthread_create(&p->thread, NULL, poll_main, p)) {
		if (!err->message[0])
			err_set(err, -EAGAIN, "cannot start the SQS poller's thread");
		release(p);
		return NULL;
	}
	return p;
}

void sqspoll_signal(struct sqspoll *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	http_engine_abort(p->http); /* the long poll in progress ends */
}

void sqspoll_free(struct sqspoll *p)
{
	if (!p)
		return;
	sqspoll_signal(p);
	pthread_join(p->thread, NULL);
	release(p);
}

uint64_t sqspoll_requests(const struct sqspoll *p)
{
	return sqs_client_requests(p->sqs);
}

void *sqspoll_ctx(const struct sqspoll *p)
{
	return p->ctx;
}
