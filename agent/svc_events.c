/* The agent's side of change events: the runs that act on them, the webhook
 * intake, and the tasks' event sources: SQS pollers and inotify watchers
 * (service_i.h).
 *
 * Locking: as in service.c, s->lock guards every atask field. A source's
 * thread takes s->lock (to count events and wake the scheduler), so a source
 * is only ever joined without it: one a task no longer wants is stopped and
 * put in s->retired under the lock, and joined by svc_pollers_reap after
 * the lock is released. A source refers to its task by name and id (struct
 * evsource, freed after the join), never by pointer, since the task may be
 * gone before its source has stopped. */
#include "common/compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dirwatch.h"
#include "agent/evring.h"
#include "agent/notify.h"
#include "agent/service_i.h"
#include "agent/sqspoll.h"
#include "common/log.h"
#include "manifest/manifest.h"

#define EVENT_BATCH 10000 /* keys an event run takes at most */
#define EVENT_HOLD  30	  /* seconds between event runs after one failed */

/* ---- runs ---- */

void evrun_begin(struct service *s, struct atask *t, const char *trigger, struct taskrun_opts *o,
		 struct evrun *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (!strcmp(trigger, "events")) {
		int rc = intake_batch_take(s->m, t->id, EVENT_BATCH, &ev->batch);
		if (rc)
			log_warn("task %s: cannot read its events: %s", o->def->name,
				 strerror(-rc));
		ev->ack_upto = ev->batch.upto;
		ev->ack_rescan = ev->batch.rescan;
		if (!ev->batch.rescan) {
			o->keys = ev->batch.keys;
			o->n_keys = ev->batch.n;
		}
		return;
	}
	struct manifest_events_state st;
	if (!o->retry_failed && manifest_events_state(s->m, t->id, &st) == 0 &&
	    (st.count || st.rescan)) {
		ev->ack_upto = st.next - 1;
		ev->ack_rescan = true;
	}
}

void evrun_end(struct service *s, struct atask *t, const struct taskrun_result *res,
	       struct evrun *ev)
{
	bool well = !res->interrupted && !res->error[0] && res->exit != TASKRUN_UNREACHABLE &&
		    res->exit != TASKRUN_USAGE;
	if (well && (ev->ack_upto || ev->ack_rescan)) {
		int rc = manifest_events_ack(s->m, t->id, ev->ack_upto, ev->ack_rescan);
		if (rc)
			log_warn("task %u: cannot acknowledge its events: %s", t->id,
				 strerror(-rc));
	}
	struct manifest_events_state st = {0};
	int rc = manifest_events_state(s->m, t->id, &st);
	pthread_mutex_lock(&s->lock);
	if (!rc) {
		t->ev_pending = st.count || st.rescan;
		t->ev_backlog = st.count;
		if (st.count < t->def.notify_backlog / 2)
			t->ev_backlog_told = false;
	}
	if (!well && t->ev_running)
		t->ev_hold_until = svc_now() + EVENT_HOLD;
	pthread_mutex_unlock(&s->lock);
	intake_batch_release(&ev->batch);
}

/* With s->lock held: events came for t (accepted ones are in the journal);
 * those noted go to its ring of recent events. */
static void count_locked(struct service *s, struct atask *t, const struct intake_counts *c,
			 unsigned refused)
{
	t->ev_refused += refused;
	t->ev_received += c->accepted;
	t->ev_ignored += c->ignored;
	if (c->seen && evring_count(c->seen)) {
		if (!t->evlog)
			t->evlog = evring_new();
		evring_move(t->evlog, c->seen);
	}
	if (c->accepted || c->rescan) {
		t->ev_pending = true;
		t->ev_backlog = c->backlog;
		svc_changed_locked(s);
	}
	if (c->backlog >= t->def.notify_backlog && !t->ev_backlog_told && t->def.n_notify) {
		t->ev_backlog_told = true;
		notifier_post(s->notifier, &t->def, s->cfg->cfg, "event_backlog",
			      json_pack("{s:I, s:I}", "backlog", (json_int_t)c->backlog,
					"threshold", (json_int_t)t->def.notify_backlog));
	}
}

/* ---- notifications of runs ---- */

void svc_notify_run(struct service *s, const struct taskdef *def, const struct config *cfg,
		    const struct run_record *rec, const struct taskrun_result *res)
{
	const char *event = NULL;
	if (!strcmp(rec->result, "error"))
		event = "run_failed";
	else if (!strcmp(rec->result, "failed"))
		event = res->failed ? "objects_failed" : "run_failed";
	else if (!strcmp(rec->result, "ok") && strcmp(rec->trigger, "events"))
		event = "run_finished"; /* not for every event run: they can be many */
	if (!event || !def->n_notify)
		return;
	json_t *p = json_pack("{s:o}", "run", service_run_json(rec));
	if (res->error[0])
		json_object_set_new(p, "error", json_string(res->error));
	notifier_post(s->notifier, def, cfg, event, p);
}

/* ---- webhooks ---- */

static int webhook_task_locked(struct service *s, const char *name, struct atask **out,
			       struct dth_err *err)
{
	struct atask *t = *out = svc_find_locked(s, name);
	if (!t)
		return err_set(err, -ENOENT, "no task called %s", name);
	if (t->def_error)
		return err_set(err, -EINVAL, "task %s cannot run: %s", name, t->def_error);
	if (!t->have_id)
		return err_set(err, -ENODATA, "task %s has no records", name);
	if (taskdef_events(&t->def, NULL) != TASKDEF_EVENTS_WEBHOOK)
		return err_set(err, -EPERM, "task %s does not take webhook events (events = %s)",
			       name, t->def.events ? t->def.events : "none");
	return 0;
}

