/* The agent's core: tasks, schedules, lifecycles and runs (see service.h).
 *
 * Threads: the scheduler (one) starts a run thread per task run, joins the
 * ones that ended, samples the tasks' time series every SERIES_INTERVAL
 * (svc_history.c) and sleeps until the next due time, the next sample or a
 * change; a round of remote checks has its own threads (rcheck.h); the
 * drop-in watcher (one) reloads on changes in tasks.d; run threads (one per
 * running task) run taskrun_run without the lock and take it to publish the
 * result. The HTTP server's threads call the API functions.
 *
 * Locking: s->lock guards the task list and every atask field, except live
 * (atomic counters the engines update; zeroed under the lock before a run
 * thread exists) and stop_flag (written under the lock, read by the
 * engines). rcheck's lock is taken after s->lock, never the other way.
 * Nothing blocks on I/O with the lock held but short manifest transactions
 * (task records, definitions). s->gen is bumped under the lock
 * (changed_locked) and read without it.
 *
 * Priorities: run threads lower theirs (RUN_NICE, inherited by the engines'
 * threads), so a round of many runs starting at once does not starve the
 * API's threads of CPU; the scheduler trims the heap and unmaps the
 * manifest's pages once no run is left.
 *
 * Invariants: a task has at most one run thread (running); a task being
 * removed (removing) stays in the list until its run thread has been joined;
 * next_due is INT64_MAX while the task is stopped, broken or has no further
 * run. */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent/evring.h"
#include "agent/fairshare.h"
#include "agent/notify.h"
#include "agent/rcheck.h"
#include "agent/schedule.h"
#include "agent/series.h"
#include "agent/service_i.h"
#include "agent/taskset.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"

#define DEFAULT_WORKERS	 32
#define DEFAULT_SCHEDULE "every 1h"
#define RUN_NICE	 10

const char *atask_state_name(int state)
{
	static const char *const names[] = {"idle", "running", "stopping", "stopped", "error"};
	return state >= 0 && state < AT__COUNT ? names[state] : "?";
}

int64_t svc_now(void)
{
	return (int64_t)time(NULL);
}

struct atask *svc_find_locked(struct service *s, const char *name)
{
	for (struct atask *t = s->tasks; t; t = t->next)
		if (!t->removing && !strcmp(t->def.name, name))
			return t;
	return NULL;
}

static void insert_locked(struct service *s, struct atask *t)
{
	struct atask **pp = &s->tasks;
	while (*pp && strcmp((*pp)->def.name, t->def.name) < 0)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
}

static void unlink_locked(struct service *s, struct atask *t)
{
	for (struct atask **pp = &s->tasks; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			return;
		}
}

static void atask_free(struct atask *t)
{
	if (!t)
		return;
	taskdef_release(&t->def);
	if (t->pending) {
		taskdef_release(t->pending);
		free(t->pending);
	}
	free(t->pending_error);
	free(t->def_error);
	schedule_free(t->sched);
	fairshare_leave(t->fair);
	series_free(t->series);
	evring_free(t->evlog);
	free(t);
}

/* With s->lock held: a client changed something (a definition, a state
 * through an action, a reload). Wakes the scheduler and bumps the
 * generation (service_generation), so the API's task list shows the change
 * at once (tasklist.h). */
void svc_changed_locked(struct service *s)
{
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&s->wake);
}

static void set_error(struct atask *t, const char *code, const char *msg)
{
	t->state = AT_ERROR;
	str_copy_fit(t->err_code, code, sizeof(t->err_code));
	str_copy_msg(t->err_msg, msg, sizeof(t->err_msg));
}

/* The schedule of def (its default when not given): 0 or -EINVAL. */
static int parse_schedule(const struct taskdef *def, struct schedule **out, struct dth_err *err)
{
	int rc = schedule_parse(def->schedule ? def->schedule : DEFAULT_SCHEDULE, def->timezone,
				out, err);
	if (rc)
		err_prefix(err, "schedule");
	return rc;
}

/* Make sure the task has a manifest record (so the API shows its counts
 * before its first run); read what the record knows. */
static void bind_record(struct service *s, struct atask *t)
{
	struct task_record rec;
	struct dth_err err;
	err_clear(&err);
	if (taskrun_record_new(&t->def, &rec, &err)) {
		set_error(t, "definition", err.message);
		return;
	}
	bool created;
	int rc = manifest_task_ensure(s->m, &rec, &t->id, &created);
	if (!rc)
		rc = manifest_task_find(s->m, t->def.name, &t->id, &rec);
	if (rc) {
		set_error(t, "manifest", strerror(-rc));
		return;
	}
	t->have_id = true;
	if (!created && strcmp(rec.kind, taskdef_kind_name(t->def.kind))) {
		char msg[400];
		msg_snprintf(msg, sizeof(msg),
			     "the manifest holds a %s task called %s: choose another name",
			     rec.kind, t->def.name);
		set_error(t, "definition", msg);
		t->have_id = false;
		return;
	}
	t->last_start = rec.last_run_start;
	t->last_end = rec.last_run_end;
	t->last_success = rec.last_success;
	t->last_seq = rec.last_run;
	/* "stopped" is written by a stop (the agent's, or an interrupted dth
	 * sync); a run cut short by the agent's shutdown is written back "idle". */
	t->user_stopped = !strcmp(rec.state, "stopped");
	struct manifest_events_state st;
	if (manifest_events_state(s->m, t->id, &st) == 0) {
		t->ev_pending = st.count || st.rescan;
		t->ev_backlog = st.count;
	}
}

/* A new task from an entry of a task set (or an API definition). */
static struct atask *atask_new(struct service *s, const struct taskdef *def, const char *error,
			       const char *field)
{
	struct atask *t = xcalloc(1, sizeof(*t));
	taskdef_copy(&t->def, def);
	t->next_due = INT64_MAX;
	t->fair = fairshare_join(s->fair);
	str_copy_fit(t->trigger, "schedule", sizeof(t->trigger));
	struct dth_err err;
	err_clear(&err);
	if (error) {
		t->def_error = xstrdup(error);
		t->def_field = field;
		set_error(t, "definition", error);
		return t;
	}
	if (parse_schedule(&t->def, &t->sched, &err)) {
		t->def_error = xstrdup(err.message);
		t->def_field = "schedule";
		set_error(t, "definition", err.message);
		return t;
	}
	bind_record(s, t);
	if (t->state == AT_ERROR)
		return t;
	t->state = t->user_stopped || !t->def.enabled ? AT_STOPPED : AT_IDLE;
	return t;
}

/* ---- the config ---- */

static struct cfgref *cfg_hold_locked(struct service *s)
{
	s->cfg->refs++;
	return s->cfg;
}

static void cfg_drop_locked(struct cfgref *c)
{
	if (c && --c->refs == 0) {
		config_free(c->cfg);
		free(c);
	}
}

static struct cfgref *cfg_load(const char *path, struct dth_err *err)
{
	struct config *cfg = config_load(path, err);
	if (!cfg)
		return NULL;
	struct cfgref *c = xcalloc(1, sizeof(*c));
	c->cfg = cfg;
	c->refs = 1;
	return c;
}

/* ---- the task record ---- */

