/* The LMDB manifest: one environment per state directory with the databases
 * meta, tasks, objects, uploads, stats, images, blobs, runs, taskdefs,
 * statusidx and events.
 * Readers (dth manifest, dth mount) open it read-only while a writing
 * process (dth sync, the agent) writes through manifest_writers (one per
 * run), each committing in batches from its own thread. Errors: MDB_NOTFOUND -> -ENOENT,
 * MDB_MAP_FULL -> -ENOSPC, a manifest from a newer dth -> -ENOTSUP, other LMDB
 * failures -> -EIO, each with err naming the problem. */
#ifndef DTH_MANIFEST_H
#define DTH_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "manifest/codec.h"

/* Schema 2 added the databases runs, taskdefs and statusidx (an index of the
 * objects by status) and version 2 task records. An RDWR open of a schema 1
 * manifest builds the index (once, in chunks of transactions) and raises the
 * schema to 2; read-only opens of either work (without the index, pages are
 * found by scanning). A dth that knows only schema 1 refuses schema 2, so it
 * cannot write objects behind the index's back. */
#define MANIFEST_SCHEMA_VERSION 2

/* Longest object key (relative to the task's prefix) a record can have; a
 * longer one is refused with -ENAMETOOLONG. Local paths reach PATH_MAX; S3
 * keys stop at 1024 bytes, but a prefix or a non-AWS server can go beyond. */
#define MANIFEST_KEY_MAX 4096

struct manifest;

enum { MANIFEST_RDONLY = 1, MANIFEST_RDWR = 2 };

/* Open (RDWR: create the directory 0700 and the environment if needed) the
 * manifest in dir. The map size grows as needed. Free with manifest_free. */
struct manifest *manifest_open(const char *dir, int mode, struct dth_err *err);
void manifest_free(struct manifest *m);
const char *manifest_dir(const struct manifest *m);
/* Drop the pages of the manifest's map from this process's resident set:
 * they stay in the kernel's page cache (clean: the map is read-only) and
 * the next read faults them back in. For a long-running process between
 * bursts of work (the agent when no run goes on). 0 or -errno. */
int manifest_unmap_pages(struct manifest *m) WUR;

/* Default state directory: $DTH_STATE_DIR, else /var/lib/dth as root, else
 * $XDG_STATE_HOME/dth or ~/.local/state/dth. Appended to out. */
void manifest_default_dir(struct buf *out);

/* ---- tasks ---- */
/* Find the task called name; *id and (optional) *rec are set. -ENOENT if none. */
int manifest_task_find(struct manifest *m, const char *name, uint32_t *id,
		       struct task_record *rec) WUR;
/* Find or create (RDWR only) the task rec->name; a new one gets the next id.
 * Commits at once. -EBUSY when that task is being purged (state "purging"):
 * finish the purge first. */
int manifest_task_ensure(struct manifest *m, const struct task_record *rec, uint32_t *id,
			 bool *created) WUR;
/* Replace a task record (commits at once). */
int manifest_task_put(struct manifest *m, uint32_t id, const struct task_record *rec) WUR;
/* Call fn for each task in id order; fn's non-zero return stops and is returned. */
int manifest_task_each(struct manifest *m,
		       int (*fn)(void *ctx, uint32_t id, const struct task_record *rec),
		       void *ctx) WUR;

/* Delete task id and every record of it: objects (long-key groups too),
 * uploads, images, stats, status index entries, runs, events and its definition, in
 * write transactions of at most manifest_purge_chunk (10,000) deletions each,
 * so neither a huge transaction is built nor readers and writers are held
 * up. The task record is first marked state "purging" and removed last, so an
 * interrupted purge leaves a "purging" task that calling again finishes (the
 * caller should do so for such tasks when it starts). Blobs are shared by the
 * tasks of a registry: kept. The caller stops the task first (and flushes its
 * writer): records written for it during the purge may survive it.
 * 0 (also when there is no such task), or a negative errno with err set. */
#define MANIFEST_TASK_PURGING "purging"
int manifest_task_purge(struct manifest *m, uint32_t id, struct dth_err *err) WUR;

/* ---- run history (database runs: task id + run sequence, 8 bytes BE) ----
 * Each call commits at once, in its own transaction. Sequences start at 1 and
 * increase per task; only the newest MANIFEST_RUNS_KEPT runs are kept. */
