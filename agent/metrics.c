/* The agent's /metrics: the Prometheus exposition of its tasks and of the
 * requests sent to remotes, written with prom.h (so it is always valid text
 * format). Called by service_metrics with the service's lock held. */
#include "common/compat.h"

#include <string.h>

#include "agent/fairshare.h"
#include "agent/prom.h"
#include "agent/notify.h"
#include "agent/service_i.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/reqstats.h"

enum {
	F_TRANSFERRED,
	F_BYTES,
	F_FAILED,
	F_SKIPPED,
	F_DELETED,
	F_RUNS,
	F_OVERLAPS,
	F_STATE,
	F_QUEUE,
	F_DURATION,
	F_LAST_SUCCESS,
	F_EVENTS,
	F_EV_BACKLOG,
	F_OBJECTS,
	F_RUN_BYTES,
	F_REQUESTS,
	F_REQ_ERRORS,
	F_RETRIES,
	F_WORKERS,
	F_WORKERS_BUSY,
	F_UPTIME,
	F_RELOADS,
	F_NOTIFY,
	F__COUNT
};

static const struct {
	const char *name;
	enum prom_type type;
	const char *help;
} families[F__COUNT] = {
    {"dth_task_objects_transferred_total", PROM_COUNTER,
     "Objects (image tags) copied by the task since the agent started."},
    {"dth_task_bytes_transferred_total", PROM_COUNTER,
     "Body bytes the task sent to its destination since the agent started."},
    {"dth_task_objects_failed_total", PROM_COUNTER,
     "Objects (image tags) that failed in the task's runs since the agent started."},
    {"dth_task_objects_skipped_total", PROM_COUNTER,
     "Objects (image tags) found unchanged by the task's runs since the agent started."},
    {"dth_task_objects_deleted_total", PROM_COUNTER,
     "Objects the task deleted at its destination since the agent started."},
    {"dth_task_runs_total", PROM_COUNTER, "Runs of the task that ended, by result."},
    {"dth_task_runs_skipped_total", PROM_COUNTER,
     "Runs of the task skipped because the previous one was still going."},
    {"dth_task_state", PROM_GAUGE, "1 for the task's current state, 0 for the others."},
    {"dth_task_queue_depth", PROM_GAUGE,
     "Objects the running task has planned and not yet copied or failed."},
    {"dth_task_last_run_duration_seconds", PROM_GAUGE, "How long the task's last run took."},
    {"dth_task_last_success_timestamp_seconds", PROM_GAUGE,
     "When the task's last run with nothing failed ended (Unix time)."},
    {"dth_task_events_total", PROM_COUNTER,
     "Change events the task was sent since the agent started, by outcome (accepted, "
     "ignored: not the task's bucket, prefix, repository or tag; refused: bodies that are not "
     "events)."},
    {"dth_task_events_backlog", PROM_GAUGE,
     "Change events kept for the task that no run has acted on yet."},
    {"dth_task_manifest_objects", PROM_GAUGE, "Objects the task's manifest records, by status."},
    {"dth_task_manifest_bytes", PROM_GAUGE,
     "Bytes of the objects the manifest records, by status."},
    {"dth_requests_total", PROM_COUNTER,
     "Requests sent to a remote (every attempt), by operation."},
    {"dth_request_errors_total", PROM_COUNTER,
     "Requests to a remote that failed, by operation and kind of failure."},
    {"dth_request_retries_total", PROM_COUNTER,
     "Requests to a remote that were sent again after a failure, by operation."},
    {"dth_workers", PROM_GAUGE, "Transfers the agent runs at once, all tasks together."},
    {"dth_workers_busy", PROM_GAUGE, "Transfers going on now."},
    {"dth_agent_uptime_seconds", PROM_GAUGE, "Seconds since the agent started."},
    {"dth_config_reloads_total", PROM_COUNTER, "Reloads of the configuration, by result."},
    {"dth_notifications_total", PROM_COUNTER,
     "Notifications to webhooks and SNS topics, by outcome (sent; retried: an attempt failed "
     "and was tried again; failed: given up; dropped: too many waiting, or at shutdown)."},
};

struct mctx {
	struct prom_family *f[F__COUNT];
	int failures;
};

static void add(struct mctx *m, int f, const struct prom_label *l, size_t n, uint64_t v)
{
	if (prom_add_u64(m->f[f], l, n, v))
		m->failures++;
}

static void add_d(struct mctx *m, int f, const struct prom_label *l, size_t n, double v)
{
	if (prom_add(m->f[f], l, n, v))
		m->failures++;
}

static uint64_t queue_depth(const struct atask *t)
{
	if (!t->running || t->finished || t->def.kind != TASKDEF_S3)
		return 0;
	const struct sync_progress *p = &t->live.sync;
	uint64_t planned = __atomic_load_n(&p->planned, __ATOMIC_RELAXED);
	uint64_t done = __atomic_load_n(&p->transferred, __ATOMIC_RELAXED) +
			__atomic_load_n(&p->failed, __ATOMIC_RELAXED);
	return planned > done ? planned - done : 0;
}

