/* Several manifests read as one: the state directories of the shards of a
 * task (each shard of `dth sync --shard I/N` records its own key range in its
 * own state directory), so `dth manifest` can inspect the whole task in one
 * place. Every directory is opened read-only (MANIFEST_RDONLY: nothing is
 * created, no write lock is taken) and must hold the task, with the same
 * source and destination in each.
 *
 * The objects of the task are read as one key-ordered stream by a k-way merge
 * of one cursor per directory: a binary heap of the directories' current
 * records, so memory is one record per directory, whatever the number of
 * keys. A key recorded in two directories is an error naming both (-EEXIST):
 * the shard plan gave one key to two shards. Keys in no directory (gaps
 * between shards' ranges) are not the manifest's business.
 *
 * A set is used from one thread at a time. */
#ifndef DTH_MANIFEST_MULTI_H
#define DTH_MANIFEST_MULTI_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "manifest/codec.h"

struct manifest;
struct manifest_cursor;
struct manifest_set;

/* Open the n (>= 1) directories dirs (borrowed; copied) read-only and find
 * task in each. NULL with err naming the directory on failure: one that does
 * not exist, is not a directory, is given twice, holds no dth manifest or no
 * such task, or whose task copies another source or to another destination
 * than the first's. Free with manifest_set_free. */
struct manifest_set *manifest_set_open(const char *const *dirs, size_t n, const char *task,
				       struct dth_err *err);
void manifest_set_free(struct manifest_set *s);

size_t manifest_set_size(const struct manifest_set *s);
/* The i-th directory as given, its manifest and the task's id there;
 * borrowed, valid until manifest_set_free. */
const char *manifest_set_dir(const struct manifest_set *s, size_t i);
struct manifest *manifest_set_manifest(const struct manifest_set *s, size_t i, uint32_t *task_id);

/* The task as one record: the first directory's, with runs the most of any,
 * last_run_start/last_run_end the latest, dest_listed only when every
 * directory has it, and state the directories' common state or "mixed". */
void manifest_set_task(const struct manifest_set *s, struct task_record *out);

/* The task's counts and bytes by status, summed over the directories (a
 * directory without stats counts zero). 0 or a negative errno with err set. */
int manifest_set_stats(struct manifest_set *s, struct task_stats *out, struct dth_err *err) WUR;

/* The record of key, from the directory holding it: 0 with *out and *which
 * (its index) set, -ENOENT when none does, -EEXIST when two do (err names
 * both), or another negative errno with err set. */
int manifest_set_obj_get(struct manifest_set *s, const char *key, size_t key_len,
			 struct obj_record *out, size_t *which, struct dth_err *err) WUR;

/* A cursor over the task's objects of every directory, in key order, from the
 * keys starting with prefix (NULL: all). With one directory it is that
 * manifest's own cursor; with several, the merge. manifest_cursor_next gives
 * -EEXIST for a key recorded in two directories and the errors of the
 * directories' cursors; the message naming the key and both directories (or
 * the failing one) is then in manifest_set_error. Free with
 * manifest_cursor_free before the set. NULL with err set on failure. */
struct manifest_cursor *manifest_set_cursor(struct manifest_set *s, const char *prefix,
					    struct dth_err *err);
/* The last failure of a merged cursor of s (code 0: none); borrowed. */
const struct dth_err *manifest_set_error(const struct manifest_set *s);

/* Write every object record of the task, from every directory, into a new
 * manifest in dir (created 0700; refused with -ENOTEMPTY when dir already
 * holds a manifest) under a task of the same name, source and destination, so
 * every `dth manifest` command can read the whole task from one directory.
 * The stats are kept by the writer as for any run. *n gets the number of
 * records written. 0 or a negative errno with err set (an overlap stops it:
 * the new manifest then holds the records up to it). */
int manifest_set_merge_into(struct manifest_set *s, const char *dir, uint64_t *n,
			    struct dth_err *err) WUR;

#endif