/* Write state (and error) into the task's record. */
static void record_state(struct service *s, struct atask *t, const char *state, const char *error)
{
	if (!t->have_id)
		return;
	struct task_record rec;
	uint32_t id;
	if (manifest_task_find(s->m, t->def.name, &id, &rec) || id != t->id)
		return;
	str_copy_fit(rec.state, state, sizeof(rec.state));
	if (error)
		str_copy_msg(rec.error, error, sizeof(rec.error));
	if (manifest_task_put(s->m, t->id, &rec))
		log_warn("task %s: could not update its record", t->def.name);
}

/* ---- runs ---- */

struct run {
	struct service *s;
	struct atask *t;
	struct taskdef def; /* a copy: the task's may change meanwhile */
	struct cfgref *cfg;
	char trigger[16];
	pthread_mutex_t lock; /* rec's errors (failure hooks come from any thread) */
	struct run_record rec;
	uint64_t seq;
	struct evrun ev; /* the events it acts on (svc_events.c) */
};

static void run_on_failure(void *ctx, const char *what, size_t len, const char *reason)
{
	struct run *r = ctx;
	struct buf msg = BUF_INIT;
	buf_add_printable(&msg, what, len);
	buf_addf(&msg, ": %s", reason);
	pthread_mutex_lock(&r->lock);
	codec_run_add_error(&r->rec, msg.data);
	pthread_mutex_unlock(&r->lock);
	buf_release(&msg);
}

static const char *result_of(const struct taskrun_result *res)
{
	if (res->interrupted)
		return "stopped";
	if (res->exit == TASKRUN_DONE)
		return "ok";
	return res->error[0] ? "error" : "failed";
}

static void run_fill(struct run *r, const struct taskrun_result *res)
{
	struct run_record *rec = &r->rec;
	rec->ended = svc_now();
	str_copy_fit(rec->result, result_of(res), sizeof(rec->result));
	rec->exit_status = res->exit;
	rec->listed = res->listed;
	rec->planned = res->planned;
	rec->transferred = res->transferred;
	rec->skipped = res->skipped;
	rec->failed = res->failed;
	rec->deleted = res->deleted;
	rec->bytes = res->bytes;
	rec->object_bytes = res->object_bytes;
	rec->requests = res->requests;
	if (res->error[0] && !res->interrupted) {
		/* The run's own error goes first. */
		struct run_record tmp = *rec;
		tmp.n_errors = 0;
		codec_run_add_error(&tmp, res->error);
		for (uint32_t i = 0; i < rec->n_errors; i++)
			codec_run_add_error(&tmp, rec->errors[i]);
		*rec = tmp;
	}
}

/* The run's sequence in the task record (taskrun wrote the rest). */
static void run_record_end(struct run *r)
{
	struct service *s = r->s;
	struct task_record rec;
	uint32_t id;
	if (!r->seq || manifest_task_find(s->m, r->def.name, &id, &rec))
		return;
	rec.last_run = r->seq;
	if (manifest_task_put(s->m, id, &rec))
		log_warn("task %s: could not update its record", r->def.name);
}

static int result_index(const char *result)
{
	static const char *const names[] = {"ok", "failed", "stopped", "error"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(result, names[i]))
			return i;
	return 3;
}

/* With s->lock held: the run of t ended with res. */
static void run_publish_locked(struct run *r, const struct taskrun_result *res)
{
	struct service *s = r->s;
	struct atask *t = r->t;
	struct atask_totals *tt = &t->totals;
	tt->transferred += res->transferred;
	tt->bytes += res->bytes;
	tt->failed += res->failed;
	tt->skipped += res->skipped;
	tt->deleted += res->deleted;
	tt->requests += res->requests;
	tt->runs[result_index(r->rec.result)]++;
	tt->last_duration = res->seconds;
	t->last_end = r->rec.ended;
	t->last_seq = r->seq;
	if (!strcmp(r->rec.result, "ok"))
		t->last_success = r->rec.ended;
	if (t->state == AT_STOPPING || (res->interrupted && t->user_stopped)) {
		t->state = AT_STOPPED;
	} else if (res->interrupted) {
		t->state = AT_IDLE; /* the agent is shutting down: resume at the next start */
	} else if (res->exit != TASKRUN_DONE) {
		char msg[512];
		if (res->error[0])
			str_copy_msg(msg, res->error, sizeof(msg));
		else
			msg_snprintf(msg, sizeof(msg), "%llu objects failed in the last run",
				     (unsigned long long)res->failed);
		set_error(t, res->error[0] ? "run_failed" : "objects_failed", msg);
	} else {
		t->state = AT_IDLE;
		t->err_code[0] = t->err_msg[0] = '\0';
	}
	t->finished = true;
	pthread_cond_broadcast(&s->wake);
}

