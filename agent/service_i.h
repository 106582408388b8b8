/* The agent's core, private parts shared by service.c and metrics.c. */
#ifndef DTH_SERVICE_I_H
#define DTH_SERVICE_I_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/intake.h"
#include "agent/service.h"
#include "agent/taskdef.h"
#include "agent/taskrun.h"
#include "common/buf.h"

struct schedule;
struct fairshare;
struct fairshare_client;
struct sqspoll;
struct notifier;
struct rcheck;
struct series;
struct evring;

enum atask_state { AT_IDLE = 0, AT_RUNNING, AT_STOPPING, AT_STOPPED, AT_ERROR, AT__COUNT };

/* Totals since the agent started (for /metrics). */
struct atask_totals {
	uint64_t transferred, bytes, failed, skipped, deleted;
	uint64_t runs[4]; /* by result: ok, failed, stopped, error */
	uint64_t overlaps;
	uint64_t requests;
	double last_duration;
};

/* One task. Guarded by service.lock, but for live (atomics) and what only
 * its run thread touches while it runs (run_def, result). */
struct atask {
	struct atask *next;
	struct taskdef def;	 /* valid unless def_error */
	char *def_error;	 /* the definition cannot be used: why (state error) */
	const char *def_field;	 /* ... and the setting at fault, or NULL */
	struct schedule *sched;	 /* NULL when def_error */
	struct taskdef *pending; /* a new definition taken when the run ends */
	char *pending_error;	 /* ... or why the new one cannot be used */
	const char *pending_field;
	uint32_t id; /* manifest task id (have_id) */
	bool have_id;
	int state;	   /* enum atask_state */
	char err_code[32]; /* with AT_ERROR */
	char err_msg[512];
	bool user_stopped; /* stopped by the user (kept in the manifest) */
	bool run_now;	   /* run as soon as possible */
	char trigger[16];  /* why the next run starts */
	bool retry_only;
	bool removing, purge; /* delete once the run ends */
	bool running;	      /* a run thread exists (to join) */
	bool finished;	      /* ... and it has ended */
	pthread_t thread;
	volatile sig_atomic_t stop_flag;
	struct taskrun_live live;
	double run_started; /* now_mono() at the start of the run */
	struct fairshare_client *fair;
	int64_t last_start, last_end, last_success;
	int64_t next_due;  /* INT64_MAX: none */
	uint64_t last_seq; /* of its last run in the manifest */
	struct atask_totals totals;
	/* change events (intake.h) */
	bool ev_pending;	 /* the journal holds events or a rescan request */
	bool ev_running;	 /* the run going on is an event run */
	int64_t ev_hold_until;	 /* an event run failed: the next not before */
	uint64_t ev_received;	 /* since the agent started: events accepted, */
	uint64_t ev_ignored;	 /* ... events that did not concern the task, */
	uint64_t ev_refused;	 /* ... bodies refused */
	uint64_t ev_backlog;	 /* events waiting, as last seen */
	struct evsource *poller; /* events = sqs or inotify: its source (svc_events.c) */
	unsigned def_gen;	 /* bumped when the definition changes */
	unsigned poller_def_gen; /* ... the one the poller was started with */
	bool ev_backlog_told;	 /* event_backlog notified; again once it halves */
	struct series *series;	 /* its time series (svc_history.c); NULL until sampled */
	struct evring *evlog;	 /* its recent events (evring.h); NULL until one comes */
};

/* The config in use, shared by the runs that started with it: a reload
 * puts a new one in place and the old one goes with its last run. */
struct cfgref {
	struct config *cfg;
	unsigned refs; /* under service.lock */
};

struct service {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the scheduler: something changed */
	struct atask *tasks; /* in name order */
	struct cfgref *cfg;
	char *config_path, *dropin_dir;
	const char *listen;
	struct manifest *m;
	struct fairshare *fair;
	unsigned workers;
	bool started, shutting_down;
	pthread_t sched_thread;
	pthread_t watch_thread;
	int watch_fd; /* inotify on the drop-in directory, -1 none */
	int watch_wd; /* its watch (of the directory, or of its parent) */
	bool watch_on_parent;
	int watch_pipe[2]; /* wakes the watcher to stop */
	bool watching;
	int64_t started_at;
	double started_mono;
	uint64_t reloads, reload_errors;
	bool trim_due; /* a run ended since the last malloc_trim */
	uint64_t gen;  /* bumped by changed_locked; read without the lock */
	/* Event sources (SQS pollers, inotify watchers) of tasks gone or
	 * changed, stopped but not yet joined: joined without the lock (their
	 * threads take it). */
	struct evsource **retired;
	size_t n_retired;
	struct notifier *notifier; /* NULL until service_set_token */
	struct rcheck *rcheck;	   /* the remote checks (its own lock: taken after s->lock) */
	int64_t next_sample;	   /* unix time of the next time series sample */
};

/* ---- shared by service.c and svc_events.c ---- */
int64_t svc_now(void);
/* The task called name (not being removed), or NULL; s->lock held. */
struct atask *svc_find_locked(struct service *s, const char *name);
/* A client changed something: wake the scheduler, bump gen; s->lock held. */
void svc_changed_locked(struct service *s);

/* The events a run acts on (svc_events.c). */
struct evrun {
	struct intake_batch batch;
	uint64_t ack_upto;
	bool ack_rescan;
};
/* Before a run (without the lock): an event run (trigger "events") takes the
 * oldest events and gives their keys to o (a rescan request makes it a full
 * run); a full run notes the events kept before it, which it covers. */
void evrun_begin(struct service *s, struct atask *t, const char *trigger, struct taskrun_opts *o,
		 struct evrun *ev);
/* After it (without the lock): acknowledge what it covered when it ended
 * well; update the task's event state. Releases ev. */
void evrun_end(struct service *s, struct atask *t, const struct taskrun_result *res,
	       struct evrun *ev);
/* Without the lock: the notifications of a run that ended (notify.h). */
void svc_notify_run(struct service *s, const struct taskdef *def, const struct config *cfg,
		    const struct run_record *rec, const struct taskrun_result *res);
/* With s->lock held: start the event sources (SQS pollers, inotify
 * watchers) tasks want and retire those they no longer want (force: every
 * one, e.g. at shutdown). */
void svc_pollers_locked(struct service *s, bool force);
/* With s->lock held: stop t's poller (before t goes). */
void svc_poller_retire_locked(struct service *s, struct atask *t);
/* Without the lock: join and free the retired pollers. */
void svc_pollers_reap(struct service *s);

/* ---- the tasks' history (svc_history.c), with s->lock held ---- */
/* Sample every task's time series when due; returns the unix time of the
 * next sample (the scheduler wakes for it). */
int64_t svc_series_tick_locked(struct service *s, int64_t now);
/* t's run starts: its series takes the last run's tail, and the live
 * counters are zeroed (no run thread of t exists yet). */
void svc_series_restart_locked(struct atask *t);

const char *atask_state_name(int state);

/* Prometheus text of the service (metrics.c); called with s->lock held. */
void metrics_write_locked(struct service *s, struct buf *out);

#endif
