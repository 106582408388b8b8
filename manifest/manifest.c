/* The LMDB manifest: environment, schema, tasks, point reads, cursors.
 *
 * Databases: meta, tasks, objects, uploads, stats, images, blobs, runs and
 * taskdefs (runs.c), statusidx (statusidx.c), events (events.c), and longkeys
 * (internal, below). events came after schema 2 without a new schema: an
 * older dth neither reads nor writes it.
 * meta holds "schema", "created" and "statusidx" (1 once the status index is
 * complete; ASCII decimal) and "next_gid" (8-byte big-endian counter used by
 * the long-key layout). Deleting a task's records: purge.c.
 *
 * Long keys. Object keys are up to 1,024 bytes (S3) or MANIFEST_KEY_MAX (local
 * paths), the composite key adds a 4-byte task id, but LMDB (Debian builds it
 * with the default MDB_MAXKEYSIZE) takes keys of at most 511 bytes. Scans must
 * still return keys in plain byte order (the planner merge-joins them with
 * S3 listings, which are in UTF-8 binary order), so the layout is a small
 * tree of chunks:
 *
 *   A node is a database plus a fixed prefix: the root node of a task is the
 *   objects (or uploads, images) database with prefix = task id (4 bytes,
 *   big-endian), or statusidx with prefix = task id + status (5 bytes);
 *   an inner node is the longkeys database with prefix = a group id (8 bytes,
 *   big-endian, allocated from meta next_gid). Chunk size C = 511 - prefix - 1
 *   (506 at a task root, 505 at a statusidx root, 502 inside).
 *
 *   A key remainder R is stored in a node as
 *     - |R| <= C: LMDB key prefix + R, value = the codec record ("direct");
 *     - |R| >  C: LMDB key prefix + R[0..C) + 0x00, value = 0xE1 + group id
 *       ("marker", always exactly 511 bytes long, so never confused with a
 *       direct key, which is at most 510), and R[C..] is stored, by the same
 *       rule, in the inner node of that group id.
 *
 *   Order. Let X = R[0..C) of a marker M = X + 0x00, whose subtree holds
 *   exactly the remainders X + Y with Y non-empty. For a direct key D
 *   (|D| <= C): if D is a prefix of X (D == X included) then D < M and
 *   D < X + Y; otherwise D and X differ at some i < C and D compares with M
 *   as it does with every X + Y. Two markers differ within their first C
 *   bytes, which orders their subtrees the same way. So an in-order walk of the
 *   tree (LMDB's byte order in each node, descending into markers) yields the
 *   full keys in byte order, whatever bytes keys contain (0x00 included: a
 *   marker is recognised by its length, not by its last byte). A key of
 *   exactly C bytes and longer keys starting with it coexist (direct X and
 *   marker X + 0x00). S3 keys need at most three levels.
 *
 *   Seeking to the first key >= T (cursor start and renewal) descends the same
 *   way: with |T| <= C a MDB_SET_RANGE on prefix + T lands on the answer (or on
 *   a marker whose whole subtree is > T); with |T| > C a MDB_SET_RANGE on
 *   prefix + T[0..C) + 0x00 either hits that exact marker (descend with
 *   T[C..]; an exhausted subtree continues with the next entry of the parent)
 *   or lands on an entry whose subtree is entirely > T.
 *
 *   Deleting the last key of a group deletes its marker, up the tree.
 *
 * Concurrency. The environment is opened MDB_NOTLS, so transactions and
 * cursors may move between threads. Growing the map (mdb_env_set_mapsize)
 * must not happen under a live transaction of this process: every transaction
 * runs with m->gate held shared, the map is changed with it held exclusively,
 * and m->gen is bumped so cursors, whose read transaction stays open between
 * calls (without the gate), renew and re-seek from their last key before
 * touching the map again. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/log.h"

size_t manifest_map_initial = (size_t)1 << 30;
size_t manifest_map_max = (size_t)1 << 40;

#define MF_MAX_DBS	  16
#define MF_MAX_READERS	  510
#define MF_RENEW_RECORDS  4096
#define MF_RENEW_MS	  1000
#define MF_RESIZE_RETRIES 16
#define MF_DISK_LOW	  (16u << 20) /* free bytes under which EIO means a full disk */

/* ---- errors ---- */

int mf_errno(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_MAP_RESIZED:
	case MDB_READERS_FULL:
		return -EAGAIN;
	case MDB_BAD_VALSIZE:
		return -EINVAL;
	default:
		if (rc > 0 && rc < 4096)
			return -rc; /* an errno from the system (ENOSPC, EACCES, ...) */
		return -EIO;
	}
}

const char *mf_strerror(int rc)
{
	return mdb_strerror(rc);
}

/* ---- gate, transactions, map size ---- */

int mf_adopt_mapsize(struct manifest *m)
{
	pthread_rwlock_wrlock(&m->gate);
	MDB_envinfo info;
	mdb_env_info(m->env, &info);
	size_t old = info.me_mapsize;
	int rc = mdb_env_set_mapsize(m->env, 0);
	if (!rc) {
		mdb_env_info(m->env, &info);
		if (info.me_mapsize < old)
			rc = mdb_env_set_mapsize(m->env, old);
	}
	mdb_env_info(m->env, &info);
	m->gen++;
	pthread_rwlock_unlock(&m->gate);
	log_debug("manifest %s: adopted map size %zu (was %zu)", m->dir, info.me_mapsize, old);
	if (rc) {
		log_error("manifest %s: cannot adopt the new map size: %s", m->dir,
			  mdb_strerror(rc));
		return mf_errno(rc);
	}
	return 0;
}

int mf_grow(struct manifest *m)
{
	pthread_rwlock_wrlock(&m->gate);
	MDB_envinfo info;
	mdb_env_info(m->env, &info);
	size_t cur = info.me_mapsize;
	if (cur >= manifest_map_max) {
		pthread_rwlock_unlock(&m->gate);
		log_error("manifest %s: map size limit reached (%zu bytes)", m->dir, cur);
		return -ENOSPC;
	}
	size_t want = cur > manifest_map_max / 2 ? manifest_map_max : cur * 2;
	int rc = mdb_env_set_mapsize(m->env, want);
	m->gen++;
	pthread_rwlock_unlock(&m->gate);
	if (rc) {
		log_error("manifest %s: cannot grow the map to %zu bytes: %s", m->dir, want,
			  mdb_strerror(rc));
		return mf_errno(rc);
	}
	log_debug("manifest %s: map grown to %zu bytes", m->dir, want);
	return 0;
}

static int txn_begin(struct manifest *m, unsigned flags, MDB_txn **txn)
{
	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&m->gate);
		int rc = mdb_txn_begin(m->env, NULL, flags, txn);
		if (!rc)
			return 0;
		pthread_rwlock_unlock(&m->gate);
		*txn = NULL;
		if (rc == MDB_MAP_RESIZED && tries < MF_RESIZE_RETRIES) {
			int e = mf_adopt_mapsize(m);
			if (e)
				return e;
			continue;
		}
		return mf_errno(rc);
	}
}