#define MANIFEST_RUNS_KEPT 100
/* Store a new run of task (rec->seq ignored, ended stored as 0) under the
 * next sequence, set in *seq, and drop the task's oldest runs beyond
 * MANIFEST_RUNS_KEPT, in one transaction. -ENOENT when the task does not
 * exist. The task record is not touched: its last_run is the caller's. */
int manifest_run_begin(struct manifest *m, uint32_t task, const struct run_record *rec,
		       uint64_t *seq) WUR;
/* Replace run seq of task (its end). -ENOENT when there is no such run (never
 * begun, dropped or purged). */
int manifest_run_put(struct manifest *m, uint32_t task, uint64_t seq,
		     const struct run_record *rec) WUR;
/* out->seq set. -ENOENT when absent. */
int manifest_run_get(struct manifest *m, uint32_t task, uint64_t seq, struct run_record *out) WUR;
/* Call fn for the runs of task with seq < before (0: all), newest first, at
 * most limit of them (0: no limit). fn is called outside any transaction (it
 * may use the manifest); its non-zero return stops and is returned. To page,
 * pass the smallest seq seen as before. */
int manifest_run_each(struct manifest *m, uint32_t task, uint64_t before, unsigned limit,
		      int (*fn)(void *ctx, const struct run_record *rec), void *ctx) WUR;

/* ---- the event journal (database events: task id + sequence, 8 bytes BE) ----
 * Changes announced to the agent (webhooks, registry notifications) wait here
 * until a run of the task has acted on them, so an event acknowledged to its
 * sender survives a crash. Each call commits at once. Sequence 0 of a task is
 * its head (next sequence, count, rescan flag); events start at 1. A task
 * holds at most MANIFEST_EVENTS_MAX events: past that, new ones are not kept
 * and the rescan flag is set instead (a full rescan finds every change). */
#define MANIFEST_EVENTS_MAX    1000000
#define MANIFEST_EVENT_KEY_MAX 4096
struct manifest_event {
	uint64_t seq;	 /* set by the journal */
	const char *key; /* the object key (relative) or "repo:tag"; borrowed */
	size_t key_len;	 /* 1..MANIFEST_EVENT_KEY_MAX */
	/* What the sender said the object is (a hint, never trusted alone):
	 * has_hint, its size and ETag (no quotes, shorter than CODEC_ETAG_MAX). */
	bool has_hint;
	uint64_t size;
	char etag[CODEC_ETAG_MAX];
};
struct manifest_events_state {
	uint64_t count; /* events waiting */
	uint64_t next;	/* the next sequence */
	bool rescan;	/* events were dropped (over the bound, or a sender's overflow) */
};
/* Append n events (n may be 0 with rescan set: only raise the flag) in one
 * transaction; *st (may be NULL) gets the state after. -ENOENT: no such task;
 * -EINVAL: a key is empty or over MANIFEST_EVENT_KEY_MAX. */
int manifest_events_add(struct manifest *m, uint32_t task, const struct manifest_event *ev,
			size_t n, bool rescan, struct manifest_events_state *st) WUR;
int manifest_events_state(struct manifest *m, uint32_t task, struct manifest_events_state *st) WUR;
/* Call fn for up to limit of the oldest events, in sequence order, from one
 * read snapshot (fn is called inside it: it must not use the manifest; its
 * event is valid for the call). fn's non-zero return stops and is returned.
 * Returns the number given (>= 0) or a negative errno. */
int manifest_events_page(struct manifest *m, uint32_t task, unsigned limit,
			 int (*fn)(void *ctx, const struct manifest_event *ev), void *ctx) WUR;
/* Drop the events with seq <= upto, and the rescan flag when clear_rescan. */
int manifest_events_ack(struct manifest *m, uint32_t task, uint64_t upto, bool clear_rescan) WUR;

/* ---- definitions of tasks created through the API (database taskdefs) ----
 * Opaque bytes per task id (the agent stores JSON; the manifest does not
 * parse it), at most MANIFEST_TASKDEF_MAX. Each call commits at once. */