int service_task_events(struct service *s, const char *name, const char *body, size_t len,
			json_t **out, struct dth_err *err)
{
	struct atask *t;
	struct taskdef def;
	pthread_mutex_lock(&s->lock);
	int rc = webhook_task_locked(s, name, &t, err);
	uint32_t id = t ? t->id : 0;
	if (!rc)
		taskdef_copy(&def, &t->def);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return rc;
	struct intake_counts c;
	struct intake_note note = {evring_new(),
				   def.kind == TASKDEF_IMAGE ? "registry" : "webhook"};
	rc = intake_add(&def, s->m, id, body, len, &note, &c, err);
	taskdef_release(&def);
	c.seen = note.ring;
	pthread_mutex_lock(&s->lock);
	t = svc_find_locked(s, name);
	if (t && t->id == id)
		count_locked(s, t, &c, rc == -EINVAL || rc == -EFBIG);
	pthread_mutex_unlock(&s->lock);
	evring_free(note.ring);
	if (!rc)
		*out = json_pack("{s:I, s:I, s:I}", "accepted", (json_int_t)c.accepted, "ignored",
				 (json_int_t)c.ignored, "backlog", (json_int_t)c.backlog);
	return rc;
}

/* ---- event sources: SQS pollers and inotify watchers ---- */

struct pollref {
	struct service *s;
	char *name;
	uint32_t id;
};

/* One task's source of events: the reference its thread calls back with,
 * and the poller or the watcher. */
struct evsource {
	struct pollref ref;
	struct sqspoll *sqs;
	struct dirwatch *dw;
};

static struct atask *ref_task_locked(struct pollref *r)
{
	struct atask *t = svc_find_locked(r->s, r->name);
	return t && t->id == r->id ? t : NULL;
}

static void poll_kick(void *ctx, const struct intake_counts *c, unsigned refused)
{
	struct pollref *r = ctx;
	pthread_mutex_lock(&r->s->lock);
	struct atask *t = ref_task_locked(r);
	if (t)
		count_locked(r->s, t, c, refused);
	pthread_mutex_unlock(&r->s->lock);
}

static bool poll_active(void *ctx)
{
	struct pollref *r = ctx;
	pthread_mutex_lock(&r->s->lock);
	struct atask *t = ref_task_locked(r);
	bool on = t && !t->user_stopped && t->def.enabled && !r->s->shutting_down;
	pthread_mutex_unlock(&r->s->lock);
	return on;
}

static bool wants_poller(const struct service *s, const struct atask *t)
{
	int k = taskdef_events(&t->def, NULL);
	return !s->shutting_down && !t->removing && !t->def_error && t->have_id &&
	       (k == TASKDEF_EVENTS_SQS || k == TASKDEF_EVENTS_INOTIFY);
}

void svc_poller_retire_locked(struct service *s, struct atask *t)
{
	if (!t->poller)
		return;
	sqspoll_signal(t->poller->sqs);
	dirwatch_signal(t->poller->dw);
	s->retired = xrealloc(s->retired, (s->n_retired + 1) * sizeof(*s->retired));
	s->retired[s->n_retired++] = t->poller;
	t->poller = NULL;
}

static void evsource_free(struct evsource *v)
{
	sqspoll_free(v->sqs);
	dirwatch_free(v->dw);
	free(v->ref.name);
	free(v);
}

static void start_locked(struct service *s, struct atask *t)
{
	struct evsource *v = xcalloc(1, sizeof(*v));
	v->ref.s = s;
	v->ref.name = xstrdup(t->def.name);
	v->ref.id = t->id;
	struct dth_err err;
	err_clear(&err);
	if (taskdef_events(&t->def, NULL) == TASKDEF_EVENTS_INOTIFY) {
		struct dirwatch_opts o = {.name = t->def.name,
					  .root = t->def.source,
					  .m = s->m,
					  .task = t->id,
					  .kick = poll_kick,
					  .ctx = &v->ref};
		v->dw = dirwatch_start(&o, &err);
	} else {
		struct sqspoll_opts o = {.def = &t->def,
					 .cfg = s->cfg->cfg,
					 .m = s->m,
					 .task = t->id,
					 .kick = poll_kick,
					 .active = poll_active,
					 .ctx = &v->ref};
		v->sqs = sqspoll_start(&o, &err);
	}
	if (!v->sqs && !v->dw) {
		log_warn("task %s: no %s: %s", t->def.name,
			 v->dw || taskdef_events(&t->def, NULL) == TASKDEF_EVENTS_INOTIFY
			     ? "inotify watcher"
			     : "SQS poller",
			 err.message);
		evsource_free(v);
		return;
	}
	t->poller = v;
	if (v->dw)
		log_info("task %s: watching %s (%llu directories)", t->def.name, t->def.source,
			 (unsigned long long)dirwatch_watches(v->dw));
	else
		log_info("task %s: polling %s", t->def.name, t->def.events + 4);
}

void svc_pollers_locked(struct service *s, bool force)
{
	for (struct atask *t = s->tasks; t; t = t->next) {
		bool want = !force && wants_poller(s, t);
		if (t->poller && (!want || t->poller_def_gen != t->def_gen))
			svc_poller_retire_locked(s, t);
		if (want && !t->poller) {
			start_locked(s, t);
			t->poller_def_gen = t->def_gen;
		}
	}
}

void svc_pollers_reap(struct service *s)
{
	pthread_mutex_lock(&s->lock);
	struct evsource **list = s->retired;
	size_t n = s->n_retired;
	s->retired = NULL;
	s->n_retired = 0;
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < n; i++)
		evsource_free(list[i]);
	free(list);
}
