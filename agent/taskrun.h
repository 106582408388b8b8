/* One run of a task from its definition, the same for `dth sync`, `dth image
 * sync` and the agent: open the ends from the config, find (or make) the
 * task's record in the manifest, mark it running, run the engine (sync_run or
 * image_sync_run), record how it ended, and report.
 *
 * The task record's state says "running" for as long as a run goes on, so a
 * run that finds it still "running" knows the last one was killed and lists
 * the destination (S3) or asks for blobs (images) rather than trusting the
 * manifest alone. */
#ifndef DTH_TASKRUN_H
#define DTH_TASKRUN_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/image.h"
#include "agent/sync.h"
#include "common/err.h"
#include "common/util.h"

struct taskdef;
struct config;
struct manifest;

/* How a run ended: the exit statuses of dth sync. */
enum {
	TASKRUN_DONE = 0,	 /* everything done */
	TASKRUN_SOME_FAILED = 1, /* some objects failed, or the run failed or was stopped */
	TASKRUN_USAGE = 2,	 /* bad definition or config; nothing touched */
	TASKRUN_UNREACHABLE = 3, /* an end cannot be reached or refuses the credentials */
};

/* Live counters of a run (the engines update them; readable from any thread
 * with __atomic_load_n). Zeroed when a run starts. */
struct taskrun_live {
	struct sync_progress sync;   /* S3 tasks */
	struct image_progress image; /* image tasks */
};

struct taskrun_opts {
	const struct taskdef *def; /* borrowed; taskdef_check passed */
	const struct config *cfg;  /* borrowed */
	struct manifest *manifest; /* borrowed; RDWR (RDONLY is enough for a dry run) */
	bool dry_run;		   /* S3 only: plan, copy nothing, change no record */
	bool retry_failed;	   /* S3: copy again only the objects recorded failed */
	/* Look at these keys only (the runs events start; borrowed): S3 object
	 * keys relative to the source prefix (sync_opts.keys), or image
	 * references "repo:tag", each NUL-terminated at key[len]. NULL: a full
	 * run. */
	const struct sync_key *keys;
	size_t n_keys;
	/* The task record may copy other ends than def's (the definition was
	 * edited): take def's, and list the destination on this run, rather
	 * than refusing. */
	bool rebind;
	volatile sig_atomic_t *stop;   /* set: stop soon; the next run resumes */
	struct taskrun_live *live;     /* NULL, or counters updated as the run goes */
	struct fairshare_client *fair; /* NULL, or the task's share of worker slots */
	/* Hooks (each may be NULL), called one at a time from the run's threads:
	 * an object (its key: len bytes of any content) or an image ("repo:tag")
	 * that failed, and why; a note about an image; a planned action (dry
	 * runs). */
	void (*on_failure)(void *ctx, const char *what, size_t len, const char *reason);
	void (*on_note)(void *ctx, const char *ref, const char *message);
	void (*on_item)(void *ctx, const struct sync_item *it);
	void *hook_ctx;
};

struct taskrun_result {
	int exit;	  /* TASKRUN_* */
	bool interrupted; /* stopped by o->stop before the end */
	uint32_t task_id;
	uint64_t listed;      /* S3: source keys seen; image: tags considered */
	uint64_t planned;     /* objects (tags) to copy */
	uint64_t transferred; /* objects (tags) copied */
	uint64_t skipped;
	uint64_t failed;
	uint64_t deleted;
	uint64_t bytes;	       /* body bytes sent */
	uint64_t object_bytes; /* sizes of the objects completed */
	uint64_t requests;     /* requests to both ends */
	double seconds;
	char error[512]; /* the run's own error ("" when none) */
	/* The JSON report of dth sync --json / dth image sync --json without its
	 * failures and notes (owned; taskrun_result_release frees it). */
	json_t *report;
};

/* Run once. Returns the exit status (also in r->exit); r is filled either way
 * and must be released. */
int taskrun_run(const struct taskrun_opts *o, struct taskrun_result *r);
void taskrun_result_release(struct taskrun_result *r);

/* A new task record for def (state "starting"): 0, or -ENAMETOOLONG with err
 * saying which field does not fit a record (names and specs are never cut). */
struct task_record;
int taskrun_record_new(const struct taskdef *def, struct task_record *t, struct dth_err *err) WUR;

#endif