static void task_metrics(struct service *s, struct mctx *m, const struct atask *t)
{
	const struct atask_totals *tt = &t->totals;
	struct prom_label l[2] = {{"task", t->def.name}, {"type", taskdef_kind_name(t->def.kind)}};
	add(m, F_TRANSFERRED, l, 1, tt->transferred);
	add(m, F_BYTES, l, 1, tt->bytes);
	add(m, F_FAILED, l, 1, tt->failed);
	add(m, F_SKIPPED, l, 1, tt->skipped);
	add(m, F_DELETED, l, 1, tt->deleted);
	static const char *const results[4] = {"ok", "failed", "stopped", "error"};
	for (int i = 0; i < 4; i++) {
		struct prom_label rl[2] = {{"task", t->def.name}, {"result", results[i]}};
		add(m, F_RUNS, rl, 2, tt->runs[i]);
	}
	add(m, F_OVERLAPS, l, 1, tt->overlaps);
	for (int i = 0; i < AT__COUNT; i++) {
		struct prom_label sl[2] = {{"task", t->def.name}, {"state", atask_state_name(i)}};
		add(m, F_STATE, sl, 2, t->state == i);
	}
	add(m, F_QUEUE, l, 1, queue_depth(t));
	add_d(m, F_DURATION, l, 1, tt->last_duration);
	add(m, F_LAST_SUCCESS, l, 1, (uint64_t)(t->last_success > 0 ? t->last_success : 0));
	static const char *const outcomes[3] = {"accepted", "ignored", "refused"};
	const uint64_t ev[3] = {t->ev_received, t->ev_ignored, t->ev_refused};
	for (int i = 0; i < 3; i++) {
		struct prom_label el[2] = {{"task", t->def.name}, {"outcome", outcomes[i]}};
		add(m, F_EVENTS, el, 2, ev[i]);
	}
	add(m, F_EV_BACKLOG, l, 1, t->ev_backlog);
	struct task_stats st;
	if (!t->have_id || manifest_stats_get(s->m, t->id, &st))
		return;
	for (int i = 0; i < OBJ__COUNT; i++) {
		struct prom_label ol[2] = {{"task", t->def.name}, {"status", obj_status_name(i)}};
		add(m, F_OBJECTS, ol, 2, st.count[i]);
		add(m, F_RUN_BYTES, ol, 2, st.bytes[i]);
	}
}

static void request_metrics(void *ctx, const struct reqstats_entry *e)
{
	struct mctx *m = ctx;
	struct prom_label l[3] = {{"remote", e->remote}, {"op", e->op}, {"kind", NULL}};
	add(m, F_REQUESTS, l, 2, e->requests);
	add(m, F_RETRIES, l, 2, e->retries);
	for (int k = 0; k < REQERR__COUNT; k++) {
		l[2].value = reqstats_error_name(k);
		add(m, F_REQ_ERRORS, l, 3, e->errors[k]);
	}
}

void metrics_write_locked(struct service *s, struct buf *out)
{
	struct prom *p = prom_new();
	struct mctx m;
	memset(&m, 0, sizeof(m));
	for (int i = 0; i < F__COUNT; i++)
		if (prom_family(p, families[i].name, families[i].type, families[i].help, &m.f[i]))
			m.failures++;
	if (m.failures) { /* a name the writer refuses: a defect of this table */
		log_error("metrics: %d families refused", m.failures);
		prom_free(p);
		return;
	}
	for (struct atask *t = s->tasks; t; t = t->next)
		if (!t->removing)
			task_metrics(s, &m, t);
	reqstats_each(request_metrics, &m);
	add(&m, F_WORKERS, NULL, 0, s->workers);
	add(&m, F_WORKERS_BUSY, NULL, 0, fairshare_in_use(s->fair));
	add_d(&m, F_UPTIME, NULL, 0, now_mono() - s->started_mono);
	struct prom_label ok = {"result", "ok"}, bad = {"result", "failed"};
	add(&m, F_RELOADS, &ok, 1, s->reloads);
	add(&m, F_RELOADS, &bad, 1, s->reload_errors);
	struct notify_counts nc = {0};
	if (s->notifier)
		notifier_counts(s->notifier, &nc);
	const char *outcomes[4] = {"sent", "retried", "failed", "dropped"};
	const uint64_t nv[4] = {nc.sent, nc.retried, nc.failed, nc.dropped};
	for (int i = 0; i < 4; i++) {
		struct prom_label ol = {"outcome", outcomes[i]};
		add(&m, F_NOTIFY, &ol, 1, nv[i]);
	}
	if (m.failures)
		log_warn("metrics: %d samples refused", m.failures);
	prom_write(p, out);
	prom_free(p);
}