int mf_read_begin(struct manifest *m, MDB_txn **txn)
{
	return txn_begin(m, MDB_RDONLY, txn);
}

void mf_read_end(struct manifest *m, MDB_txn *txn)
{
	if (txn)
		mdb_txn_abort(txn);
	pthread_rwlock_unlock(&m->gate);
}

int mf_write_begin(struct manifest *m, MDB_txn **txn)
{
	if (m->mode != MANIFEST_RDWR)
		return -EROFS;
	return txn_begin(m, 0, txn);
}

/* LMDB reports a short write (the usual face of a full filesystem) as EIO:
 * call it ENOSPC when the filesystem is indeed (nearly) full. */
static int commit_errno(struct manifest *m, int rc)
{
	if (rc != EIO && rc != ENOSPC)
		return rc;
	struct statvfs sv;
	if (statvfs(m->dir, &sv) != 0)
		return rc;
	unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (rc == EIO && avail >= MF_DISK_LOW)
		return rc;
	log_error("manifest %s: the filesystem is full (%llu bytes left)", m->dir, avail);
	return ENOSPC;
}

int mf_write_commit(struct manifest *m, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);
	pthread_rwlock_unlock(&m->gate);
	return rc ? commit_errno(m, rc) : 0;
}

void mf_write_abort(struct manifest *m, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&m->gate);
}

int mf_write_txn(struct manifest *m, int (*fn)(struct manifest *m, MDB_txn *txn, void *ctx),
		 void *ctx)
{
	for (;;) {
		MDB_txn *txn;
		int rc = mf_write_begin(m, &txn);
		if (rc)
			return rc;
		rc = fn(m, txn, ctx);
		if (rc)
			mf_write_abort(m, txn);
		else
			rc = mf_write_commit(m, txn);
		if (rc == MDB_MAP_FULL) {
			rc = mf_grow(m);
			if (rc)
				return rc;
			continue;
		}
		return rc > 0 ? mf_errno(rc) : rc;
	}
}

/* ---- long-key tree ---- */

static size_t node_chunk(const struct mf_node *n)
{
	return MF_LMDB_KEY_MAX - n->plen - 1;
}

void mf_root_task(struct mf_node *n, MDB_dbi dbi, uint32_t task)
{
	memset(n, 0, sizeof(*n));
	n->dbi = dbi;
	mf_be32(n->pfx, task);
	n->plen = MF_ROOT_PFX;
}

void mf_root_sidx(struct mf_node *n, MDB_dbi dbi, uint32_t task, uint8_t status)
{
	memset(n, 0, sizeof(*n));
	n->dbi = dbi;
	mf_be32(n->pfx, task);
	n->pfx[MF_ROOT_PFX] = status;
	n->plen = MF_SIDX_PFX;
}

static int node_from_mark(struct manifest *m, const MDB_val *v, struct mf_node *n)
{
	if (v->mv_size != MF_MARK_VLEN || ((const unsigned char *)v->mv_data)[0] != MF_MARK_TAG)
		return MDB_CORRUPTED;
	n->dbi = m->dbi_long;
	memcpy(n->pfx, (const unsigned char *)v->mv_data + 1, MF_EXT_PFX);
	n->plen = MF_EXT_PFX;
	return 0;
}

/* LMDB key of remainder r in node n: direct when it fits, else the marker. */
static size_t node_key(const struct mf_node *n, const char *r, size_t rl, unsigned char *kb,
		       bool *mark)
{
	size_t c = node_chunk(n);
	memcpy(kb, n->pfx, n->plen);
	if (rl <= c) {
		if (rl)
			memcpy(kb + n->plen, r, rl);
		*mark = false;
		return n->plen + rl;
	}
	memcpy(kb + n->plen, r, c);
	kb[n->plen + c] = MF_MARK_BYTE;
	*mark = true;
	return n->plen + c + 1;
}

int mf_tree_get(struct manifest *m, MDB_txn *txn, const struct mf_node *root, const char *key,
		size_t key_len, MDB_val *val)
{
	struct mf_node n = *root;
	unsigned char kb[MF_LMDB_KEY_MAX];
	for (;;) {
		bool mark;
		MDB_val k = {node_key(&n, key, key_len, kb, &mark), kb};
		int rc = mdb_get(txn, n.dbi, &k, val);
		if (rc || !mark)
			return rc;
		size_t c = node_chunk(&n);
		rc = node_from_mark(m, val, &n);
		if (rc)
			return rc;
		key += c;
		key_len -= c;
	}
}

static int gid_alloc(struct manifest *m, MDB_txn *txn, unsigned char gid[MF_EXT_PFX])
{
	static const char name[] = "next_gid";
	MDB_val k = {sizeof(name) - 1, (void *)name}, v;
	uint64_t next = 1;
	int rc = mdb_get(txn, m->dbi_meta, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (!rc) {
		if (v.mv_size != 8)
			return MDB_CORRUPTED;
		next = 0;
		for (int i = 0; i < 8; i++)
			next = next << 8 | ((const unsigned char *)v.mv_data)[i];
	}
	for (int i = 7; i >= 0; i--)
		gid[7 - i] = (unsigned char)(next >> (8 * i));
	unsigned char nb[8];
	uint64_t after = next + 1;
	for (int i = 7; i >= 0; i--)
		nb[7 - i] = (unsigned char)(after >> (8 * i));
	MDB_val nv = {8, nb};
	return mdb_put(txn, m->dbi_meta, &k, &nv, 0);
}

int mf_tree_put(struct manifest *m, MDB_txn *txn, const struct mf_node *root, const char *key,
		size_t key_len, MDB_val *val)
{
	struct mf_node n = *root;
	unsigned char kb[MF_LMDB_KEY_MAX];
	for (int depth = 0;; depth++) {
		bool mark;
		MDB_val k = {node_key(&n, key, key_len, kb, &mark), kb}, v;
		if (!mark)
			return mdb_put(txn, n.dbi, &k, val, 0);
		if (depth + 1 >= MF_DEPTH_MAX)
			return MDB_BAD_VALSIZE;
		int rc = mdb_get(txn, n.dbi, &k, &v);
		unsigned char mv[MF_MARK_VLEN];
		if (rc == MDB_NOTFOUND) {
			mv[0] = MF_MARK_TAG;
			rc = gid_alloc(m, txn, mv + 1);
			if (rc)
				return rc;
			v.mv_size = sizeof(mv);
			v.mv_data = mv;
			rc = mdb_put(txn, n.dbi, &k, &v, 0);
		}
		if (rc)
			return rc;
		size_t c = node_chunk(&n);
		rc = node_from_mark(m, &v, &n);
		if (rc)
			return rc;
		key += c;
		key_len -= c;
	}
}

int mf_tree_del(struct manifest *m, MDB_txn *txn, const struct mf_node *root, const char *key,
		size_t key_len)
{
	struct mf_node path[MF_DEPTH_MAX];
	unsigned char keys[MF_DEPTH_MAX][MF_LMDB_KEY_MAX];
	size_t klen[MF_DEPTH_MAX];
	int depth = 0, rc;
	path[0] = *root;
	for (;;) {
		bool mark;
		struct mf_node *n = &path[depth];
		klen[depth] = node_key(n, key, key_len, keys[depth], &mark);
		MDB_val k = {klen[depth], keys[depth]}, v;
		if (!mark) {
			rc = mdb_del(txn, n->dbi, &k, NULL);
			if (rc)
				return rc;
			break;
		}
		if (depth + 1 >= MF_DEPTH_MAX)
			return MDB_NOTFOUND;
		rc = mdb_get(txn, n->dbi, &k, &v);
		if (rc)
			return rc;
		size_t c = node_chunk(n);
		rc = node_from_mark(m, &v, &path[depth + 1]);
		if (rc)
			return rc;
		key += c;
		key_len -= c;
		depth++;
	}
	/* drop markers of groups left empty, bottom up */
	if (!depth)
		return 0;
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, m->dbi_long, &cur);
	if (rc)
		return rc;
	for (; depth > 0; depth--) {
		struct mf_node *g = &path[depth];
		MDB_val k = {g->plen, g->pfx}, v;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size >= g->plen && memcmp(k.mv_data, g->pfx, g->plen) == 0)
			break; /* still has members */
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		MDB_val mk = {klen[depth - 1], keys[depth - 1]};
		rc = mdb_del(txn, path[depth - 1].dbi, &mk, NULL);
		if (rc)
			goto out;
	}
	rc = 0;