static void *run_main(void *arg)
{
	struct run *r = arg;
	struct service *s = r->s;
	struct atask *t = r->t;
	/* Transfers yield the CPU to the API and the scheduler: a run's threads
	 * (this one and the ones it starts, which inherit it) get a lower
	 * priority. On an idle machine they still take all of it. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), RUN_NICE))
		log_debug("task %s: cannot lower the run's priority: %s", r->def.name,
			  strerror(errno));
	r->rec.started = svc_now();
	str_copy_fit(r->rec.trigger, r->trigger, sizeof(r->rec.trigger));
	if (manifest_run_begin(s->m, t->id, &r->rec, &r->seq))
		log_warn("task %s: could not record the run's start", r->def.name);
	log_info("task %s: run %llu started (%s)", r->def.name, (unsigned long long)r->seq,
		 r->trigger);
	struct taskrun_opts o = {
	    .def = &r->def,
	    .cfg = r->cfg->cfg,
	    .manifest = s->m,
	    .rebind = true,
	    .stop = &t->stop_flag,
	    .live = &t->live,
	    .fair = t->fair,
	    .retry_failed = !strcmp(r->trigger, "retry"),
	    .on_failure = run_on_failure,
	    .hook_ctx = r,
	};
	evrun_begin(s, t, r->trigger, &o, &r->ev);
	struct taskrun_result res;
	taskrun_run(&o, &res);
	evrun_end(s, t, &res, &r->ev);
	run_fill(r, &res);
	if (r->seq && manifest_run_put(s->m, t->id, r->seq, &r->rec))
		log_warn("task %s: could not record the run's end", r->def.name);
	run_record_end(r);
	r->rec.seq = r->seq;
	svc_notify_run(s, &r->def, r->cfg->cfg, &r->rec, &res);
	log_info(
	    "task %s: run %llu ended: %s, %llu copied, %llu failed, %llu deleted in %.1f s%s%s",
	    r->def.name, (unsigned long long)r->seq, r->rec.result,
	    (unsigned long long)res.transferred, (unsigned long long)res.failed,
	    (unsigned long long)res.deleted, res.seconds, res.error[0] ? ": " : "", res.error);
	pthread_mutex_lock(&s->lock);
	run_publish_locked(r, &res);
	bool shutdown_stop = res.interrupted && t->state == AT_IDLE;
	cfg_drop_locked(r->cfg);
	pthread_mutex_unlock(&s->lock);
	if (shutdown_stop)
		record_state(s, t, "idle", NULL);
	taskrun_result_release(&res);
	taskdef_release(&r->def);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return NULL;
}

/* With s->lock held: start a run of t now. */
static void run_start_locked(struct service *s, struct atask *t)
{
	struct run *r = xcalloc(1, sizeof(*r));
	r->s = s;
	r->t = t;
	taskdef_copy(&r->def, &t->def);
	r->cfg = cfg_hold_locked(s);
	str_copy_fit(r->trigger, t->trigger, sizeof(r->trigger));
	pthread_mutex_init(&r->lock, NULL);
	svc_series_restart_locked(t);
	t->stop_flag = 0;
	t->run_now = false;
	t->ev_running = !strcmp(t->trigger, "events");
	t->state = AT_RUNNING;
	if (!t->ev_running) /* the schedule counts from full runs only */
		t->last_start = svc_now();
	t->run_started = now_mono();
	str_copy_fit(t->trigger, "schedule", sizeof(t->trigger));
	if (pthread_create(&t->thread, NULL, run_main, r)) {
		set_error(t, "internal", "cannot start a thread");
		cfg_drop_locked(r->cfg);
		taskdef_release(&r->def);
		free(r);
		return;
	}
	t->running = true;
	t->finished = false;
}

/* ---- the scheduler ---- */

static bool schedulable(const struct atask *t)
{
	return !t->def_error && !t->removing && !t->user_stopped && t->def.enabled &&
	       (t->state == AT_IDLE || t->state == AT_ERROR) && t->have_id;
}

/* The next due time of an idle task from its last start. */
static void plan_next_locked(struct atask *t, int64_t now)
{
	if (!t->sched || !schedulable(t)) {
		t->next_due = INT64_MAX;
		return;
	}
	t->next_due = schedule_next(t->sched, t->last_start > 0 ? t->last_start : -1, now);
}

/* The next due time when the agent starts or a stopped task is started: a
 * task whose last run did not end well (stopped, killed, failed) runs at
 * once, to resume; others keep their schedule. */
static void plan_resume_locked(struct atask *t, int64_t now)
{
	plan_next_locked(t, now);
	if (t->next_due != INT64_MAX && t->last_start > 0 && t->last_success < t->last_start)
		t->next_due = now;
}

static void take_pending_locked(struct service *s, struct atask *t);
static void remove_now_locked(struct service *s, struct atask *t);

/* A run thread of t has ended: join it, then apply what waited for it.
 * false when t is gone (it was being removed). */
static bool reap_locked(struct service *s, struct atask *t, int64_t now)
{
	pthread_join(t->thread, NULL);
	t->running = false;
	t->finished = false;
	s->trim_due = true;
	if (t->removing) {
		remove_now_locked(s, t);
		return false;
	}
	if (t->pending)
		take_pending_locked(s, t);
	if (t->next_due < now || t->next_due == INT64_MAX)
		plan_next_locked(t, now);
	return true;
}

/* One pass over the tasks: reap, count overlaps, start what is due. Returns
 * the earliest next due time. */
static int64_t sched_pass_locked(struct service *s, int64_t now)
{
	int64_t soonest = INT64_MAX;
	struct atask *t = s->tasks, *next;
	for (; t; t = next) {
		next = t->next;
		if (t->running && t->finished && !reap_locked(s, t, now))
			continue;
		if (t->running) {
			/* a schedule due during an event run starts once it ends */
			while (t->sched && t->next_due <= now && !t->ev_running) {
				t->totals.overlaps++;
				log_info(
				    "task %s: a run due at %lld is skipped: the last one goes on",
				    t->def.name, (long long)t->next_due);
				t->next_due = schedule_next(t->sched, t->next_due, now);
			}
		} else if (schedulable(t) && (t->run_now || t->next_due <= now)) {
			run_start_locked(s, t);
			t->next_due = t->sched
					  ? schedule_next(t->sched, t->last_start, t->last_start)
					  : INT64_MAX;
		} else if (t->run_now && !t->removing && !t->def_error && t->have_id) {
			run_start_locked(s, t); /* run now also runs a stopped task */
			t->next_due = INT64_MAX;
		} else if (schedulable(t) && t->ev_pending && now >= t->ev_hold_until) {
			str_copy_fit(t->trigger, "events", sizeof(t->trigger));
			run_start_locked(s, t);
		}
		if (t->next_due < soonest)
			soonest = t->next_due;
	}
	return soonest;
}

static unsigned running_count_locked(struct service *s);

static void *sched_main(void *arg)
{
	struct service *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->shutting_down) {
		int64_t now = svc_now();
		int64_t soonest = sched_pass_locked(s, now);
		svc_pollers_locked(s, false);
		if (s->n_retired) {
			pthread_mutex_unlock(&s->lock);
			svc_pollers_reap(s);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		if (s->trim_due && !running_count_locked(s)) {
			/* Every run ended: what their threads freed goes back to
			 * the system (glibc keeps it in its arenas otherwise), and
			 * the manifest pages the runs read leave the agent's
			 * resident set (they stay in the page cache). */
			s->trim_due = false;
			pthread_mutex_unlock(&s->lock);
			malloc_trim(0);
			int rc = manifest_unmap_pages(s->m);
			if (rc)
				log_debug("manifest pages stay mapped: %s", strerror(-rc));
			pthread_mutex_lock(&s->lock);
			continue;
		}
		/* Wake at the next due time (at most a minute away, so a clock
		 * change is noticed) or the next sample of the time series, or
		 * when told. */
		int64_t until = soonest < now + 60 ? soonest : now + 60;
		int64_t sample_at = svc_series_tick_locked(s, now);
		if (until > sample_at)
			until = sample_at;
		if (until < now + 1)
			until = now + 1;
		struct timespec ts = {(time_t)until, 0};
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- definitions: add, change, remove ---- */

/* With s->lock held: purge a task's records (purge requested with delete). */
static void purge_locked(struct service *s, struct atask *t)
{
	struct dth_err err;
	err_clear(&err);
	if (t->have_id && manifest_task_purge(s->m, t->id, &err))
		log_error("task %s: purging its records: %s", t->def.name, err.message);
	else if (t->have_id)
		log_info("task %s: its records are purged", t->def.name);
}

static void remove_now_locked(struct service *s, struct atask *t)
{
	svc_poller_retire_locked(s, t);
	unlink_locked(s, t);
	if (t->purge)
		purge_locked(s, t);
	else if (t->def.origin == TASKDEF_FROM_API && t->have_id &&
		 manifest_taskdef_del(s->m, t->id))
		log_warn("task %s: could not remove its definition", t->def.name);
	log_info("task %s: removed", t->def.name);
	atask_free(t);
}

/* Remove t now, or once its run has stopped. */
static void remove_locked(struct service *s, struct atask *t)
{
	svc_changed_locked(s);
	if (!t->running) {
		remove_now_locked(s, t);
		return;
	}
	t->removing = true;
	t->stop_flag = 1;
	t->state = AT_STOPPING;
}

/* Put a new definition in place (t not running). */
static void replace_def_locked(struct service *s, struct atask *t, struct atask *fresh)
{
	taskdef_release(&t->def);
	t->def = fresh->def;
	memset(&fresh->def, 0, sizeof(fresh->def));
	free(t->def_error);
	t->def_error = fresh->def_error;
	fresh->def_error = NULL;
	t->def_field = fresh->def_field;
	schedule_free(t->sched);
	t->sched = fresh->sched;
	fresh->sched = NULL;
	t->have_id = fresh->have_id;
	t->id = fresh->id;
	if (fresh->state == AT_ERROR) {
		set_error(t, fresh->err_code, fresh->err_msg);
	} else if (t->state == AT_ERROR && !strcmp(t->err_code, "definition")) {
		t->state = AT_IDLE;
		t->err_code[0] = t->err_msg[0] = '\0';
	}
	if (t->state != AT_ERROR && !t->def.enabled)
		t->state = AT_STOPPED;
	else if (t->state == AT_STOPPED && t->def.enabled && !t->user_stopped)
		t->state = AT_IDLE;
	plan_next_locked(t, svc_now());
	t->def_gen++;
	log_info("task %s: definition changed", t->def.name);
	(void)s;
}

static void take_pending_locked(struct service *s, struct atask *t)
{
	struct atask *fresh = atask_new(s, t->pending, t->pending_error, t->pending_field);
	taskdef_release(t->pending);
	free(t->pending);
	free(t->pending_error);
	t->pending = NULL;
	t->pending_error = NULL;
	replace_def_locked(s, t, fresh);
	atask_free(fresh);
}

static bool same_def(const struct taskdef *a, const struct taskdef *b)
{
	json_t *ja = taskdef_to_json(a), *jb = taskdef_to_json(b);
	bool same = json_equal(ja, jb);
	json_decref(ja);
	json_decref(jb);
	return same;
}

/* With s->lock held: make the file-defined tasks those of ts. */
static void apply_taskset_locked(struct service *s, const struct taskset *ts)
{
	struct atask *t = s->tasks, *next;
	for (; t; t = next) { /* gone from the files */
		next = t->next;
		if (t->def.origin != TASKDEF_FROM_API && !t->removing &&
		    !taskset_find(ts, t->def.name))
			remove_locked(s, t);
	}
	for (size_t i = 0; i < ts->n; i++) {
		const struct taskset_entry *e = &ts->v[i];
		if (taskset_find(ts, e->def.name) != e)
			continue; /* a second definition: the first one's entry says so */
		t = svc_find_locked(s, e->def.name);
		if (t && t->def.origin == TASKDEF_FROM_API) {
			log_error("%s: task %s: a task created through the API has that name; the "
				  "file's definition is ignored",
				  e->def.origin_where, e->def.name);
			continue;
		}
		bool changed =
		    !t || !!t->def_error != !!e->error ||
		    (e->error ? strcmp(t->def_error, e->error) : !same_def(&t->def, &e->def));
		if (!changed)
			continue;
		struct atask *fresh = atask_new(s, &e->def, e->error, e->field);
		if (!t) {
			insert_locked(s, fresh);
			plan_next_locked(fresh, svc_now());
			log_info("task %s: added (%s)", fresh->def.name, fresh->def.origin_where);
		} else if (t->running) {
			if (t->pending) {
				taskdef_release(t->pending);
				free(t->pending);
			}
			free(t->pending_error);
			t->pending = xmalloc(sizeof(*t->pending));
			taskdef_copy(t->pending, &e->def);
			t->pending_error = e->error ? xstrdup(e->error) : NULL;
			t->pending_field = e->field;
			atask_free(fresh);
		} else {
			replace_def_locked(s, t, fresh);
			atask_free(fresh);
		}
	}
	svc_changed_locked(s);
}

/* ---- loading ---- */

/* The tasks of the files: config sections and drop-ins. */
static int read_taskset(struct service *s, const struct config *cfg, struct taskset *ts,
			struct dth_err *err)
{
	taskset_init(ts);
	taskset_add_config(ts, cfg);
	if (s->dropin_dir && taskset_add_dropin(ts, s->dropin_dir, err)) {
		taskset_release(ts);
		return -EIO;
	}
	return 0;
}

struct api_load {
	struct service *s;
	struct buf text;
};

/* A task of the manifest with a definition made through the API. */
static int load_api_task(void *ctx, uint32_t id, const struct task_record *rec)
{
	struct api_load *l = ctx;
	struct service *s = l->s;
	if (!strcmp(rec->state, MANIFEST_TASK_PURGING)) {
		struct dth_err err;
		err_clear(&err);
		log_info("task %s: finishing an interrupted purge", rec->name);
		if (manifest_task_purge(s->m, id, &err))
			log_error("task %s: purge: %s", rec->name, err.message);
		return 0;
	}
	if (manifest_taskdef_get(s->m, id, &l->text))
		return 0; /* a task of dth sync, or of a file */
	json_error_t jerr;
	json_t *j = json_loadb(l->text.data, l->text.len, 0, &jerr);
	struct taskdef def;
	struct dth_err err;
	err_clear(&err);
	const char *field = NULL;
	int rc = j ? taskdef_from_json(j, &def, &err, &field) : -EINVAL;
	if (!j)
		err_set(&err, -EINVAL, "its stored definition is not JSON");
	if (!rc)
		rc = taskdef_check(&def, false, &err, &field);
	if (rc && !def.name)
		def.name = xstrdup(rec->name);
	def.origin = TASKDEF_FROM_API;
	if (svc_find_locked(s, def.name)) {
		log_error("task %s: defined in a file and through the API; the file's is used",
			  def.name);
	} else {
		struct atask *t = atask_new(s, &def, rc ? err.message : NULL, field);
		insert_locked(s, t);
	}
	taskdef_release(&def);
	json_decref(j);
	return 0;
}

static int load_tasks(struct service *s, struct dth_err *err)
{
	struct taskset ts;
	if (read_taskset(s, s->cfg->cfg, &ts, err))
		return -EIO;
	pthread_mutex_lock(&s->lock);
	apply_taskset_locked(s, &ts);
	struct api_load l = {s, BUF_INIT};
	int rc = manifest_task_each(s->m, load_api_task, &l);
	buf_release(&l.text);
	int64_t now = svc_now();
	for (struct atask *t = s->tasks; t; t = t->next)
		plan_resume_locked(t, now);
	svc_changed_locked(s);
	pthread_mutex_unlock(&s->lock);
	taskset_release(&ts);
	if (rc)
		return err_set(err, rc, "reading the tasks of the manifest: %s", strerror(-rc));
	return 0;
}

struct service *service_new(const struct service_opts *o, struct dth_err *err)
{
	struct service *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	s->m = o->manifest;
	s->listen = o->listen;
	s->workers = o->workers ? o->workers : DEFAULT_WORKERS;
	s->fair = fairshare_new(s->workers);
	s->watch_fd = -1;
	s->watch_pipe[0] = s->watch_pipe[1] = -1;
	s->started_at = svc_now();
	s->started_mono = now_mono();
	s->rcheck = rcheck_new();
	s->cfg = cfg_load(o->config_path, err);
	if (!s->cfg) {
		service_free(s);
		return NULL;
	}
	const char *path = config_path(s->cfg->cfg);
	s->config_path = path ? xstrdup(path) : NULL;
	s->dropin_dir = o->dropin_dir ? xstrdup(o->dropin_dir) : taskset_dropin_dir(path);
	if (load_tasks(s, err)) {
		service_free(s);
		return NULL;
	}
	return s;
}

void service_set_token(struct service *s, const struct token *token)
{
	struct notify_opts no = {.token = token};
	pthread_mutex_lock(&s->lock);
	if (!s->notifier)
		s->notifier = notifier_new(&no);
	pthread_mutex_unlock(&s->lock);
}

const struct config *service_config(struct service *s)
{
	return s->cfg->cfg;
}

int service_reload(struct service *s, struct dth_err *err)
{
	struct cfgref *fresh = cfg_load(s->config_path, err);
	if (!fresh) {
		pthread_mutex_lock(&s->lock);
		s->reload_errors++;
		pthread_mutex_unlock(&s->lock);
		return -EINVAL;
	}
	struct taskset ts;
	if (read_taskset(s, fresh->cfg, &ts, err)) {
		pthread_mutex_lock(&s->lock);
		s->reload_errors++;
		cfg_drop_locked(fresh);
		pthread_mutex_unlock(&s->lock);
		return -EIO;
	}
	pthread_mutex_lock(&s->lock);
	cfg_drop_locked(s->cfg);
	s->cfg = fresh;
	apply_taskset_locked(s, &ts);
	s->reloads++;
	pthread_mutex_unlock(&s->lock);
	taskset_release(&ts);
	log_info("configuration reloaded");
	return 0;
}

/* ---- the drop-in directory's watcher ---- */

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB |        \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define WATCH_DEBOUNCE_MS 200

/* Watch the directory, or its parent until it is made. */
static int watch_add(struct service *s, bool *on_parent)
{
	int wd = inotify_add_watch(s->watch_fd, s->dropin_dir, WATCH_MASK);
	*on_parent = false;
	if (wd >= 0 || errno != ENOENT)
		return wd;
	char *parent = xstrdup(s->dropin_dir);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	wd = inotify_add_watch(s->watch_fd, slash ? parent : ".",
			       IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
	free(parent);
	*on_parent = wd >= 0;
	return wd;
}

/* The drop-ins changed: reread them with the config in use. */
static void dropin_reload(struct service *s)
{
	struct dth_err err;
	err_clear(&err);
	pthread_mutex_lock(&s->lock);
	struct cfgref *c = cfg_hold_locked(s);
	pthread_mutex_unlock(&s->lock);
	struct taskset ts;
	int rc = read_taskset(s, c->cfg, &ts, &err);
	pthread_mutex_lock(&s->lock);
	if (!rc)
		apply_taskset_locked(s, &ts);
	cfg_drop_locked(c);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		log_error("%s", err.message);
	else
		taskset_release(&ts);
}

/* Wait for events; then for quiet (WATCH_DEBOUNCE_MS), so a file being
 * written is read once, whole. false when told to stop. */
static bool watch_wait(struct service *s)
{
	char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p[2] = {{s->watch_fd, POLLIN, 0}, {s->watch_pipe[0], POLLIN, 0}};
	int timeout = -1;
	bool seen = false;
	for (;;) {
		int n = poll(p, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p[1].revents & POLLIN))
			return false;
		if (n == 0)
			return seen; /* quiet again */
		if (p[0].revents & POLLIN) {
			ssize_t got = read(s->watch_fd, ev, sizeof(ev));
			(void)got;
			seen = true;
			timeout = WATCH_DEBOUNCE_MS;
		}
	}
}

static void *watch_main(void *arg)
{
	struct service *s = arg;
	bool on_parent = s->watch_on_parent;
	int wd = s->watch_wd;
	/* A file dropped between the first load and the watch: read now. */
	dropin_reload(s);
	while (wd >= 0 && watch_wait(s)) {
		if (on_parent || access(s->dropin_dir, F_OK)) {
			inotify_rm_watch(s->watch_fd, wd);
			wd = watch_add(s, &on_parent);
		}
		dropin_reload(s);
	}
	return NULL;
}

static int watch_start(struct service *s, struct dth_err *err)
{
	if (!s->dropin_dir)
		return 0;
	s->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->watch_fd < 0)
		return err_set(err, -errno, "inotify: %s", strerror(errno));
	if (pipe2(s->watch_pipe, O_CLOEXEC))
		return err_set(err, -errno, "pipe: %s", strerror(errno));
	/* Watched before service_start returns (and the agent says it is
	 * ready): no window in which a dropped file goes unseen. */
	s->watch_wd = watch_add(s, &s->watch_on_parent);
	if (s->watch_wd < 0)
		return err_set(err, -errno, "cannot watch it (%s)", strerror(errno));
	if (pthread_create(&s->watch_thread, NULL, watch_main, s))
		return err_set(err, -EAGAIN, "cannot start the drop-in watcher");
	s->watching = true;
	return 0;
}

static void watch_stop(struct service *s)
{
	if (s->watching) {
		(void)!write(s->watch_pipe[1], "x", 1);
		pthread_join(s->watch_thread, NULL);
		s->watching = false;
	}
	if (s->watch_fd >= 0)
		close(s->watch_fd);
	for (int i = 0; i < 2; i++)
		if (s->watch_pipe[i] >= 0)
			close(s->watch_pipe[i]);
	s->watch_fd = s->watch_pipe[0] = s->watch_pipe[1] = -1;
}

/* ---- start and stop ---- */

int service_start(struct service *s, struct dth_err *err)
{
	if (pthread_create(&s->sched_thread, NULL, sched_main, s))
		return err_set(err, -EAGAIN, "cannot start the scheduler");
	s->started = true;
	int rc = watch_start(s, err);
	if (rc)
		log_warn("%s: %s: changes need a reload (SIGHUP)", s->dropin_dir, err->message);
	return 0;
}

static unsigned running_count_locked(struct service *s)
{
	unsigned n = 0;
	for (struct atask *t = s->tasks; t; t = t->next)
		n += t->running && !t->finished;
	return n;
}

unsigned service_shutdown(struct service *s, unsigned timeout_s)
{
	rcheck_stop(s->rcheck); /* its probes are cut short: within about a second */
	watch_stop(s);
	pthread_mutex_lock(&s->lock);
	s->shutting_down = true;
	svc_pollers_locked(s, true); /* each stops within its long poll */
	svc_changed_locked(s);
	for (struct atask *t = s->tasks; t; t = t->next)
		if (t->running)
			t->stop_flag = 1;
	pthread_mutex_unlock(&s->lock);
	if (s->started)
		pthread_join(s->sched_thread, NULL);
	s->started = false;
	svc_pollers_reap(s);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)timeout_s;
	pthread_mutex_lock(&s->lock);
	unsigned left;
	while ((left = running_count_locked(s)) &&
	       pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
		;
	for (struct atask *t = s->tasks; t; t = t->next)
		if (t->running && t->finished) {
			pthread_join(t->thread, NULL);
			t->running = false;
		}
	pthread_mutex_unlock(&s->lock);
	return left;
}

void service_free(struct service *s)
{
	if (!s)
		return;
	if (s->started || s->watching)
		service_shutdown(s, 0);
	pthread_mutex_lock(&s->lock);
	svc_pollers_locked(s, true);
	pthread_mutex_unlock(&s->lock);
	svc_pollers_reap(s);
	rcheck_free(s->rcheck); /* before the config its round may hold */
	struct atask *t = s->tasks, *next;
	for (; t; t = next) {
		next = t->next;
		if (t->running)
			continue; /* still in a run: leak it rather than free under it */
		atask_free(t);
	}
	if (s->cfg && --s->cfg->refs == 0) {
		config_free(s->cfg->cfg);
		free(s->cfg);
	}
	notifier_free(s->notifier);
	fairshare_free(s->fair);
	free(s->config_path);
	free(s->dropin_dir);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}

/* ---- the API's view ---- */

#define LD(p, f) ((json_int_t)__atomic_load_n(&(p)->f, __ATOMIC_RELAXED))

static json_t *progress_json_locked(const struct atask *t)
{
	if (!t->running || t->finished)
		return json_null();
	double elapsed = now_mono() - t->run_started;
	json_t *o;
	double moved, total = -1;
	if (t->def.kind == TASKDEF_IMAGE) {
		const struct image_progress *p = &t->live.image;
		o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "listed", LD(p, tags),
			      "planned", LD(p, tags), "transferred", LD(p, copied), "bytes",
			      LD(p, bytes), "failed", LD(p, failed), "skipped",
			      LD(p, skipped) + LD(p, filtered), "deleted", (json_int_t)0);
		moved = (double)LD(p, bytes);
	} else {
		const struct sync_progress *p = &t->live.sync;
		o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "listed", LD(p, listed),
			      "planned", LD(p, planned), "transferred", LD(p, transferred), "bytes",
			      LD(p, bytes_moved), "failed", LD(p, failed), "skipped",
			      LD(p, skipped), "deleted", LD(p, deleted));
		moved = (double)LD(p, bytes_moved);
		if (__atomic_load_n(&p->listing_done, __ATOMIC_RELAXED))
			total = (double)LD(p, planned_bytes);
	}
	double rate = elapsed > 0 ? moved / elapsed : 0;
	json_object_set_new(o, "rate_bytes_per_second", json_real(rate));
	json_object_set_new(o, "elapsed_seconds", json_real(elapsed));
	json_object_set_new(o, "eta_seconds",
			    total >= moved && rate > 0 ? json_real((total - moved) / rate)
						       : json_null());
	return o;
}

