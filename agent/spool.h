/* The delete spool: the deletes a run has planned, kept in an unlinked
 * temporary file until the listing of the whole key space has completed and
 * been checked, then read back in the order they were added. A listing that
 * fails half-way therefore deletes nothing, and the number of deletes is known
 * before the first one is sent (--max-delete). Memory is one record, however
 * many deletes there are. Not thread-safe: one spool per planner thread. */
#ifndef DTH_SPOOL_H
#define DTH_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "manifest/codec.h"

struct spool;

/* A new, empty spool whose file lives (unlinked) in dir. NULL with err set
 * when the file cannot be made. */
struct spool *spool_new(const char *dir, struct dth_err *err);
void spool_free(struct spool *s);

/* Append a key (bytes, any content) and its manifest record (rec NULL when the
 * key has none). 0, or a negative errno (err set: a full disk, say). */
int spool_add(struct spool *s, const char *key, size_t key_len, const struct obj_record *rec,
	      struct dth_err *err) WUR;
/* Deletes added so far. */
uint64_t spool_count(const struct spool *s);

/* Read back from the start (call once, after the last spool_add). */
int spool_rewind(struct spool *s, struct dth_err *err) WUR;
/* 1 with *key, *key_len (valid until the next call), *has_rec and *rec set;
 * 0 at the end; a negative errno on a read error or a damaged record. */
int spool_next(struct spool *s, const char **key, size_t *key_len, bool *has_rec,
	       struct obj_record *rec, struct dth_err *err) WUR;

#endif