out:
	mdb_cursor_close(cur);
	return rc;
}

/* ---- open / close ---- */

/* The state directory: made with its parents, and a directory. */
static int state_dir_make(const char *dir)
{
	int rc = mkdir_p(dir);
	if (rc)
		return rc;
	struct stat st;
	if (stat(dir, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int mf_meta_get_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t *out)
{
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return rc;
	char tmp[24];
	if (v.mv_size == 0 || v.mv_size >= sizeof(tmp))
		return MDB_CORRUPTED;
	memcpy(tmp, v.mv_data, v.mv_size);
	tmp[v.mv_size] = '\0';
	if (parse_u64(tmp, out) != 0)
		return MDB_CORRUPTED;
	return 0;
}

int mf_meta_put_u64(MDB_txn *txn, MDB_dbi dbi, const char *name, uint64_t val)
{
	char tmp[24];
	int n = xsnprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)val);
	MDB_val k = {strlen(name), (void *)name}, v = {(size_t)n, tmp};
	return mdb_put(txn, dbi, &k, &v, 0);
}

static int check_schema(struct manifest *m, MDB_txn *txn, bool *fresh, struct dth_err *err)
{
	uint64_t schema;
	int rc = mf_meta_get_u64(txn, m->dbi_meta, "schema", &schema);
	*fresh = false;
	if (rc == MDB_NOTFOUND) {
		*fresh = true;
		return 0;
	}
	if (rc)
		return err_set(err, rc == MDB_CORRUPTED ? -EPROTO : mf_errno(rc),
			       "manifest %s: cannot read the schema version: %s", m->dir,
			       rc == MDB_CORRUPTED ? "not a number" : mdb_strerror(rc));
	if (schema > MANIFEST_SCHEMA_VERSION)
		return err_set(err, -ENOTSUP,
			       "manifest %s has schema version %llu, newer than this dth supports "
			       "(%d): upgrade dth",
			       m->dir, (unsigned long long)schema, MANIFEST_SCHEMA_VERSION);
	if (schema < 1)
		return err_set(err, -EPROTO, "manifest %s: invalid schema version %llu", m->dir,
			       (unsigned long long)schema);
	return 0;
}

/* have: for databases added after schema 1 was first written, the flag a
 * reader clears when an older manifest lacks them (they read as empty). */
static const struct {
	const char *name;
	size_t off;
	size_t have;
} mf_dbs[] = {
    {"tasks", offsetof(struct manifest, dbi_tasks), 0},
    {"objects", offsetof(struct manifest, dbi_objects), 0},
    {"uploads", offsetof(struct manifest, dbi_uploads), 0},
    {"stats", offsetof(struct manifest, dbi_stats), 0},
    {"longkeys", offsetof(struct manifest, dbi_long), 0},
    {"images", offsetof(struct manifest, dbi_images), offsetof(struct manifest, have_images)},
    {"blobs", offsetof(struct manifest, dbi_blobs), offsetof(struct manifest, have_blobs)},
    {"runs", offsetof(struct manifest, dbi_runs), offsetof(struct manifest, have_runs)},
    {"taskdefs", offsetof(struct manifest, dbi_taskdefs), offsetof(struct manifest, have_taskdefs)},
    {"statusidx", offsetof(struct manifest, dbi_sidx), offsetof(struct manifest, have_sidx)},
    {"events", offsetof(struct manifest, dbi_events), offsetof(struct manifest, have_events)},
};

static int init_rdwr(struct manifest *m, struct dth_err *err)
{
	for (;;) {
		MDB_txn *txn;
		int rc = mf_write_begin(m, &txn);
		if (rc)
			return err_set(err, rc, "manifest %s: cannot begin a transaction: %s",
				       m->dir, strerror(-rc));
		bool fresh;
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &m->dbi_meta);
		if (rc) {
			mf_write_abort(m, txn);
			goto lmdb_fail;
		}
		int e = check_schema(m, txn, &fresh, err);
		if (e) {
			mf_write_abort(m, txn);
			return e;
		}
		if (fresh) {
			/* a new manifest's status index is complete (and empty) */
			rc = mf_meta_put_u64(txn, m->dbi_meta, "schema", MANIFEST_SCHEMA_VERSION);
			if (!rc)
				rc = mf_meta_put_u64(txn, m->dbi_meta, "created",
						     (uint64_t)time(NULL));
			if (!rc)
				rc = mf_meta_put_u64(txn, m->dbi_meta, "statusidx", 1);
		}
		for (size_t i = 0; !rc && i < ARRAY_SIZE(mf_dbs); i++)
			rc = mdb_dbi_open(txn, mf_dbs[i].name, MDB_CREATE,
					  (MDB_dbi *)((char *)m + mf_dbs[i].off));
		if (rc) {
			mf_write_abort(m, txn);
		} else {
			rc = mf_write_commit(m, txn);
			m->have_images = m->have_blobs = m->have_runs = m->have_taskdefs =
			    m->have_sidx = m->have_events = true;
		}
		if (rc == MDB_MAP_FULL) {
			e = mf_grow(m);
			if (e)
				return err_set(err, e, "manifest %s: map size limit reached",
					       m->dir);
			continue;
		}
		if (rc)
			goto lmdb_fail;
		return mf_sidx_build(m, err); /* at once when the index is complete */
	lmdb_fail:
		return err_set(err, mf_errno(rc), "manifest %s: cannot initialise: %s", m->dir,
			       mdb_strerror(rc));
	}
}