static json_t *stats_json(struct service *s, const struct atask *t)
{
	struct task_stats st;
	if (!t->have_id || manifest_stats_get(s->m, t->id, &st))
		memset(&st, 0, sizeof(st));
	json_t *objs = json_object(), *bytes = json_object();
	for (int i = 0; i < OBJ__COUNT; i++) {
		json_object_set_new(objs, obj_status_name(i),
				    json_integer((json_int_t)st.count[i]));
		json_object_set_new(bytes, obj_status_name(i),
				    json_integer((json_int_t)st.bytes[i]));
	}
	return json_pack("{s:o, s:o}", "objects", objs, "bytes", bytes);
}

json_t *service_run_json(const struct run_record *r)
{
	json_t *errs = json_array();
	for (uint32_t i = 0; i < r->n_errors && i < RUN_ERRORS_MAX; i++)
		json_array_append_new(errs, json_string(r->errors[i]));
	json_t *o = json_pack(
	    "{s:I, s:s, s:I, s:o, s:s?, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:o}",
	    "seq", (json_int_t)r->seq, "trigger", r->trigger, "started", (json_int_t)r->started,
	    "ended", r->ended ? json_integer(r->ended) : json_null(), "result",
	    r->result[0] ? r->result : NULL, "exit", r->exit_status, "listed",
	    (json_int_t)r->listed, "planned", (json_int_t)r->planned, "transferred",
	    (json_int_t)r->transferred, "skipped", (json_int_t)r->skipped, "failed",
	    (json_int_t)r->failed, "deleted", (json_int_t)r->deleted, "bytes", (json_int_t)r->bytes,
	    "object_bytes", (json_int_t)r->object_bytes, "requests", (json_int_t)r->requests,
	    "request_errors", (json_int_t)r->request_errors, "retries", (json_int_t)r->retries,
	    "errors", errs);
	return o;
}

