/* Deleting a task with all its records (manifest_task_purge).
 *
 * A task can have 10^7 objects: deleting them in one transaction would build
 * a huge dirty page set and hold the write lock for minutes. The purge runs as
 * a sequence of small write transactions instead (manifest_purge_chunk
 * deletions each), tree by tree, each starting again from the first key that
 * is left. The task record is marked "purging" first and deleted last, so
 * whatever point a crash stops it at, the records left still belong to a
 * task that says it is being purged, and purging it again finishes the job
 * (every step is idempotent). The task id is not reused meanwhile: new ids
 * come after the highest id in tasks, which the purging record still holds. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

unsigned manifest_purge_chunk = 10000;
unsigned manifest_purge_stop_after = 0;

#define PURGE_KEY_BYTES (8u << 20) /* bound on the keys collected per transaction */

struct purge {
	uint32_t id;
	const struct mf_node *root; /* the tree being emptied */
	MDB_dbi seqdb;		    /* or the database keyed by task + sequence */
	unsigned deleted;	    /* by the last transaction */
	bool more;		    /* the last transaction left keys */
	struct buf keys;	    /* length (size_t) + key bytes, repeated */
};

static int mark_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct purge *p = ctx;
	p->deleted = 0;
	p->more = false;
	unsigned char kb[4];
	mf_be32(kb, p->id);
	MDB_val k = {4, kb}, v;
	int rc = mdb_get(txn, m->dbi_tasks, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0; /* a purge that got to its end, or no such task: sweep anyway */
	if (rc)
		return rc;
	struct task_record t;
	if (codec_task_decode(v.mv_data, v.mv_size, &t) != 0) {
		log_warn("manifest %s: task %u: unreadable record, purged unmarked", m->dir, p->id);
		return 0;
	}
	if (!strcmp(t.state, MANIFEST_TASK_PURGING))
		return 0;
	str_copy_fit(t.state, MANIFEST_TASK_PURGING, sizeof(t.state));
	struct buf val = BUF_INIT;
	codec_task_encode(&t, &val);
	v.mv_size = val.len;
	v.mv_data = val.data;
	rc = mdb_put(txn, m->dbi_tasks, &k, &v, 0);
	buf_release(&val);
	return rc;
}

/* Delete up to manifest_purge_chunk keys of the tree p->root. */
static int tree_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct purge *p = ctx;
	p->deleted = 0;
	p->more = false;
	buf_reset(&p->keys);
	struct mf_iter *it = xmalloc(sizeof(*it));
	mf_iter_init(it, m, txn, p->root);
	unsigned n = 0;
	int rc = mf_iter_seek(it, NULL, 0);
	for (; !rc; rc = mf_iter_next(it)) {
		if (n == manifest_purge_chunk || p->keys.len >= PURGE_KEY_BYTES) {
			p->more = true;
			break;
		}
		size_t kl = it->klen;
		buf_add(&p->keys, &kl, sizeof(kl));
		buf_add(&p->keys, it->kb, kl);
		n++;
	}
	mf_iter_close(it);
	free(it);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	rc = 0;
	for (size_t off = 0; !rc && off < p->keys.len;) {
		size_t kl;
		memcpy(&kl, p->keys.data + off, sizeof(kl));
		rc = mf_tree_del(m, txn, p->root, p->keys.data + off + sizeof(kl), kl);
		off += sizeof(kl) + kl;
		if (rc == MDB_NOTFOUND)
			rc = 0;
		p->deleted++;
	}
	return rc;
}

/* Delete up to manifest_purge_chunk records of the task from p->seqdb (runs or
 * events: keys task id + sequence). */
static int seq_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	(void)m;
	struct purge *p = ctx;
	p->deleted = 0;
	p->more = false;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, p->seqdb, &cur);
	if (rc)
		return rc;
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(p->id, 0, kb);
	for (;;) {
		MDB_val k = {sizeof(kb), kb}, v;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc)
			break;
		uint32_t t;
		uint64_t seq;
		if (codec_run_key_decode(k.mv_data, k.mv_size, &t, &seq) || t != p->id)
			break;
		if (p->deleted == manifest_purge_chunk) {
			p->more = true;
			break;
		}
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
		p->deleted++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The last step: the definition, the stats, the notes and the task record. */
static int final_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct purge *p = ctx;
	p->deleted = 0;
	p->more = false;
	unsigned char kb[4];
	mf_be32(kb, p->id);
	const MDB_dbi dbs[] = {m->dbi_taskdefs, m->dbi_stats, m->dbi_tasks};
	for (size_t i = 0; i < ARRAY_SIZE(dbs); i++) {
		MDB_val k = {4, kb};
		int rc = mdb_del(txn, dbs[i], &k, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return mf_notes_del(m, txn, p->id);
}

/* Run fn until it leaves nothing (p->more false), counting transactions
 * against the test hook. */
static int purge_loop(struct manifest *m, struct purge *p,
		      int (*fn)(struct manifest *m, MDB_txn *txn, void *ctx), unsigned *txns,
		      uint64_t *deleted)
{
	do {
		if (manifest_purge_stop_after && *txns >= manifest_purge_stop_after)
			return -EINTR;
		int rc = mf_write_txn(m, fn, p);
		if (rc)
			return rc;
		(*txns)++;
		*deleted += p->deleted;
	} while (p->more);
	return 0;
}

int manifest_task_purge(struct manifest *m, uint32_t id, struct dth_err *err)
{
	err_clear(err);
	if (m->mode != MANIFEST_RDWR)
		return err_set(err, -EROFS, "manifest %s is open read-only", m->dir);
	if (!manifest_purge_chunk)
		manifest_purge_chunk = 1;
	struct purge p;
	memset(&p, 0, sizeof(p));
	p.id = id;
	buf_init(&p.keys);
	unsigned txns = 0;
	uint64_t deleted = 0;
	int rc = purge_loop(m, &p, mark_txn, &txns, &deleted);
	struct mf_node roots[6];
	size_t nroots = 0;
	for (int s = 0; s < OBJ__COUNT; s++)
		if (mf_sidx_status(s))
			mf_root_sidx(&roots[nroots++], m->dbi_sidx, id, (uint8_t)s);
	mf_root_task(&roots[nroots++], m->dbi_objects, id);
	mf_root_task(&roots[nroots++], m->dbi_uploads, id);
	mf_root_task(&roots[nroots++], m->dbi_images, id);
	for (size_t i = 0; i < nroots && !rc; i++) {
		p.root = &roots[i];
		rc = purge_loop(m, &p, tree_txn, &txns, &deleted);
	}
	p.seqdb = m->dbi_runs;
	if (!rc)
		rc = purge_loop(m, &p, seq_txn, &txns, &deleted);
	p.seqdb = m->dbi_events;
	if (!rc && m->have_events)
		rc = purge_loop(m, &p, seq_txn, &txns, &deleted);
	if (!rc)
		rc = purge_loop(m, &p, final_txn, &txns, &deleted);
	buf_release(&p.keys);
	if (rc)
		return err_set(err, rc, "manifest %s: purge of task %u stopped: %s", m->dir, id,
			       strerror(-rc));
	log_info("manifest %s: task %u purged (%llu records in %u transactions)", m->dir, id,
		 (unsigned long long)deleted, txns);
	return 0;
}