#define MANIFEST_TASKDEF_MAX (64 * 1024)
/* Replace. -EFBIG over the bound, -ENOENT when the task does not exist. */
int manifest_taskdef_put(struct manifest *m, uint32_t id, const void *data, size_t len) WUR;
/* out is reset and filled with the bytes. -ENOENT when none. */
int manifest_taskdef_get(struct manifest *m, uint32_t id, struct buf *out) WUR;
/* 0 also when there was none. */
int manifest_taskdef_del(struct manifest *m, uint32_t id) WUR;

/* ---- objects by status, a page at a time ----
 * Calls fn(ctx, key, key_len, rec) for up to limit (1..MANIFEST_PAGE_MAX)
 * objects of task with that status and key > after (after NULL: from the
 * first key), in key order, from one read snapshot; fn is called after the
 * snapshot is released (it may use the manifest) and its data is valid for
 * the call only; it returns 0 to go on, or a negative errno that stops the
 * page and is returned.
 * Pending, copying and failed objects come from the status index (exact,
 * kept by the writer in the transaction of the object). Other statuses, -1
 * (any status) and manifests without the index are found by scanning the
 * task's objects, examining at most MANIFEST_PAGE_SCAN records per call, so a
 * page may hold fewer than limit objects, even none, with more to come.
 * Returns the number of objects given (>= 0) or a negative errno (-EINVAL: a
 * bad status or limit; -ENAMETOOLONG: after longer than MANIFEST_KEY_MAX).
 * *more tells whether there may be more: then next holds the key to pass as
 * after for the next page (the last key given or examined; it can be the
 * empty key, so test more, not next's length); otherwise next is empty. next
 * and more may be NULL. The count of a status is in the stats
 * (manifest_stats_get). */
#define MANIFEST_PAGE_MAX  1000
#define MANIFEST_PAGE_SCAN 100000
int manifest_obj_page(struct manifest *m, uint32_t task, int status, const char *after,
		      size_t after_len, unsigned limit,
		      int (*fn)(void *ctx, const char *key, size_t key_len,
				const struct obj_record *rec),
		      void *ctx, struct buf *next, bool *more) WUR;

/* ---- point reads (each in its own read transaction) ---- */
int manifest_obj_get(struct manifest *m, uint32_t task, const char *key, size_t key_len,
		     struct obj_record *out) WUR;
int manifest_stats_get(struct manifest *m, uint32_t task, struct task_stats *out) WUR;
/* out->parts malloc'd; release with codec_upload_release. */
int manifest_upload_get(struct manifest *m, uint32_t task, const char *key, size_t key_len,
			struct upload_record *out) WUR;

/* ---- images and blobs (image tasks) ---- */
/* The record of ref ("repo:tag") in an image task. -ENOENT if none. */
int manifest_image_get(struct manifest *m, uint32_t task, const char *ref, size_t ref_len,
		       struct image_record *out) WUR;
/* Whether digest is known present in repo of the destination registry
 * (its base URL): 0 with out filled, or -ENOENT. */
int manifest_blob_get(struct manifest *m, const char *registry, const char *repo,
		      const char *digest, struct blob_record *out) WUR;
/* Every repository of registry known to hold digest (for cross-repository
 * mounts): fn is called per record; its non-zero return stops and is returned. */
int manifest_blob_repos(struct manifest *m, const char *registry, const char *digest,
			int (*fn)(void *ctx, const struct blob_record *r), void *ctx) WUR;

/* ---- ordered scans ---- */
/* A cursor over a task's objects (or uploads) in key order from the first key
 * >= start (NULL: the task's first key) and, when prefix is given, only keys
 * starting with it. It copies each record out and renews its read snapshot
 * every few thousand records, so a long scan does not pin old pages while a
 * writer commits; keys written behind the cursor are not seen again. */
struct manifest_cursor;
enum manifest_db { MANIFEST_OBJECTS = 0, MANIFEST_UPLOADS = 1, MANIFEST_IMAGES = 2 };
struct manifest_cursor *manifest_cursor_new(struct manifest *m, enum manifest_db db, uint32_t task,
					    const char *prefix, const char *start,
					    struct dth_err *err);
/* 1 with key, key_len and rec set (valid until the next call), 0 at the end,
 * or a negative errno. For MANIFEST_UPLOADS, rec is NULL-safe: use
 * manifest_cursor_next_upload instead. */
int manifest_cursor_next(struct manifest_cursor *c, const char **key, size_t *key_len,
			 struct obj_record *rec) WUR;