static json_t *last_run_json(struct service *s, const struct atask *t)
{
	struct run_record r;
	if (!t->have_id || !t->last_seq || manifest_run_get(s->m, t->id, t->last_seq, &r))
		return json_null();
	return service_run_json(&r);
}

static json_t *task_json_locked(struct service *s, const struct atask *t)
{
	json_t *err = t->state == AT_ERROR
			  ? json_pack("{s:s, s:s, s:s?}", "code", t->err_code, "message",
				      t->err_msg, "field", t->def_error ? t->def_field : NULL)
			  : json_null();
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s?, s:b, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:b}", "name",
	    t->def.name, "type", taskdef_kind_name(t->def.kind), "origin",
	    taskdef_origin_name(t->def.origin), "origin_where", t->def.origin_where, "read_only",
	    t->def.origin != TASKDEF_FROM_API, "definition", taskdef_to_json(&t->def), "state",
	    atask_state_name(t->state), "error", err, "progress", progress_json_locked(t), "stats",
	    stats_json(s, t), "last_run", last_run_json(s, t), "next_run",
	    t->next_due == INT64_MAX || t->running ? json_null() : json_integer(t->next_due),
	    "overlaps_skipped", (json_int_t)t->totals.overlaps, "user_stopped", t->user_stopped);
	json_object_set_new(o, "last_success",
			    t->last_success ? json_integer(t->last_success) : json_null());
	json_object_set_new(
	    o, "events",
	    json_pack("{s:b, s:I, s:I, s:I, s:I}", "pending", t->ev_pending, "backlog",
		      (json_int_t)t->ev_backlog, "received", (json_int_t)t->ev_received, "ignored",
		      (json_int_t)t->ev_ignored, "refused", (json_int_t)t->ev_refused));
	return o;
}