static int init_rdonly(struct manifest *m, struct dth_err *err)
{
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return err_set(err, rc, "manifest %s: cannot begin a transaction: %s", m->dir,
			       strerror(-rc));
	bool fresh;
	rc = mdb_dbi_open(txn, "meta", 0, &m->dbi_meta);
	if (rc == MDB_NOTFOUND) {
		rc = err_set(err, -ENOENT, "%s is not a dth manifest (no meta database)", m->dir);
		goto fail;
	}
	if (rc) {
		rc = err_set(err, mf_errno(rc), "manifest %s: %s", m->dir, mdb_strerror(rc));
		goto fail;
	}
	rc = check_schema(m, txn, &fresh, err);
	if (rc)
		goto fail;
	if (fresh) {
		rc = err_set(err, -ENOENT, "manifest %s is not initialised", m->dir);
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(mf_dbs); i++) {
		rc = mdb_dbi_open(txn, mf_dbs[i].name, 0, (MDB_dbi *)((char *)m + mf_dbs[i].off));
		if (mf_dbs[i].have) {
			*(bool *)((char *)m + mf_dbs[i].have) = rc == 0;
			if (rc == MDB_NOTFOUND)
				rc = 0;
		}
		if (rc) {
			rc = err_set(err, rc == MDB_NOTFOUND ? -EPROTO : mf_errno(rc),
				     "manifest %s: database %s: %s", m->dir, mf_dbs[i].name,
				     mdb_strerror(rc));
			goto fail;
		}
	}
	/* committing a read transaction keeps the database handles */
	rc = mdb_txn_commit(txn);
	pthread_rwlock_unlock(&m->gate);
	if (rc)
		return err_set(err, mf_errno(rc), "manifest %s: %s", m->dir, mdb_strerror(rc));
	return 0;
fail:
	mf_read_end(m, txn);
	return rc;
}

struct manifest *manifest_open(const char *dir, int mode, struct dth_err *err)
{
	struct manifest *m = NULL;
	bool fresh = false;
	int rc;
	err_clear(err);
	if (!dir || !*dir || (mode != MANIFEST_RDONLY && mode != MANIFEST_RDWR)) {
		err_set(err, -EINVAL, "manifest: invalid directory or mode");
		return NULL;
	}
	struct buf p = BUF_INIT;
	buf_addf(&p, "%s/data.mdb", dir);
	struct stat st;
	rc = stat(buf_str(&p), &st) == 0 ? 0 : -errno;
	buf_release(&p);
	if (mode == MANIFEST_RDWR) {
		fresh = rc == -ENOENT;
		rc = state_dir_make(dir);
		if (rc) {
			err_set(err, rc, "cannot create manifest directory %s: %s", dir,
				strerror(-rc));
			return NULL;
		}
	} else {
		if (rc) {
			err_set(err, rc, "no manifest in %s: %s", dir, strerror(-rc));
			return NULL;
		}
	}

	m = xcalloc(1, sizeof(*m));
	m->mode = mode;
	m->dir = xstrdup(dir);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* recursive shared locking must not deadlock behind a waiting resizer */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_READER_NP);
	pthread_rwlock_init(&m->gate, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&m->lock, NULL);

	rc = mdb_env_create(&m->env);
	if (rc) {
		err_set(err, mf_errno(rc), "manifest %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if (mdb_env_get_maxkeysize(m->env) < MF_LMDB_KEY_MAX) {
		err_set(err, -ENOTSUP, "manifest: liblmdb takes keys of %d bytes, %d needed",
			mdb_env_get_maxkeysize(m->env), MF_LMDB_KEY_MAX);
		goto fail;
	}
	mdb_env_set_maxdbs(m->env, MF_MAX_DBS);
	mdb_env_set_maxreaders(m->env, MF_MAX_READERS);
	/* a new environment starts at the initial size; an existing one keeps its
	 * recorded size (configuring a smaller one before opening would shrink it) */
	if (fresh)
		mdb_env_set_mapsize(m->env, manifest_map_initial);
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	if (mode == MANIFEST_RDONLY)
		flags |= MDB_RDONLY;
	rc = mdb_env_open(m->env, dir, flags, 0600);
	if (rc) {
		err_set(err, mf_errno(rc), "cannot open manifest %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if (mode == MANIFEST_RDWR) {
		MDB_envinfo info;
		mdb_env_info(m->env, &info);
		if (info.me_mapsize < manifest_map_initial) {
			rc = mdb_env_set_mapsize(m->env, manifest_map_initial);
			if (rc) {
				err_set(err, mf_errno(rc),
					"manifest %s: cannot set the map size: %s", dir,
					mdb_strerror(rc));
				goto fail;
			}
		}
		rc = init_rdwr(m, err);
	} else {
		rc = init_rdonly(m, err);
	}
	if (rc)
		goto fail;
	return m;
fail:
	manifest_free(m);
	return NULL;
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	while (m->writers) {
		int rc = manifest_writer_free(m->writers);
		if (rc)
			log_error("manifest %s: writer failed: %s", m->dir, strerror(-rc));
	}
	if (m->env)
		mdb_env_close(m->env);
	pthread_rwlock_destroy(&m->gate);
	pthread_mutex_destroy(&m->lock);
	free(m->dir);
	free(m);
}

/* The address range of this process's map of the file (dev, ino) from
 * /proc/self/maps: 0, or -ENOENT. */
static int find_map(dev_t dev, ino_t ino, uintptr_t *start, uintptr_t *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	char line[4096];
	int rc = -ENOENT;
	while (rc && fgets(line, sizeof(line), f)) {
		unsigned long a, b, off, ino_l;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &a, &b, perms, &off, &maj, &min,
			   &ino_l) == 7 &&
		    (ino_t)ino_l == ino && makedev(maj, min) == dev && perms[3] == 's') {
			*start = a;
			*end = b;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

int manifest_unmap_pages(struct manifest *m)
{
	struct buf p = BUF_INIT;
	buf_addf(&p, "%s/data.mdb", m->dir);
	struct stat st;
	int rc = stat(buf_str(&p), &st) == 0 ? 0 : -errno;
	buf_release(&p);
	if (rc)
		return rc;
	/* Shared: the map cannot move (mf_grow) while its range is in use. */
	pthread_rwlock_rdlock(&m->gate);
	uintptr_t a, b;
	rc = find_map(st.st_dev, st.st_ino, &a, &b);
	if (!rc && madvise((void *)a, b - a, MADV_DONTNEED))
		rc = -errno;
	pthread_rwlock_unlock(&m->gate);
	return rc;
}

const char *manifest_dir(const struct manifest *m)
{
	return m->dir;
}

void manifest_default_dir(struct buf *out)
{
	const char *e = getenv("DTH_STATE_DIR");
	if (e && *e) {
		buf_adds(out, e);
		return;
	}
	if (geteuid() == 0) {
		buf_adds(out, "/var/lib/dth");
		return;
	}
	e = getenv("XDG_STATE_HOME");
	if (e && e[0] == '/') {
		buf_addf(out, "%s/dth", e);
		return;
	}
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(geteuid());
		home = pw && pw->pw_dir ? pw->pw_dir : "/";
	}
	buf_addf(out, "%s/.local/state/dth", home);
}

/* ---- tasks ---- */

struct task_entry {
	uint32_t id;
	struct task_record rec;
};

/* Read every task (in id order) into a malloc'd array. */
static int tasks_load(struct manifest *m, MDB_txn *txn, struct task_entry **out, size_t *n)
{
	MDB_cursor *cur;
	struct task_entry *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc = mdb_cursor_open(txn, m->dbi_tasks, &cur);
	if (rc)
		return mf_errno(rc);
	MDB_val k, v;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 4) {
			rc = -EPROTO;
			break;
		}
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			arr = xrealloc(arr, cap * sizeof(*arr));
		}
		arr[cnt].id = mf_get_be32(k.mv_data);
		rc = codec_task_decode(v.mv_data, v.mv_size, &arr[cnt].rec);
		if (rc)
			break;
		cnt++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	else if (rc > 0)
		rc = mf_errno(rc);
	if (rc) {
		free(arr);
		return rc;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

int manifest_task_find(struct manifest *m, const char *name, uint32_t *id, struct task_record *rec)
{
	MDB_txn *txn;
	struct task_entry *arr = NULL;
	size_t n = 0;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	rc = tasks_load(m, txn, &arr, &n);
	mf_read_end(m, txn);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(arr[i].rec.name, name) == 0) {
			if (id)
				*id = arr[i].id;
			if (rec)
				*rec = arr[i].rec;
			rc = 0;
			break;
		}
	}
	free(arr);
	return rc;
}

