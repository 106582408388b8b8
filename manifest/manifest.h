/* The LMDB manifest: one environment per state directory with the databases
 * meta, tasks, objects, uploads, stats, images and blobs.
 * Readers (dth manifest, dth mount) open it read-only while one writer
 * process (dth sync / the agent) writes through a manifest_writer, which
 * commits in batches from its own thread. Errors: MDB_NOTFOUND -> -ENOENT,
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

#define MANIFEST_SCHEMA_VERSION 1

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

/* Default state directory: $DTH_STATE_DIR, else /var/lib/dth as root, else
 * $XDG_STATE_HOME/dth or ~/.local/state/dth. Appended to out. */
void manifest_default_dir(struct buf *out);

/* ---- tasks ---- */
/* Find the task called name; *id and (optional) *rec are set. -ENOENT if none. */
int manifest_task_find(struct manifest *m, const char *name, uint32_t *id,
		       struct task_record *rec) WUR;
/* Find or create (RDWR only) the task rec->name; a new one gets the next id.
 * Commits at once. */
int manifest_task_ensure(struct manifest *m, const struct task_record *rec, uint32_t *id,
			 bool *created) WUR;
/* Replace a task record (commits at once). */
int manifest_task_put(struct manifest *m, uint32_t id, const struct task_record *rec) WUR;
/* Call fn for each task in id order; fn's non-zero return stops and is returned. */
int manifest_task_each(struct manifest *m,
		       int (*fn)(void *ctx, uint32_t id, const struct task_record *rec),
		       void *ctx) WUR;

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

/* Up to n-1 keys that split the task's objects into n ranges of about equal
 * count, appended to out as NUL-separated strings (*count set). Used to list a
 * source in parallel key ranges. */
int manifest_key_quantiles(struct manifest *m, uint32_t task, const char *prefix, unsigned n,
			   struct buf *out, unsigned *count) WUR;

/* ---- writing: one writer per process, batched commits ---- */
struct manifest_writer;
/* Starts the writer thread. Commits when batch_max operations are queued or
 * every flush_ms (0: 200 ms), whichever first; every commit is fsync'd.
 * The queue is bounded (backpressure: enqueue blocks when full). */
struct manifest_writer *manifest_writer_new(struct manifest *m, unsigned batch_max,
					    unsigned flush_ms, struct dth_err *err);
/* Enqueue; key and rec are copied. The stats record of the task is adjusted in
 * the same transaction (old status counters down, new up). A failure of an
 * earlier commit is returned by the next call and by flush/free. */
int manifest_writer_put_obj(struct manifest_writer *w, uint32_t task, const char *key,
			    size_t key_len, const struct obj_record *rec) WUR;
/* Remove the object record (stats adjusted). */
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
