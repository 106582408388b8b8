/* Private to manifest/: the handle, the transaction gate, map growth and the
 * long-key tree shared by manifest.c and writer.c. */
#ifndef DTH_MANIFEST_I_H
#define DTH_MANIFEST_I_H

#include <lmdb.h>
#include <pthread.h>

#include "common/buf.h"
#include "manifest/manifest.h"

/* Map size tunables (bytes). Tests lower them to exercise growth and the
 * limit; set them before manifest_open. */
extern size_t manifest_map_initial; /* RDWR opens grow a smaller map to this */
extern size_t manifest_map_max;	    /* growth stops here: -ENOSPC */

/* Long-key layout constants (see the comment at the top of manifest.c). They
 * are part of the on-disk format and do not follow the library's build. */
#define MF_LMDB_KEY_MAX 511
#define MF_ROOT_PFX	4
#define MF_EXT_PFX	8
#define MF_MARK_BYTE	0x00
#define MF_MARK_TAG	0xE1
#define MF_MARK_VLEN	9
#define MF_DEPTH_MAX	10
#define MF_SIDX_PFX	5 /* statusidx root: task id + status byte */

struct manifest {
	MDB_env *env;
	int mode;
	char *dir;
	MDB_dbi dbi_meta, dbi_tasks, dbi_objects, dbi_uploads, dbi_stats, dbi_long;
	MDB_dbi dbi_images, dbi_blobs;
	MDB_dbi dbi_runs, dbi_taskdefs, dbi_sidx, dbi_events;
	/* A reader of a manifest written before a database existed does not find
	 * it: it reads it as empty (and pages objects by scanning without the
	 * status index). RDWR opens create them all. */
	bool have_images, have_blobs, have_runs, have_taskdefs, have_sidx, have_events;
	/* Every transaction runs with the gate held shared; changing the map
	 * (growth, adopting another process's growth) takes it exclusively and
	 * bumps gen so cursors idle across the change renew before reading. */
	pthread_rwlock_t gate;
	unsigned long gen;
	pthread_mutex_t lock;		 /* guards writers */
	struct manifest_writer *writers; /* the live writers, a list through their next */
};

/* Delete every note of task (manifest_task_note_put) in txn: 0 or a raw
 * LMDB code. */
int mf_notes_del(struct manifest *m, MDB_txn *txn, uint32_t task);

/* LMDB return code -> negative errno. */
int mf_errno(int rc);
const char *mf_strerror(int rc);

/* Begin a read transaction: returns with the gate held shared; end with
 * mf_read_end. Handles MDB_MAP_RESIZED. */
int mf_read_begin(struct manifest *m, MDB_txn **txn) WUR;
void mf_read_end(struct manifest *m, MDB_txn *txn);
/* Adopt a map grown by another process (MDB_MAP_RESIZED); gate not held. */
int mf_adopt_mapsize(struct manifest *m) WUR;
/* Double the map up to manifest_map_max; gate not held. -ENOSPC at the limit. */
int mf_grow(struct manifest *m) WUR;
/* Begin a write transaction (gate held shared until commit/abort). */
int mf_write_begin(struct manifest *m, MDB_txn **txn) WUR;
/* Commit (returns the raw LMDB code) or abort; both release the gate. */
int mf_write_commit(struct manifest *m, MDB_txn *txn);
void mf_write_abort(struct manifest *m, MDB_txn *txn);

/* Run fn in a write transaction and commit it; on MDB_MAP_FULL (from fn or
 * the commit) grow the map and run fn again in a new transaction, so fn must
 * have no effect outside the transaction. fn returns 0, a raw LMDB code or a
 * negative errno (then the transaction is aborted). Returns 0 or a negative
 * errno. */
int mf_write_txn(struct manifest *m, int (*fn)(struct manifest *m, MDB_txn *txn, void *ctx),
		 void *ctx) WUR;

/* A node of the long-key tree: a database and a fixed key prefix. A root node
 * is the task id (objects, uploads, images) or the task id and a status
 * (statusidx); inner nodes are groups in longkeys. */
struct mf_node {
	MDB_dbi dbi;
	unsigned char pfx[MF_EXT_PFX];
	size_t plen;
};
void mf_root_task(struct mf_node *n, MDB_dbi dbi, uint32_t task);
void mf_root_sidx(struct mf_node *n, MDB_dbi dbi, uint32_t task, uint8_t status);
#define MF_TASK_ROOT(d, t)                                                                         \
	((struct mf_node){.dbi = (d),                                                              \
			  .pfx = {(unsigned char)((t) >> 24), (unsigned char)((t) >> 16),          \
				  (unsigned char)((t) >> 8), (unsigned char)(t)},                  \
			  .plen = MF_ROOT_PFX})

