/* Candidates for the shell completions (dth __complete, completions/): the
 * remote names of the config, the task names of the manifest and the config,
 * and REMOTE:BUCKET/KEY paths from one listing (ListBuckets, or one page of
 * ListObjectsV2 with delimiter '/'), kept in a private cache for a short
 * while so that pressing Tab again sends nothing.
 *
 * Every candidate is a whole word, handed to an emit callback (the string
 * is borrowed for the call), already filtered by the word being completed.
 * Nothing here prints. Errors are 0 or a negative errno; a completion that
 * fails simply offers fewer candidates. No secret is ever emitted or cached:
 * the cache holds bucket names and keys, under file names derived (SHA-256)
 * from the config file, remote, endpoint, access key id, bucket and prefix. */
#ifndef DTH_AGENT_COMPLETE_H
#define DTH_AGENT_COMPLETE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/util.h"

struct config;

typedef void (*complete_emit_fn)(void *ctx, const char *cand);

/* Most entries one path completion lists (one ListObjectsV2 page). */
#define COMPLETE_LIST_MAX 1000

/* The names of cfg's remotes starting with word, in definition order; type
 * NULL: every remote, else only those of that type ("s3"); suffix (may be
 * NULL) is appended to each (":" for a path's remote part). */
void complete_remotes(const struct config *cfg, const char *word, const char *type,
		      const char *suffix, complete_emit_fn emit, void *ctx);

/* Task names starting with word: the [task NAME] sections of cfg (may be
 * NULL), then the tasks recorded in the manifest of state_dir (opened
 * read-only; may be NULL), each name once. 0, or the negative errno of
 * opening the manifest (the config's names are emitted anyway). */
int complete_tasks(const struct config *cfg, const char *state_dir, const char *word,
		   complete_emit_fn emit, void *ctx) WUR;

/* Path candidates for word:
 *   "NAME"            -> "REMOTE:" for each s3 remote starting with NAME
 *   "REMOTE:B"        -> "REMOTE:BUCKET/" for each bucket starting with B
 *                        (ListBuckets)
 *   "REMOTE:BUCKET/P" -> "REMOTE:BUCKET/KEY" for each key and common prefix
 *                        (ending in '/') starting with P: one ListObjectsV2
 *                        page (delimiter '/') of P's directory part (up to
 *                        its last '/'), filtered by the rest; when that
 *                        directory holds more than one page, a listing of P
 *                        itself instead (then two LISTs the first time).
 * Keys holding a line break are left out. Listings are cached in cache_dir
 * (NULL: no cache) for ttl_s seconds. The remote's client is made with
 * connect_timeout_ms and no retries. 0, or a negative errno (-ENOENT no such
 * remote, -EINVAL a word of another form, the listing's error). */
int complete_path(const struct config *cfg, const char *word, const char *cache_dir, unsigned ttl_s,
		  long connect_timeout_ms, complete_emit_fn emit, void *ctx) WUR;

/* The cache directory: $XDG_CACHE_HOME/dth/complete, else
 * $HOME/.cache/dth/complete. malloc'd; NULL when neither variable is set. */
char *complete_cache_dir(void);

/* The cache itself (for complete_path and the unit tests). key is any
 * string; its SHA-256 names the file. A cached answer is a list of entries,
 * each ending in '\n', and whether the listing was cut at
 * COMPLETE_LIST_MAX. */
/* The fresh (written less than ttl_s seconds ago) answer of key: 0 with the
 * entries appended to out and *truncated set; -ENOENT when absent or stale;
 * -EPERM when the directory or the file is not private to this user (a
 * symbolic link, another owner, group or other permission bits); another
 * negative errno when it cannot be read. */
int complete_cache_get(const char *dir, const char *key, unsigned ttl_s, struct buf *out,
		       bool *truncated) WUR;
/* Store an answer (entries as above): the directory and its parents are
 * made (mode 0700) when missing, the file (mode 0600) written aside and
 * renamed into place. 0 or a negative errno (-EPERM: the directory is not
 * private, as above). */
int complete_cache_put(const char *dir, const char *key, const char *entries, size_t len,
		       bool truncated) WUR;

#endif