int manifest_task_ensure(struct manifest *m, const struct task_record *rec, uint32_t *id,
			 bool *created)
{
	if (created)
		*created = false;
	if (!rec || !rec->name[0])
		return -EINVAL;
	if (m->mode != MANIFEST_RDWR) {
		int rc = manifest_task_find(m, rec->name, id, NULL);
		return rc == -ENOENT ? -EROFS : rc;
	}
	struct buf val = BUF_INIT;
	codec_task_encode(rec, &val);
	int rc;
	for (;;) {
		MDB_txn *txn;
		struct task_entry *arr = NULL;
		size_t n = 0;
		rc = mf_write_begin(m, &txn);
		if (rc)
			break;
		rc = tasks_load(m, txn, &arr, &n);
		if (rc) {
			mf_write_abort(m, txn);
			break;
		}
		uint32_t last = n ? arr[n - 1].id : 0;
		bool found = false, busy = false;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(arr[i].rec.name, rec->name) == 0) {
				if (id)
					*id = arr[i].id;
				found = true;
				if (!strcmp(arr[i].rec.state, MANIFEST_TASK_PURGING))
					busy = true;
				break;
			}
		}
		free(arr);
		if (found) {
			mf_write_abort(m, txn);
			rc = busy ? -EBUSY : 0;
			break;
		}
		if (last == UINT32_MAX) {
			mf_write_abort(m, txn);
			rc = -EOVERFLOW;
			break;
		}
		unsigned char kb[4];
		mf_be32(kb, last + 1);
		MDB_val k = {4, kb}, v = {val.len, val.data};
		int lrc = mdb_put(txn, m->dbi_tasks, &k, &v, MDB_NOOVERWRITE);
		if (lrc)
			mf_write_abort(m, txn);
		else
			lrc = mf_write_commit(m, txn);
		if (lrc == MDB_MAP_FULL) {
			rc = mf_grow(m);
			if (rc)
				break;
			continue;
		}
		rc = mf_errno(lrc);
		if (!rc) {
			if (id)
				*id = last + 1;
			if (created)
				*created = true;
		}
		break;
	}
	buf_release(&val);
	return rc;
}

int manifest_task_put(struct manifest *m, uint32_t id, const struct task_record *rec)
{
	if (!rec)
		return -EINVAL;
	struct buf val = BUF_INIT;
	codec_task_encode(rec, &val);
	int rc;
	for (;;) {
		MDB_txn *txn;
		rc = mf_write_begin(m, &txn);
		if (rc)
			break;
		unsigned char kb[4];
		mf_be32(kb, id);
		MDB_val k = {4, kb}, v = {val.len, val.data};
		int lrc = mdb_put(txn, m->dbi_tasks, &k, &v, 0);
		if (lrc)
			mf_write_abort(m, txn);
		else
			lrc = mf_write_commit(m, txn);
		if (lrc == MDB_MAP_FULL) {
			rc = mf_grow(m);
			if (rc)
				break;
			continue;
		}
		rc = mf_errno(lrc);
		break;
	}
	buf_release(&val);
	return rc;
}

int manifest_task_each(struct manifest *m,
		       int (*fn)(void *ctx, uint32_t id, const struct task_record *rec), void *ctx)
{
	MDB_txn *txn;
	struct task_entry *arr = NULL;
	size_t n = 0;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	rc = tasks_load(m, txn, &arr, &n);
	mf_read_end(m, txn);
	if (rc)
		return rc;
	/* called outside the transaction: fn may use the manifest freely */
	for (size_t i = 0; i < n && !rc; i++)
		rc = fn(ctx, arr[i].id, &arr[i].rec);
	free(arr);
	return rc;
}

/* ---- point reads ---- */

int manifest_obj_get(struct manifest *m, uint32_t task, const char *key, size_t key_len,
		     struct obj_record *out)
{
	if (key_len > MANIFEST_KEY_MAX)
		return -ENAMETOOLONG;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	MDB_val v;
	rc = mf_tree_get(m, txn, &MF_TASK_ROOT(m->dbi_objects, task), key, key_len, &v);
	if (rc)
		rc = mf_errno(rc);
	else
		rc = codec_obj_decode(v.mv_data, v.mv_size, out);
	mf_read_end(m, txn);
	return rc;
}

int manifest_upload_get(struct manifest *m, uint32_t task, const char *key, size_t key_len,
			struct upload_record *out)
{
	memset(out, 0, sizeof(*out));
	if (key_len > MANIFEST_KEY_MAX)
		return -ENAMETOOLONG;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	MDB_val v;
	rc = mf_tree_get(m, txn, &MF_TASK_ROOT(m->dbi_uploads, task), key, key_len, &v);
	if (rc)
		rc = mf_errno(rc);
	else
		rc = codec_upload_decode(v.mv_data, v.mv_size, out);
	mf_read_end(m, txn);
	return rc;
}