json_t *service_tasks_json(struct service *s)
{
	json_t *a = json_array();
	pthread_mutex_lock(&s->lock);
	for (struct atask *t = s->tasks; t; t = t->next)
		if (!t->removing)
			json_array_append_new(a, task_json_locked(s, t));
	pthread_mutex_unlock(&s->lock);
	return json_pack("{s:o}", "tasks", a);
}

uint64_t service_generation(struct service *s)
{
	return __atomic_load_n(&s->gen, __ATOMIC_RELAXED);
}

int service_task_json(struct service *s, const char *name, json_t **out)
{
	pthread_mutex_lock(&s->lock);
	struct atask *t = svc_find_locked(s, name);
	*out = t ? task_json_locked(s, t) : NULL;
	pthread_mutex_unlock(&s->lock);
	return t ? 0 : -ENOENT;
}

int service_task_id(struct service *s, const char *name, uint32_t *id, int *kind)
{
	pthread_mutex_lock(&s->lock);
	struct atask *t = svc_find_locked(s, name);
	int rc = !t ? -ENOENT : !t->have_id ? -ENODATA : 0;
	if (!rc) {
		*id = t->id;
		*kind = t->def.kind;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- the API's changes ---- */

/* Whether path (resolved) is root or lies under it. */
static bool path_under(const char *path, const char *root)
{
	size_t n = strlen(root);
	return !strcmp(root, "/") ||
	       (!strncmp(path, root, n) && (path[n] == '\0' || path[n] == '/'));
}

/* The [agent] local_sources setting (comma-separated directories), copied. */
static char *local_roots(struct service *s)
{
	char *roots = NULL;
	pthread_mutex_lock(&s->lock);
	size_t n;
	const struct config_section *const *secs = config_sections(s->cfg->cfg, "agent", &n);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < secs[i]->n; j++)
			if (!strcmp(secs[i]->pairs[j].key, "local_sources")) {
				free(roots);
				roots = xstrdup(secs[i]->pairs[j].value);
			}
	pthread_mutex_unlock(&s->lock);
	return roots;
}

/* A local directory as the source of a task made through the API must lie
 * under one of [agent] local_sources: the token alone must not let a client
 * copy out any file the agent can read (its state directory, /etc). Tasks
 * of the config file and tasks.d are the administrator's own. */
static int check_local_source(struct service *s, const struct taskdef *def, struct dth_err *err,
			      const char **field)
{
	if (def->kind != TASKDEF_S3 || !remote_spec_is_local(def->source))
		return 0;
	*field = "source";
	char *real = realpath(def->source, NULL);
	if (!real)
		return err_set(err, -EINVAL, "source: %s: %s", def->source, strerror(errno));
	char *roots = local_roots(s);
	bool ok = false;
	char *save = NULL;
	for (char *tok = roots ? strtok_r(roots, ", \t", &save) : NULL; tok && !ok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		char *r = realpath(tok, NULL);
		ok = r && path_under(real, r);
		free(r);
	}
	free(real);
	int rc = 0;
	if (!ok)
		rc = err_set(err, -EINVAL,
			     "source: a task made through the API takes a local directory only "
			     "under [agent] local_sources (%s)",
			     roots ? "this one is not under them" : "none is set");
	free(roots);
	if (!rc)
		*field = NULL;
	return rc;
}

/* def from the API's JSON, checked whole (schedule included). */
static int api_def(struct service *s, const json_t *j, const char *name, struct taskdef *def,
		   struct dth_err *err, const char **field)
{
	int rc = taskdef_from_json(j, def, err, field);
	if (!rc && name) {
		if (def->name && strcmp(def->name, name)) {
			*field = "name";
			return err_set(err, -EINVAL, "name: a task cannot be renamed (%s)", name);
		}
		free(def->name);
		def->name = xstrdup(name);
	}
	if (!rc)
		rc = taskdef_check(def, false, err, field);
	if (!rc)
		rc = check_local_source(s, def, err, field);
	struct schedule *sc = NULL;
	if (!rc && (rc = parse_schedule(def, &sc, err)))
		*field = "schedule";
	schedule_free(sc);
	def->origin = TASKDEF_FROM_API;
	return rc ? (rc == -ENOENT || rc == -EPERM ? -EINVAL : rc) : 0;
}

/* Store def as the definition of API task id. */
static int store_def(struct service *s, uint32_t id, const struct taskdef *def, struct dth_err *err)
{
	json_t *j = taskdef_to_json(def);
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	int rc = text ? manifest_taskdef_put(s->m, id, text, strlen(text)) : -ENOMEM;
	free(text);
	if (rc)
		return err_set(err, rc, "storing the definition: %s", strerror(-rc));
	return 0;
}

/* A dry run's answer: the definition as it would be stored. */
static json_t *dry_run_json(const struct taskdef *def)
{
	return json_pack("{s:b, s:o}", "valid", true, "definition", taskdef_to_json(def));
}

/* With s->lock held: whether a new task may take def's name: none of the
 * agent's has it, and the manifest has no task of another kind under it. */
static int create_check_locked(struct service *s, const struct taskdef *def, struct dth_err *err,
			       const char **field)
{
	struct task_record rec;
	uint32_t id;
	*field = "name";
	if (svc_find_locked(s, def->name))
		return err_set(err, -EEXIST, "a task called %s exists", def->name);
	if (!manifest_task_find(s->m, def->name, &id, &rec) &&
	    strcmp(rec.kind, taskdef_kind_name(def->kind)))
		return err_set(err, -EEXIST,
			       "the manifest holds a %s task called %s: choose another name",
			       rec.kind, def->name);
	*field = NULL;
	return 0;
}

/* With s->lock held: make the task of def (checked) and store it. */
static int create_locked(struct service *s, const struct taskdef *def, json_t **out,
			 struct dth_err *err)
{
	struct atask *t = atask_new(s, def, NULL, NULL);
	int rc = 0;
	if (!t->have_id || (rc = store_def(s, t->id, &t->def, err))) {
		if (!rc)
			rc = err_set(err, -EIO, "%s", t->err_msg);
		atask_free(t);
		return rc;
	}
	insert_locked(s, t);
	plan_next_locked(t, svc_now());
	log_info("task %s: created through the API", t->def.name);
	*out = task_json_locked(s, t);
	svc_changed_locked(s);
	return 0;
}

int service_task_create(struct service *s, const json_t *j, bool dry_run, json_t **out,
			struct dth_err *err, const char **field)
{
	struct taskdef def;
	int rc = api_def(s, j, NULL, &def, err, field);
	if (!rc) {
		pthread_mutex_lock(&s->lock);
		rc = create_check_locked(s, &def, err, field);
		if (!rc && dry_run)
			*out = dry_run_json(&def);
		else if (!rc)
			rc = create_locked(s, &def, out, err);
		pthread_mutex_unlock(&s->lock);
	}
	taskdef_release(&def);
	return rc;
}

/* With s->lock held: the task an update of name applies to, or an error. */
static int update_target_locked(struct service *s, const char *name, struct atask **out,
				struct dth_err *err)
{
	struct atask *t = *out = svc_find_locked(s, name);
	if (!t)
		return err_set(err, -ENOENT, "no task called %s", name);
	if (t->def.origin != TASKDEF_FROM_API)
		return err_set(err, -EROFS, "task %s is defined in a file: change it there", name);
	if (!t->have_id)
		return err_set(err, -EIO, "task %s has no record", name);
	return 0;
}

/* With s->lock held: put def (checked) in place of t's definition, now or
 * when its run ends. */
static int update_locked(struct service *s, struct atask *t, const struct taskdef *def,
			 json_t **out, struct dth_err *err)
{
	int rc = store_def(s, t->id, def, err);
	if (rc)
		return rc;
	if (t->running) {
		if (t->pending) {
			taskdef_release(t->pending);
			free(t->pending);
		}
		t->pending = xmalloc(sizeof(*t->pending));
		taskdef_copy(t->pending, def);
	} else {
		struct atask *fresh = atask_new(s, def, NULL, NULL);
		replace_def_locked(s, t, fresh);
		atask_free(fresh);
	}
	*out = task_json_locked(s, t);
	svc_changed_locked(s);
	return 0;
}

int service_task_update(struct service *s, const char *name, const json_t *j, bool dry_run,
			json_t **out, struct dth_err *err, const char **field)
{
	struct atask *t;
	pthread_mutex_lock(&s->lock);
	int rc = update_target_locked(s, name, &t, err);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return rc;
	struct taskdef def;
	rc = api_def(s, j, name, &def, err, field);
	if (!rc) {
		pthread_mutex_lock(&s->lock);
		rc = update_target_locked(s, name, &t, err);
		if (!rc && dry_run)
			*out = dry_run_json(&def);
		else if (!rc)
			rc = update_locked(s, t, &def, out, err);
		pthread_mutex_unlock(&s->lock);
	}
	taskdef_release(&def);
	return rc;
}

int service_task_delete(struct service *s, const char *name, bool purge, struct dth_err *err)
{
	pthread_mutex_lock(&s->lock);
	struct atask *t = svc_find_locked(s, name);
	int rc = 0;
	if (!t)
		rc = err_set(err, -ENOENT, "no task called %s", name);
	else if (t->def.origin != TASKDEF_FROM_API)
		rc = err_set(err, -EROFS, "task %s is defined in %s: remove it there", name,
			     t->def.origin_where ? t->def.origin_where : "a file");
	if (!rc) {
		t->purge = purge;
		remove_locked(s, t);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* With s->lock held: the action on t. */
static int action_locked(struct service *s, struct atask *t, const char *action,
			 struct dth_err *err)
{
	if (!strcmp(action, "stop")) {
		t->user_stopped = true;
		t->run_now = false;
		if (t->running && !t->finished) {
			t->stop_flag = 1;
			t->state = AT_STOPPING;
		} else if (t->state != AT_ERROR || strcmp(t->err_code, "definition")) {
			t->state = AT_STOPPED;
			record_state(s, t, "stopped", NULL);
		}
		t->next_due = INT64_MAX;
		return 0;
	}
	if (t->def_error)
		return err_set(err, -EINVAL, "task %s cannot run: %s", t->def.name, t->def_error);
	if (!strcmp(action, "start")) {
		if (t->running)
			return 0;
		t->user_stopped = false;
		if (t->state == AT_STOPPED)
			t->state = AT_IDLE;
		record_state(s, t, "idle", NULL);
		plan_resume_locked(t, svc_now());
		return 0;
	}
	if (!strcmp(action, "run") || !strcmp(action, "retry")) {
		if (t->running)
			return err_set(err, -EBUSY, "task %s is running", t->def.name);
		t->user_stopped = false;
		if (t->state == AT_STOPPED)
			t->state = AT_IDLE;
		t->run_now = true;
		str_copy_fit(t->trigger, action[1] == 'u' ? "api" : "retry", sizeof(t->trigger));
		return 0;
	}
	return err_set(err, -ENOENT, "no action %s (start, stop, run, retry)", action);
}

int service_task_action(struct service *s, const char *name, const char *action, json_t **out,
			struct dth_err *err)
{
	pthread_mutex_lock(&s->lock);
	struct atask *t = svc_find_locked(s, name);
	int rc =
	    t ? action_locked(s, t, action, err) : err_set(err, -ENOENT, "no task called %s", name);
	if (!rc) {
		log_info("task %s: %s (through the API)", name, action);
		*out = task_json_locked(s, t);
		svc_changed_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- the agent ---- */

/* A remote as the agent info shows it (never a secret nor a key id); s->lock
 * held. */
static json_t *remote_json_locked(struct service *s, const struct remote_def *r)
{
	json_t *o = json_pack("{s:s, s:s, s:s?}", "name", r->name, "type", r->type ? r->type : "s3",
			      "endpoint", r->url ? r->url : r->endpoint);
	if (r->provider)
		json_object_set_new(o, "provider", json_string(r->provider));
	if (r->region)
		json_object_set_new(o, "region", json_string(r->region));
	if (!r->type || !strcmp(r->type, "s3"))
		json_object_set_new(o, "requester_pays", json_boolean(r->requester_pays));
	json_object_set_new(o, "check", rcheck_json(s->rcheck, r->name));
	return o;
}

json_t *service_agent_json(struct service *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned n = 0, by[AT__COUNT] = {0};
	for (struct atask *t = s->tasks; t; t = t->next)
		if (!t->removing) {
			n++;
			by[t->state]++;
		}
	json_t *states = json_object();
	for (int i = 0; i < AT__COUNT; i++)
		json_object_set_new(states, atask_state_name(i), json_integer(by[i]));
	json_t *remotes = json_array();
	const struct config *cfg = s->cfg->cfg;
	size_t nr = config_remote_count(cfg);
	for (size_t i = 0; i < nr; i++)
		json_array_append_new(remotes, remote_json_locked(s, config_remote_at(cfg, i)));
	json_t *o = json_pack(
	    "{s:s, s:I, s:f, s:s?, s:s, s:s?, s:s?, s:I, s:o, s:o, s:I, s:I, s:I, s:I}", "version",
	    DTH_VERSION, "started", (json_int_t)s->started_at, "uptime_seconds",
	    now_mono() - s->started_mono, "listen", s->listen, "state_dir", manifest_dir(s->m),
	    "config", s->config_path, "dropin_dir", s->dropin_dir, "tasks", (json_int_t)n, "states",
	    states, "remotes", remotes, "workers", (json_int_t)s->workers, "workers_busy",
	    (json_int_t)fairshare_in_use(s->fair), "reloads", (json_int_t)s->reloads,
	    "reload_errors", (json_int_t)s->reload_errors);
	pthread_mutex_unlock(&s->lock);
	return o;
}

/* The config a round of remote checks probes, held until it ends. */
struct checks_cfg {
	struct service *s;
	struct cfgref *c;
};

static void checks_done(void *ctx)
{
	struct checks_cfg *h = ctx;
	pthread_mutex_lock(&h->s->lock);
	cfg_drop_locked(h->c);
	pthread_mutex_unlock(&h->s->lock);
	free(h);
}

int service_check_remotes(struct service *s, json_t **out)
{
	struct checks_cfg *h = xmalloc(sizeof(*h));
	h->s = s;
	pthread_mutex_lock(&s->lock);
	h->c = cfg_hold_locked(s);
	pthread_mutex_unlock(&s->lock);
	size_t n = config_remote_count(h->c->cfg);
	int rc = rcheck_start(s->rcheck, h->c->cfg, checks_done, h);
	if (rc)
		checks_done(h);
	if (rc == -EALREADY)
		*out = json_pack("{s:b}", "already_running", true);
	else if (!rc)
		*out = json_pack("{s:b, s:I}", "already_running", false, "remotes", (json_int_t)n);
	if (!rc)
		log_info("checking %zu remotes (through the API)", n);
	return rc == -EALREADY ? 0 : rc;
}

size_t service_task_count(struct service *s)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	for (struct atask *t = s->tasks; t; t = t->next)
		n += !t->removing;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void service_status_line(struct service *s, char *out, size_t n)
{
	pthread_mutex_lock(&s->lock);
	unsigned all = 0, by[AT__COUNT] = {0};
	for (struct atask *t = s->tasks; t; t = t->next)
		if (!t->removing) {
			all++;
			by[t->state]++;
		}
	pthread_mutex_unlock(&s->lock);
	msg_snprintf(out, n, "%u tasks: %u running, %u idle, %u stopped, %u in error", all,
		     by[AT_RUNNING] + by[AT_STOPPING], by[AT_IDLE], by[AT_STOPPED], by[AT_ERROR]);
}

void service_metrics(struct service *s, struct buf *out)
{
	pthread_mutex_lock(&s->lock);
	metrics_write_locked(s, out);
	pthread_mutex_unlock(&s->lock);
}