/* For MANIFEST_IMAGES cursors (keys are "repo:tag"). */
int manifest_cursor_next_image(struct manifest_cursor *c, const char **key, size_t *key_len,
			       struct image_record *rec) WUR;
/* For MANIFEST_UPLOADS cursors; rec->parts valid until the next call. */
int manifest_cursor_next_upload(struct manifest_cursor *c, const char **key, size_t *key_len,
				struct upload_record *rec) WUR;
void manifest_cursor_free(struct manifest_cursor *c);
/* An objects cursor whose records come from next(ctx, ...) instead of one
 * manifest (a merge of several: manifest/multi.h), for code that takes a
 * cursor (the planner). next has manifest_cursor_next's contract (rec never
 * NULL); manifest_cursor_free calls free_ctx(ctx) (may be NULL): ctx is owned
 * by the cursor from here on. The image and upload calls return -EINVAL. */
struct manifest_cursor *manifest_cursor_wrap(int (*next)(void *ctx, const char **key,
							 size_t *key_len, struct obj_record *rec),
					     void (*free_ctx)(void *ctx), void *ctx);

/* ---- task notes ----
 * Small named values kept with a task (database meta), outside the object
 * records: the shard a task copies ("shard"), the sample of its source
 * listing's page boundaries ("sample"). name is 1..32 bytes of text; a value
 * is at most MANIFEST_NOTE_MAX bytes. Each call commits at once (put, del:
 * RDWR only, else -EROFS). get: 0 with out reset and filled, or -ENOENT. */
#define MANIFEST_NOTE_MAX (1024 * 1024)
int manifest_task_note_put(struct manifest *m, uint32_t task, const char *name, const void *data,
			   size_t len) WUR;
int manifest_task_note_del(struct manifest *m, uint32_t task, const char *name) WUR;
int manifest_task_note_get(struct manifest *m, uint32_t task, const char *name,
			   struct buf *out) WUR;

/* ---- writing: batched commits ----
 * A writer per run; several may live at once in one process (the agent runs
 * tasks side by side): each commits its own batches, LMDB serialises their
 * transactions, and every batch reads the stats it adjusts inside its own. */
struct manifest_writer;
/* Starts the writer thread. Commits when batch_max operations are queued or
 * every flush_ms (0: 200 ms), whichever first; every commit is fsync'd.
 * The queue is bounded (backpressure: enqueue blocks when full). */
struct manifest_writer *manifest_writer_new(struct manifest *m, unsigned batch_max,
					    unsigned flush_ms, struct dth_err *err);
/* Enqueue; key and rec are copied. The stats record and the status index of
 * the task are adjusted in the same transaction (old status out, new in). A failure of an
 * earlier commit is returned by the next call and by flush/free. */
int manifest_writer_put_obj(struct manifest_writer *w, uint32_t task, const char *key,
			    size_t key_len, const struct obj_record *rec) WUR;
/* Remove the object record (stats and status index adjusted). */
int manifest_writer_del_obj(struct manifest_writer *w, uint32_t task, const char *key,
			    size_t key_len) WUR;
int manifest_writer_put_upload(struct manifest_writer *w, uint32_t task, const char *key,
			       size_t key_len, const struct upload_record *rec) WUR;
int manifest_writer_del_upload(struct manifest_writer *w, uint32_t task, const char *key,
			       size_t key_len) WUR;
/* Image records (not counted in stats). */
int manifest_writer_put_image(struct manifest_writer *w, uint32_t task, const char *ref,
			      size_t ref_len, const struct image_record *rec) WUR;
int manifest_writer_del_image(struct manifest_writer *w, uint32_t task, const char *ref,
			      size_t ref_len) WUR;
/* Blob records; rec->repo is set from repo. */
int manifest_writer_put_blob(struct manifest_writer *w, const char *registry, const char *repo,
			     const char *digest, const struct blob_record *rec) WUR;
int manifest_writer_del_blob(struct manifest_writer *w, const char *registry, const char *repo,
			     const char *digest) WUR;
/* Block until everything enqueued before the call is committed. */
int manifest_writer_flush(struct manifest_writer *w) WUR;
/* Flush, stop the thread, free. Returns the first error seen, if any. */
int manifest_writer_free(struct manifest_writer *w);

#endif