int manifest_image_get(struct manifest *m, uint32_t task, const char *ref, size_t ref_len,
		       struct image_record *out)
{
	memset(out, 0, sizeof(*out));
	if (ref_len > MANIFEST_KEY_MAX)
		return -ENAMETOOLONG;
	if (!m->have_images)
		return -ENOENT;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	MDB_val v;
	rc = mf_tree_get(m, txn, &MF_TASK_ROOT(m->dbi_images, task), ref, ref_len, &v);
	if (rc)
		rc = mf_errno(rc);
	else
		rc = codec_image_decode(v.mv_data, v.mv_size, out);
	mf_read_end(m, txn);
	return rc;
}

void mf_blob_key(const char *registry, const char *digest, const char *repo, struct buf *out)
{
	codec_blob_key(XXH3_64bits(registry, strlen(registry)), digest,
		       repo ? XXH3_64bits(repo, strlen(repo)) : 0, repo != NULL, out);
}

/* Digests are "algorithm:hex"; anything longer than the record allows is refused. */
static int blob_args_ok(const char *registry, const char *repo, const char *digest)
{
	if (!registry || !digest || !*digest || strlen(digest) >= CODEC_DIGEST_MAX)
		return -EINVAL;
	if (repo && (!*repo || strlen(repo) >= CODEC_REPO_MAX))
		return -EINVAL;
	return 0;
}

int manifest_blob_get(struct manifest *m, const char *registry, const char *repo,
		      const char *digest, struct blob_record *out)
{
	memset(out, 0, sizeof(*out));
	int rc = blob_args_ok(registry, repo, digest);
	if (rc || !repo)
		return rc ? rc : -EINVAL;
	if (!m->have_blobs)
		return -ENOENT;
	struct buf key = BUF_INIT;
	mf_blob_key(registry, digest, repo, &key);
	MDB_txn *txn;
	rc = mf_read_begin(m, &txn);
	if (rc)
		goto out;
	MDB_val k = {key.len, key.data}, v;
	rc = mdb_get(txn, m->dbi_blobs, &k, &v);
	if (rc)
		rc = mf_errno(rc);
	else if ((rc = codec_blob_decode(v.mv_data, v.mv_size, out)) == 0 &&
		 strcmp(out->repo, repo))
		rc = -ENOENT; /* another repository with the same 64-bit hash */
	mf_read_end(m, txn);
out:
	buf_release(&key);
	return rc;
}

