/* Notifications (notify.h).
 *
 * Threads and locking: notifier_post (any thread) appends to the queue under
 * n->lock; the delivery thread takes the first message that is due, delivers
 * it without the lock, and puts it back with its next try when some target
 * failed. A message is owned by the queue or by the delivery thread, never
 * both. Counters are atomics. */
#include "common/compat.h"

#include "agent/notify.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/taskdef.h"
#include "agent/token.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"
#include "remote/creds.h"
#include "remote/http.h"
#include "remote/remotes.h"
#include "remote/sns.h"

enum { T_WEBHOOK = 1, T_SNS = 2 };

struct target {
	int kind;
	char *where;		  /* webhook: the URL; sns: the topic ARN */
	char *shown;		  /* for logs: "https://host" or the ARN */
	struct http_engine *http; /* sns: owned */
	struct creds_provider *creds;
	struct sns_client *sns;
	bool done;
};

struct msg {
	struct msg *next;
	char *task, *event, *body;
	char secret[TOKEN_HEX_LEN + 1]; /* the task's notification secret */
	struct target *t;
	size_t nt;
	unsigned attempt;
	double next_try; /* monotonic seconds */
};

struct notifier {
	struct notify_opts o;
	struct http_engine *http; /* webhooks */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct msg *head, *tail;
	size_t n;
	_Atomic uint64_t sent, retried, failed, dropped;
};

static void target_release(struct target *t)
{
	free(t->where);
	free(t->shown);
	sns_client_free(t->sns);
	creds_provider_free(t->creds);
	http_engine_free(t->http);
}

static void msg_free(struct msg *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nt; i++)
		target_release(&m->t[i]);
	free(m->t);
	free(m->task);
	free(m->event);
	free(m->body);
	secret_wipe(m->secret, sizeof(m->secret));
	free(m);
}

/* ---- delivery ---- */

static int deliver_webhook(struct notifier *n, struct msg *m, struct target *t, struct dth_err *err)
{
	char sig[72];
	token_hmac_sign(m->secret, m->body, strlen(m->body), sig);
	struct http_header h[] = {{"Content-Type", "application/json"},
				  {"X-Dth-Signature", sig},
				  {"X-Dth-Event", m->event}};
	struct http_req req = {.method = "POST",
			       .url = t->where,
			       .headers = h,
			       .n_headers = 3,
			       .body = m->body,
			       .body_len = strlen(m->body),
			       .max_body = 64 * 1024};
	struct http_resp resp;
	http_resp_init(&resp);
	struct dth_err e; /* its message names the URL, whose path may be a secret */
	int rc = http_perform(n->http, &req, &resp, &e);
	if (rc)
		err_set(err, rc, "%s", strerror(-rc));
	else if (resp.status < 200 || resp.status > 299)
		rc = err_set(err, -EIO, "HTTP %ld", resp.status);
	http_resp_release(&resp);
	return rc;
}

