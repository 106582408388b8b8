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

struct manifest {
	MDB_env *env;
	int mode;
	char *dir;
	MDB_dbi dbi_meta, dbi_tasks, dbi_objects, dbi_uploads, dbi_stats, dbi_long;
	MDB_dbi dbi_images, dbi_blobs;
	/* A reader of a manifest written before images and blobs existed finds
	 * neither database: it reads them as empty. */
	bool have_images, have_blobs;
	/* Every transaction runs with the gate held shared; changing the map
	 * (growth, adopting another process's growth) takes it exclusively and
	 * bumps gen so cursors idle across the change renew before reading. */
	pthread_rwlock_t gate;
	unsigned long gen;
	pthread_mutex_t lock; /* guards writer */
	struct manifest_writer *writer;
};

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

/* Long-key tree over a root database (objects or uploads). Return raw LMDB
 * codes (MDB_NOTFOUND when absent). The value of get points into the map. */
int mf_tree_get(struct manifest *m, MDB_txn *txn, MDB_dbi root, uint32_t task, const char *key,
		size_t key_len, MDB_val *val);
int mf_tree_put(struct manifest *m, MDB_txn *txn, MDB_dbi root, uint32_t task, const char *key,
		size_t key_len, MDB_val *val);
int mf_tree_del(struct manifest *m, MDB_txn *txn, MDB_dbi root, uint32_t task, const char *key,
		size_t key_len);

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

#endif