int manifest_blob_repos(struct manifest *m, const char *registry, const char *digest,
			int (*fn)(void *ctx, const struct blob_record *r), void *ctx)
{
	int rc = blob_args_ok(registry, NULL, digest);
	if (rc)
		return rc;
	if (!m->have_blobs)
		return 0;
	struct buf pfx = BUF_INIT;
	mf_blob_key(registry, digest, NULL, &pfx);
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	rc = mf_read_begin(m, &txn);
	if (rc)
		goto out;
	rc = mdb_cursor_open(txn, m->dbi_blobs, &cur);
	MDB_val k = {pfx.len, pfx.data}, v;
	if (!rc)
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	int stop = 0;
	while (rc == 0 && k.mv_size > pfx.len && !memcmp(k.mv_data, pfx.data, pfx.len)) {
		struct blob_record r;
		if (codec_blob_decode(v.mv_data, v.mv_size, &r) == 0 && (stop = fn(ctx, &r)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	rc = stop ? stop : rc == MDB_NOTFOUND ? 0 : rc ? mf_errno(rc) : 0;
	if (cur)
		mdb_cursor_close(cur);
	mf_read_end(m, txn);
out:
	buf_release(&pfx);
	return rc;
}

int manifest_stats_get(struct manifest *m, uint32_t task, struct task_stats *out)
{
	memset(out, 0, sizeof(*out));
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	unsigned char kb[4];
	mf_be32(kb, task);
	MDB_val k = {4, kb}, v;
	rc = mdb_get(txn, m->dbi_stats, &k, &v);
	if (rc == MDB_NOTFOUND)
		rc = 0; /* a task without objects: all zero */
	else if (rc)
		rc = mf_errno(rc);
	else
		rc = codec_stats_decode(v.mv_data, v.mv_size, out);
	mf_read_end(m, txn);
	return rc;
}

/* ---- tree walks ---- */

void mf_iter_init(struct mf_iter *it, struct manifest *m, MDB_txn *txn, const struct mf_node *root)
{
	it->m = m;
	it->txn = txn;
	it->root = *root;
	it->depth = 0;
	it->opened = 0;
	it->klen = 0;
	it->val.mv_size = 0;
	it->val.mv_data = NULL;
}

void mf_iter_close(struct mf_iter *it)
{
	for (int d = 0; d < it->opened; d++)
		mdb_cursor_close(it->lv[d].cur);
	it->opened = 0;
	it->depth = 0;
}

int mf_iter_renew(struct mf_iter *it, MDB_txn *txn)
{
	it->txn = txn;
	for (int d = 0; d < it->opened; d++) {
		int rc = mdb_cursor_renew(txn, it->lv[d].cur);
		if (rc)
			return rc;
	}
	return 0;
}

static int lvl_enter(struct mf_iter *it, int d, MDB_dbi dbi)
{
	if (d >= it->opened) {
		int rc = mdb_cursor_open(it->txn, dbi, &it->lv[d].cur);
		if (rc)
			return rc;
		it->opened = d + 1;
	}
	return 0;
}

static int lvl_push(struct mf_iter *it, const MDB_val *mark, size_t chunk)
{
	if (it->depth >= MF_DEPTH_MAX)
		return MDB_CORRUPTED;
	struct mf_lvl *p = &it->lv[it->depth - 1], *n = &it->lv[it->depth];
	struct mf_node nd;
	int rc = node_from_mark(it->m, mark, &nd);
	if (rc)
		return rc;
	rc = lvl_enter(it, it->depth, it->m->dbi_long);
	if (rc)
		return rc;
	memcpy(n->pfx, nd.pfx, MF_EXT_PFX);
	n->plen = MF_EXT_PFX;
	n->koff = p->koff + chunk;
	it->depth++;
	return 0;
}

/* From the LMDB position (rc, k, v) of the deepest level, move to the next
 * leaf in order: pop exhausted groups, descend into markers. */
static int iter_settle(struct mf_iter *it, int rc, MDB_val *k, MDB_val *v)
{
	for (;;) {
		struct mf_lvl *l = &it->lv[it->depth - 1];
		if (rc == 0 && (k->mv_size < l->plen || memcmp(k->mv_data, l->pfx, l->plen) != 0))
			rc = MDB_NOTFOUND;
		if (rc == MDB_NOTFOUND) {
			if (it->depth == 1)
				return MDB_NOTFOUND;
			it->depth--;
			rc = mdb_cursor_get(it->lv[it->depth - 1].cur, k, v, MDB_NEXT);
			continue;
		}
		if (rc)
			return rc;
		size_t chunk = k->mv_size - l->plen;
		if (k->mv_size == MF_LMDB_KEY_MAX) {
			chunk--;
			memcpy(it->kb + l->koff, (const unsigned char *)k->mv_data + l->plen,
			       chunk);
			rc = lvl_push(it, v, chunk);
			if (rc)
				return rc;
			struct mf_lvl *n = &it->lv[it->depth - 1];
			k->mv_size = n->plen;
			k->mv_data = n->pfx;
			rc = mdb_cursor_get(n->cur, k, v, MDB_SET_RANGE);
			continue;
		}
		memcpy(it->kb + l->koff, (const unsigned char *)k->mv_data + l->plen, chunk);
		it->klen = l->koff + chunk;
		it->val = *v;
		return 0;
	}
}

int mf_iter_seek(struct mf_iter *it, const char *t, size_t tl)
{
	unsigned char kb[MF_LMDB_KEY_MAX];
	int rc = lvl_enter(it, 0, it->root.dbi);
	if (rc)
		return rc;
	it->depth = 1;
	memcpy(it->lv[0].pfx, it->root.pfx, it->root.plen);
	it->lv[0].plen = it->root.plen;
	it->lv[0].koff = 0;
	for (;;) {
		struct mf_lvl *l = &it->lv[it->depth - 1];
		struct mf_node nd = {0, {0}, l->plen};
		memcpy(nd.pfx, l->pfx, l->plen);
		bool mark;
		size_t ks = node_key(&nd, t, tl, kb, &mark);
		MDB_val k = {ks, kb}, v;
		rc = mdb_cursor_get(l->cur, &k, &v, MDB_SET_RANGE);
		if (mark && rc == 0 && k.mv_size == ks && memcmp(k.mv_data, kb, ks) == 0) {
			size_t chunk = node_chunk(&nd);
			memcpy(it->kb + l->koff, t, chunk);
			rc = lvl_push(it, &v, chunk);
			if (rc)
				return rc;
			t += chunk;
			tl -= chunk;
			continue;
		}
		return iter_settle(it, rc, &k, &v);
	}
}

int mf_iter_next(struct mf_iter *it)
{
	MDB_val k, v;
	int rc = mdb_cursor_get(it->lv[it->depth - 1].cur, &k, &v, MDB_NEXT);
	return iter_settle(it, rc, &k, &v);
}

/* ---- cursors ---- */

struct manifest_cursor {
	struct manifest *m;
	enum manifest_db db;
	char *prefix;
	size_t prefix_len;
	struct buf first; /* where the scan starts: max(start, prefix) */
	MDB_txn *txn;
	bool live; /* txn holds a snapshot */
	unsigned long gen;
	struct mf_iter it;
	struct buf last; /* the key last returned */
	bool have_last, started, done;
	unsigned since_renew;
	uint64_t renew_ms;
	struct upload_record up;
	/* A wrapped cursor (manifest_cursor_wrap): its records come from wnext,
	 * none of the fields above is used. */
	int (*wnext)(void *ctx, const char **key, size_t *key_len, struct obj_record *rec);
	void (*wfree)(void *ctx);
	void *wctx;
};

struct manifest_cursor *manifest_cursor_wrap(int (*next)(void *ctx, const char **key,
							 size_t *key_len, struct obj_record *rec),
					     void (*free_ctx)(void *ctx), void *ctx)
{
	struct manifest_cursor *c = xcalloc(1, sizeof(*c));
	c->db = MANIFEST_OBJECTS;
	c->wnext = next;
	c->wfree = free_ctx;
	c->wctx = ctx;
	return c;
}

struct manifest_cursor *manifest_cursor_new(struct manifest *m, enum manifest_db db, uint32_t task,
					    const char *prefix, const char *start,
					    struct dth_err *err)
{
	err_clear(err);
	if (db != MANIFEST_OBJECTS && db != MANIFEST_UPLOADS && db != MANIFEST_IMAGES) {
		err_set(err, -EINVAL, "manifest cursor: unknown database %d", (int)db);
		return NULL;
	}
	size_t pl = prefix ? strlen(prefix) : 0, sl = start ? strlen(start) : 0;
	if (pl > MANIFEST_KEY_MAX || sl > MANIFEST_KEY_MAX) {
		err_set(err, -ENAMETOOLONG, "manifest cursor: prefix or start key too long");
		return NULL;
	}
	struct manifest_cursor *c = xcalloc(1, sizeof(*c));
	c->m = m;
	c->db = db;
	MDB_dbi root = db == MANIFEST_OBJECTS	? m->dbi_objects
		       : db == MANIFEST_UPLOADS ? m->dbi_uploads
						: m->dbi_images;
	c->done = db == MANIFEST_IMAGES && !m->have_images; /* an older manifest: empty */
	c->prefix = pl ? xstrndup(prefix, pl) : NULL;
	c->prefix_len = pl;
	buf_init(&c->first);
	buf_init(&c->last);
	if (start && bytes_order(start, sl, prefix ? prefix : "", pl) > 0)
		buf_add(&c->first, start, sl);
	else if (pl)
		buf_add(&c->first, prefix, pl);
	/* take a transaction now so a failure shows here, not in the first next */
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc) {
		err_set(err, rc, "manifest %s: cannot begin a read transaction: %s", m->dir,
			strerror(-rc));
		manifest_cursor_free(c);
		return NULL;
	}
	mdb_txn_reset(txn);
	c->txn = txn;
	mf_iter_init(&c->it, m, txn, &MF_TASK_ROOT(root, task));
	pthread_rwlock_unlock(&m->gate);
	return c;
}

static void cursor_drop_snapshot(struct manifest_cursor *c)
{
	if (c->live) {
		mdb_txn_reset(c->txn);
		c->live = false;
	}
}

/* Move to the next key to return; called with the gate held shared (it may be
 * released and taken again to adopt a resized map). 1, 0 or an LMDB code. */
static int cursor_step(struct manifest_cursor *c)
{
	struct manifest *m = c->m;
	int rc;
	bool renew = !c->live || c->gen != m->gen || c->since_renew >= MF_RENEW_RECORDS ||
		     now_mono_ms() - c->renew_ms >= MF_RENEW_MS;
	if (!renew) {
		rc = c->started ? mf_iter_next(&c->it)
				: mf_iter_seek(&c->it, c->first.data, c->first.len);
		goto positioned;
	}
	for (int tries = 0;; tries++) {
		if (c->live) {
			mdb_txn_reset(c->txn);
			c->live = false;
		}
		rc = mdb_txn_renew(c->txn);
		if (rc == MDB_MAP_RESIZED && tries < MF_RESIZE_RETRIES) {
			pthread_rwlock_unlock(&m->gate);
			int e = mf_adopt_mapsize(m);
			pthread_rwlock_rdlock(&m->gate);
			if (e)
				return MDB_MAP_RESIZED;
			continue;
		}
		if (rc)
			return rc;
		break;
	}
	c->live = true;
	c->gen = m->gen;
	c->since_renew = 0;
	c->renew_ms = now_mono_ms();
	rc = mf_iter_renew(&c->it, c->txn);
	if (rc)
		return rc;
	if (!c->have_last) {
		rc = mf_iter_seek(&c->it, c->first.data, c->first.len);
	} else {
		rc = mf_iter_seek(&c->it, c->last.data, c->last.len);
		if (rc == 0 && bytes_order(c->it.kb, c->it.klen, c->last.data, c->last.len) == 0)
			rc = mf_iter_next(&c->it);
	}
positioned:
	c->started = true;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (c->prefix_len &&
	    (c->it.klen < c->prefix_len || memcmp(c->it.kb, c->prefix, c->prefix_len) != 0))
		return 0;
	c->since_renew++;
	buf_reset(&c->last);
	buf_add(&c->last, c->it.kb, c->it.klen);
	c->have_last = true;
	return 1;
}

static int cursor_next_raw(struct manifest_cursor *c, const char **key, size_t *key_len,
			   struct obj_record *obj, struct upload_record *up,
			   struct image_record *img)
{
	if (c->done)
		return 0;
	pthread_rwlock_rdlock(&c->m->gate);
	int rc = cursor_step(c);
	if (rc == 1) {
		*key = c->last.data;
		*key_len = c->last.len;
		int e = 0;
		if (obj)
			e = codec_obj_decode(c->it.val.mv_data, c->it.val.mv_size, obj);
		if (img)
			e = codec_image_decode(c->it.val.mv_data, c->it.val.mv_size, img);
		if (up) {
			codec_upload_release(&c->up);
			e = codec_upload_decode(c->it.val.mv_data, c->it.val.mv_size, &c->up);
			*up = c->up;
		}
		if (e)
			rc = e;
	} else if (rc == 0) {
		c->done = true;
		cursor_drop_snapshot(c);
	} else {
		cursor_drop_snapshot(c);
		rc = mf_errno(rc);
	}
	pthread_rwlock_unlock(&c->m->gate);
	return rc;
}

int manifest_cursor_next(struct manifest_cursor *c, const char **key, size_t *key_len,
			 struct obj_record *rec)
{
	if (c->wnext) {
		struct obj_record scratch;
		return c->wnext(c->wctx, key, key_len, rec ? rec : &scratch);
	}
	if (c->db != MANIFEST_OBJECTS) {
		if (rec)
			memset(rec, 0, sizeof(*rec));
		rec = NULL;
	}
	return cursor_next_raw(c, key, key_len, rec, NULL, NULL);
}

int manifest_cursor_next_image(struct manifest_cursor *c, const char **key, size_t *key_len,
			       struct image_record *rec)
{
	if (c->db != MANIFEST_IMAGES || c->wnext)
		return -EINVAL;
	return cursor_next_raw(c, key, key_len, NULL, NULL, rec);
}

int manifest_cursor_next_upload(struct manifest_cursor *c, const char **key, size_t *key_len,
				struct upload_record *rec)
{
	if (c->db != MANIFEST_UPLOADS || c->wnext)
		return -EINVAL;
	return cursor_next_raw(c, key, key_len, NULL, rec, NULL);
}

void manifest_cursor_free(struct manifest_cursor *c)
{
	if (!c)
		return;
	if (c->wnext) {
		if (c->wfree)
			c->wfree(c->wctx);
		free(c);
		return;
	}
	mf_iter_close(&c->it);
	if (c->txn)
		mdb_txn_abort(c->txn);
	codec_upload_release(&c->up);
	buf_release(&c->first);
	buf_release(&c->last);
	free(c->prefix);
	free(c);
}

/* ---- task notes (database meta: "note/" + 8 hex digits of the task id +
 * "/" + name) ---- */

#define NOTE_NAME_MAX 32

static int note_key(uint32_t task, const char *name, char *out, size_t size)
{
	if (!*name || strlen(name) > NOTE_NAME_MAX)
		return -EINVAL;
	return xsnprintf(out, size, "note/%08x/%s", task, name) < 0 ? -EINVAL : 0;
}

struct note_put {
	const char *key;
	const void *data;
	size_t len;
};

static int note_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct note_put *p = ctx;
	MDB_val k = {strlen(p->key), (void *)p->key};
	if (!p->data) {
		int rc = mdb_del(txn, m->dbi_meta, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	MDB_val v = {p->len, (void *)p->data};
	return mdb_put(txn, m->dbi_meta, &k, &v, 0);
}

int manifest_task_note_put(struct manifest *m, uint32_t task, const char *name, const void *data,
			   size_t len)
{
	char key[64];
	if (note_key(task, name, key, sizeof(key)) || len > MANIFEST_NOTE_MAX || (!data && len))
		return -EINVAL;
	if (m->mode != MANIFEST_RDWR)
		return -EROFS;
	struct note_put p = {key, data ? data : "", len};
	return mf_write_txn(m, note_txn, &p);
}

int manifest_task_note_del(struct manifest *m, uint32_t task, const char *name)
{
	char key[64];
	if (note_key(task, name, key, sizeof(key)))
		return -EINVAL;
	if (m->mode != MANIFEST_RDWR)
		return -EROFS;
	struct note_put p = {key, NULL, 0};
	return mf_write_txn(m, note_txn, &p);
}

int mf_notes_del(struct manifest *m, MDB_txn *txn, uint32_t task)
{
	char pfx[32];
	xsnprintf(pfx, sizeof(pfx), "note/%08x/", task);
	size_t plen = strlen(pfx);
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, m->dbi_meta, &c);
	if (rc)
		return rc;
	for (;;) { /* seek again after each delete: few notes a task */
		MDB_val k = {plen, pfx}, v;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc || k.mv_size < plen || memcmp(k.mv_data, pfx, plen))
			break;
		if ((rc = mdb_cursor_del(c, 0)))
			break;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int manifest_task_note_get(struct manifest *m, uint32_t task, const char *name, struct buf *out)
{
	char key[64];
	buf_reset(out);
	if (note_key(task, name, key, sizeof(key)))
		return -EINVAL;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	MDB_val k = {strlen(key), key}, v;
	rc = mdb_get(txn, m->dbi_meta, &k, &v);
	if (rc == 0)
		buf_add(out, v.mv_data, v.mv_size);
	mf_read_end(m, txn);
	return rc ? mf_errno(rc) : 0;
}
