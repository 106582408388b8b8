/* The agent's core: the tasks it serves, their schedules, lifecycles and
 * runs. Tasks come from the config file's [task NAME] sections, from the
 * drop-in directory (both read-only through the API), and from the API
 * (their definitions kept in the manifest). Each task runs on its own
 * schedule, one run at a time (a run due while the last one goes on is
 * skipped and counted), in a thread of its own, with its transfers sharing
 * the agent's worker slots fairly (fairshare.h).
 *
 * Lifecycle of a task: idle (in sync, waiting for its next run) -> running
 * -> idle, or error (the run failed, objects failed, or the definition is
 * unusable: code and message); stop makes a running task stopping, then
 * stopped; start makes it idle again. A stopped task stays stopped across
 * restarts of the agent; a run cut short by the agent's own shutdown resumes
 * on the next start.
 *
 * Thread safety: every function may be called from any thread (the HTTP
 * server's, the signal loop's); none blocks on a transfer. Returned JSON is a
 * snapshot owned by the caller. */
#ifndef DTH_SERVICE_H
#define DTH_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

struct config;
struct manifest;
struct service;

struct service_opts {
	const char *config_path;   /* the config file (NULL: none); reread on reload */
	const char *dropin_dir;	   /* NULL: tasks.d next to the config file */
	struct manifest *manifest; /* borrowed, RDWR; outlives the service */
	unsigned workers;	   /* transfers in flight, all tasks together (default 32) */
	const char *listen;	   /* shown by the agent info (borrowed) */
};

/* Load the config and every task (a config that does not load is an error:
 * err says why; broken task definitions are tasks in the error state). The
 * scheduler does not run until service_start. */
struct service *service_new(const struct service_opts *o, struct dth_err *err);
/* Start the scheduler (and the watch of the drop-in directory). */
int service_start(struct service *s, struct dth_err *err) WUR;
/* Stop taking work, stop every run (in-flight transfers finish or are
 * checkpointed), wait at most timeout_s for them, stop the threads. Returns
 * the number of runs still going when the time ran out. */
unsigned service_shutdown(struct service *s, unsigned timeout_s);
void service_free(struct service *s);

/* Reread the config file and the drop-in directory: tasks added, changed
 * (a running task takes its new definition after its run) or removed
 * (stopped, their records kept); others are untouched. A config that does
 * not load changes nothing (-EINVAL, err says why). */
int service_reload(struct service *s, struct dth_err *err) WUR;
/* The agent's token (borrowed; outlives s), from which the tasks' secrets
 * are derived: starts the notifier. Call before service_start. */
struct token;
void service_set_token(struct service *s, const struct token *token);
/* The remote definitions in use (for the agent info). */
const struct config *service_config(struct service *s);

/* ---- the API's view ---- */
/* Errors of the calls below: -ENOENT no such task, -EEXIST a task of that
 * name exists, -EROFS the task comes from a file, -EINVAL a bad definition
 * (err and *field say which setting), -EBUSY the task is running (run now). */
json_t *service_tasks_json(struct service *s);
/* Bumped by every change a client makes (a definition, an action, a
 * reload, a drop-in file), not by the scheduler or the runs. */
uint64_t service_generation(struct service *s);
int service_task_json(struct service *s, const char *name, json_t **out) WUR;
/* dry_run: check def exactly as a real call does (the name, the local source
 * gate, the schedule, everything), but store and change nothing; *out is then
 * {"valid": true, "definition": ...} with the definition as it would be
 * stored. Neither waits on the network. */
int service_task_create(struct service *s, const json_t *def, bool dry_run, json_t **out,
			struct dth_err *err, const char **field) WUR;
int service_task_update(struct service *s, const char *name, const json_t *def, bool dry_run,
			json_t **out, struct dth_err *err, const char **field) WUR;
/* purge: also remove its records from the manifest (after its run stops). */
int service_task_delete(struct service *s, const char *name, bool purge, struct dth_err *err) WUR;
/* action: "start", "stop", "run" (now), "retry" (failed objects only). */
int service_task_action(struct service *s, const char *name, const char *action, json_t **out,
			struct dth_err *err) WUR;
/* Change events POSTed for task name (body: S3 event notifications, or
 * registry notifications for an image task): kept in the journal before this
 * returns; a run of the changed keys starts as soon as the task is idle.
 * *out: {"accepted", "ignored", "backlog"}. -ENOENT no such task, -EPERM the
 * task does not take webhook events, -EINVAL/-EFBIG a body that is not such
 * a notification (nothing kept), or the manifest's error; err says why. */
int service_task_events(struct service *s, const char *name, const char *body, size_t len,
			json_t **out, struct dth_err *err) WUR;
/* The task's time series (series.h): {"interval_seconds", "samples"}.
 * -ENOENT no such task. */
int service_task_series(struct service *s, const char *name, json_t **out) WUR;
/* The task's recent events (evring.h): {"events": [...]} newest first.
 * -ENOENT no such task. */
int service_task_events_log(struct service *s, const char *name, json_t **out) WUR;
/* The manifest id of a task (for the API's object, run and image pages). */
int service_task_id(struct service *s, const char *name, uint32_t *id, int *kind) WUR;
/* A run of the history as the API shows it. */
struct run_record;
json_t *service_run_json(const struct run_record *r);
/* How many tasks it holds. */
size_t service_task_count(struct service *s);
/* Version, uptime, remotes (each with its last check, rcheck.h), tasks
 * (mounts: the caller's, mounts.h). */
json_t *service_agent_json(struct service *s);
/* Start checking every remote in the background (rcheck.h); returns at once.
 * *out: {"already_running": false, "remotes": N}, or {"already_running":
 * true} when a round goes on (nothing more is started). 0, -ECANCELED while
 * the agent stops, or -EAGAIN. */
int service_check_remotes(struct service *s, json_t **out) WUR;
/* The Prometheus exposition of the agent and its tasks, appended to out. */
void service_metrics(struct service *s, struct buf *out);
/* One line for systemd's STATUS= ("3 tasks: 1 running, 2 idle"). */
void service_status_line(struct service *s, char *out, size_t n);

#endif