/* Long-key tree under a root node. Return raw LMDB codes (MDB_NOTFOUND when
 * absent). The value of get points into the map. */
int mf_tree_get(struct manifest *m, MDB_txn *txn, const struct mf_node *root, const char *key,
		size_t key_len, MDB_val *val);
int mf_tree_put(struct manifest *m, MDB_txn *txn, const struct mf_node *root, const char *key,
		size_t key_len, MDB_val *val);
int mf_tree_del(struct manifest *m, MDB_txn *txn, const struct mf_node *root, const char *key,
		size_t key_len);

/* An in-order walk of the keys under one root node, inside a transaction the
 * caller owns (read or write; do not write through the tree while it is
 * open). seek and next return 0 with kb[0..klen) the full key and val its
 * value (valid until the transaction changes), MDB_NOTFOUND at the end, or
 * another raw LMDB code. Close before the transaction ends. */
struct mf_lvl {
	MDB_cursor *cur;
	unsigned char pfx[MF_EXT_PFX];
	size_t plen;
	size_t koff; /* where this level's chunk starts in the full key */
};
struct mf_iter {
	struct manifest *m;
	MDB_txn *txn;
	struct mf_node root;
	struct mf_lvl lv[MF_DEPTH_MAX];
	int depth;
	int opened; /* levels with an open LMDB cursor */
	unsigned char kb[MF_DEPTH_MAX * MF_LMDB_KEY_MAX];
	size_t klen;
	MDB_val val;
};
void mf_iter_init(struct mf_iter *it, struct manifest *m, MDB_txn *txn, const struct mf_node *root);
/* Position at the first key >= t (t may be NULL with tl 0: the first key). */
int mf_iter_seek(struct mf_iter *it, const char *t, size_t tl);
int mf_iter_next(struct mf_iter *it);
/* Move the open LMDB cursors to txn (a renewed read transaction); seek again. */
int mf_iter_renew(struct mf_iter *it, MDB_txn *txn);
void mf_iter_close(struct mf_iter *it);

/* meta values are ASCII decimal. Raw LMDB codes (MDB_CORRUPTED: not a number). */
int mf_meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out);
int mf_meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t val);

/* ---- the status index (statusidx.c) ----
 * Entries (empty values) under root (task, status) for every object whose
 * status is pending, copying or failed; the writer keeps them in step in the
 * transaction that writes the object. */
static inline bool mf_sidx_status(int s)
{
	return s == OBJ_PENDING || s == OBJ_COPYING || s == OBJ_FAILED;
}
/* old: the previous status (-1 none, -2 unknown: remove from every status);
 * new_status: -1 for a deletion. Raw LMDB codes. */
int mf_sidx_update(struct manifest *m, MDB_txn *txn, uint32_t task, const char *key, size_t key_len,
		   int old, int new_status);
/* Build the index of a manifest written without it (RDWR open), in chunks of
 * transactions; records "statusidx" in meta when complete. */
int mf_sidx_build(struct manifest *m, struct dth_err *err) WUR;
/* Whether the index is complete (meta "statusidx"), in txn. */
bool mf_sidx_ready(struct manifest *m, MDB_txn *txn);

/* Records a page by scanning examines at most (MANIFEST_PAGE_SCAN; tests
 * lower it). */
extern unsigned manifest_page_scan;

/* Test hooks of manifest_task_purge: deletes per transaction, and (when not
 * 0) stop with -EINTR after that many transactions, as a crash would. */
extern unsigned manifest_purge_chunk;
extern unsigned manifest_purge_stop_after;
/* The bound on a task's journal (MANIFEST_EVENTS_MAX; tests lower it). */
extern uint64_t manifest_events_max;

/* The key of a blob record (codec_blob_key with the names hashed). */
void mf_blob_key(const char *registry, const char *digest, const char *repo, struct buf *out);

static inline void mf_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline uint32_t mf_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void mf_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline uint64_t mf_get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* 0 when task has a record in txn, -ENOENT when not, else a raw LMDB code
 * (runs.c). */
int mf_task_exists(struct manifest *m, MDB_txn *txn, uint32_t task);

#endif