static int deliver_sns(struct msg *m, struct target *t, struct dth_err *err)
{
	char subject[101];
	msg_snprintf(subject, sizeof(subject), "dth: %s: %s", m->event, m->task);
	for (char *p = subject; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?'; /* SNS wants printable ASCII */
	return sns_publish(t->sns, t->where, subject, m->body, NULL, err);
}

/* Try every target not done yet; true when all are. */
static bool deliver(struct notifier *n, struct msg *m)
{
	bool all = true;
	for (size_t i = 0; i < m->nt; i++) {
		struct target *t = &m->t[i];
		if (t->done)
			continue;
		struct dth_err err;
		err_clear(&err);
		int rc =
		    t->kind == T_WEBHOOK ? deliver_webhook(n, m, t, &err) : deliver_sns(m, t, &err);
		if (!rc) {
			t->done = true;
			atomic_fetch_add(&n->sent, 1);
			continue;
		}
		all = false;
		bool last = m->attempt + 1 >= n->o.attempts;
		atomic_fetch_add(last ? &n->failed : &n->retried, 1);
		log_warn("task %s: notification %s to %s failed (attempt %u of %u): %s", m->task,
			 m->event, t->shown, m->attempt + 1, n->o.attempts, err.message);
	}
	return all;
}

/* The first message due, or NULL (with *wait_s until the earliest). */
static struct msg *take_due_locked(struct notifier *n, double now, double *wait_s)
{
	struct msg *prev = NULL;
	*wait_s = 60;
	for (struct msg *m = n->head; m; prev = m, m = m->next) {
		if (m->next_try <= now) {
			if (prev)
				prev->next = m->next;
			else
				n->head = m->next;
			if (n->tail == m)
				n->tail = prev;
			m->next = NULL;
			n->n--;
			return m;
		}
		if (m->next_try - now < *wait_s)
			*wait_s = m->next_try - now;
	}
	return NULL;
}

static void append_locked(struct notifier *n, struct msg *m)
{
	if (n->tail)
		n->tail->next = m;
	else
		n->head = m;
	n->tail = m;
	n->n++;
}

static void *deliver_main(void *arg)
{
	struct notifier *n = arg;
	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		double wait;
		struct msg *m = take_due_locked(n, now_mono(), &wait);
		if (!m) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			double until = (double)ts.tv_sec + ts.tv_nsec / 1e9 + wait;
			ts.tv_sec = (time_t)until;
			ts.tv_nsec = (long)((until - floor(until)) * 1e9);
			pthread_cond_timedwait(&n->cond, &n->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&n->lock);
		bool done = deliver(n, m);
		m->attempt++;
		pthread_mutex_lock(&n->lock);
		if (done || m->attempt >= n->o.attempts) {
			msg_free(m);
			continue;
		}
		m->next_try =
		    now_mono() + n->o.backoff_ms / 1000.0 * (double)(1u << (m->attempt - 1));
		append_locked(n, m);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* ---- posting ---- */

/* "scheme://host" of a URL, for logs (its path may hold a secret). */
static char *url_shown(const char *url)
{
	const char *h = strstr(url, "://");
	size_t n = h ? (size_t)(h + 3 - url) + strcspn(h + 3, "/?#") : strlen(url);
	return xstrndup(url, n);
}

/* The remote whose credentials publish to SNS for def. */
static char *sns_remote_name(const struct taskdef *def)
{
	if (def->notify_remote)
		return xstrdup(def->notify_remote);
	const char *c = def->destination ? strchr(def->destination, ':') : NULL;
	return c ? xstrndup(def->destination, (size_t)(c - def->destination)) : NULL;
}

static int sns_target(struct target *t, const struct taskdef *def, const struct config *cfg,
		      struct dth_err *err)
{
	char *name = sns_remote_name(def);
	const struct remote_def *r = name ? config_remote(cfg, name) : NULL;
	struct buf region = BUF_INIT;
	int rc = 0;
	if (!r || !r->type || strcmp(r->type, "s3"))
		rc = err_set(err, -EINVAL, "no s3 remote %s for SNS (notify_remote)",
			     name ? name : "(none)");
	else if (sns_topic_region(t->where, &region))
		rc = err_set(err, -EINVAL, "not a topic ARN");
	else if (!(t->http = remote_http_new(r)))
		rc = err_set(err, -ENOMEM, "cannot initialise libcurl");
	else
		rc = remote_open_creds(r, t->http, &t->creds, err);
	if (!rc) {
		bool aws =
		    !r->provider || !strcmp(r->provider, "aws") || !strcmp(r->provider, "aws-cn");
		struct sns_config sc = {def->name,	  aws ? NULL : r->endpoint,
					buf_str(&region), t->creds,
					t->http,	  {1, 100, 1000}};
		t->sns = sns_client_new(&sc);
		if (!t->sns)
			rc = err_set(err, -EINVAL, "cannot make an SNS client");
	}
	buf_release(&region);
	free(name);
	return rc;
}

static void add_targets(struct msg *m, const struct taskdef *def, const struct config *cfg)
{
	m->t = xcalloc(def->n_notify ? def->n_notify : 1, sizeof(*m->t));
	for (size_t i = 0; i < def->n_notify; i++) {
		const char *v = def->notify[i];
		struct target *t = &m->t[m->nt];
		struct dth_err err;
		err_clear(&err);
		if (!strncmp(v, "webhook:", 8)) {
			t->kind = T_WEBHOOK;
			t->where = xstrdup(v + 8);
			t->shown = url_shown(v + 8);
		} else if (!strncmp(v, "sns:", 4)) {
			t->kind = T_SNS;
			t->where = xstrdup(v + 4);
			t->shown = xstrdup(v + 4);
			if (sns_target(t, def, cfg, &err)) {
				log_warn("task %s: notification to %s cannot be sent: %s",
					 def->name, t->shown, err.message);
				target_release(t);
				memset(t, 0, sizeof(*t));
				continue;
			}
		} else {
			continue;
		}
		m->nt++;
	}
}

static void stamp(json_t *payload, const struct taskdef *def, const char *event)
{
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(payload, "event", json_string(event));
	json_object_set_new(payload, "task", json_string(def->name));
	json_object_set_new(payload, "type", json_string(taskdef_kind_name(def->kind)));
	json_object_set_new(payload, "time", json_string(when));
}

void notifier_post(struct notifier *n, const struct taskdef *def, const struct config *cfg,
		   const char *event, json_t *payload)
{
	if (!n || !def->n_notify) {
		json_decref(payload);
		return;
	}
	stamp(payload, def, event);
	struct msg *m = xcalloc(1, sizeof(*m));
	m->task = xstrdup(def->name);
	m->event = xstrdup(event);
	m->body = json_dumps(payload, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(payload);
	struct buf purpose = BUF_INIT;
	buf_addf(&purpose, "notify:%s", def->name);
	token_derive(n->o.token, purpose.data, m->secret);
	buf_release(&purpose);
	add_targets(m, def, cfg);
	if (!m->body || !m->nt) {
		msg_free(m);
		return;
	}
	struct msg *old = NULL;
	pthread_mutex_lock(&n->lock);
	if (n->n >= n->o.queue_max) {
		double ignored;
		old = take_due_locked(n, INFINITY, &ignored);
		atomic_fetch_add(&n->dropped, 1);
	}
	append_locked(n, m);
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (old)
		log_warn("task %s: notification %s dropped: too many waiting", old->task,
			 old->event);
	msg_free(old);
}

/* ---- lifecycle ---- */

struct notifier *notifier_new(const struct notify_opts *o)
{
	struct notifier *n = xcalloc(1, sizeof(*n));
	n->o = *o;
	if (!n->o.queue_max)
		n->o.queue_max = 1000;
	if (!n->o.attempts)
		n->o.attempts = 6;
	if (!n->o.backoff_ms)
		n->o.backoff_ms = 1000;
	struct http_engine_opts ho = {
	    .connect_timeout_ms = 5000, .stall_timeout_s = 10, .tls_verify = true};
	n->http = http_engine_new(&ho);
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	if (!n->http || pthread_create(&n->thread, NULL, deliver_main, n)) {
		http_engine_free(n->http);
		pthread_mutex_destroy(&n->lock);
		pthread_cond_destroy(&n->cond);
		free(n);
		return NULL;
	}
	return n;
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = true;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	http_engine_abort(n->http);
	pthread_join(n->thread, NULL);
	while (n->head) {
		struct msg *m = n->head;
		n->head = m->next;
		atomic_fetch_add(&n->dropped, 1);
		msg_free(m);
	}
	http_engine_free(n->http);
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->cond);
	free(n);
}

void notifier_counts(struct notifier *n, struct notify_counts *out)
{
	out->sent = atomic_load(&n->sent);
	out->retried = atomic_load(&n->retried);
	out->failed = atomic_load(&n->failed);
	out->dropped = atomic_load(&n->dropped);
}
