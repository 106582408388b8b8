/* The status index and paging objects by status.
 *
 * statusidx holds one entry, with an empty value, for every object whose
 * status is pending, copying or failed (the few that an operator pages
 * through; done, skipped and deleted are the bulk and are not indexed). Its
 * keys use the long-key tree of manifest.c with the root node (statusidx,
 * task id + status byte), so the entries of one task and status come in the
 * byte order of the object keys and any key up to MANIFEST_KEY_MAX fits;
 * inner groups live in longkeys beside those of the objects.
 *
 * Exactness: the writer updates the index in the transaction that writes or
 * deletes the object (mf_sidx_update, from the old record it reads anyway),
 * so a snapshot never shows the two out of step. A manifest written by a dth
 * without the index gets it built once, by the first RDWR open
 * (mf_sidx_build): the objects are walked task by task in write transactions
 * of SIDX_BUILD_CHUNK records, each reading the current records, so a
 * concurrent writer (which keeps the index too) is never contradicted; the
 * build is idempotent, so an interrupted one just starts again. Until meta
 * "statusidx" says it is complete, pages are found by scanning. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define SIDX_BUILD_CHUNK 10000

unsigned manifest_page_scan = MANIFEST_PAGE_SCAN;

/* ---- maintenance (writer thread) ---- */

static int sidx_del(struct manifest *m, MDB_txn *txn, uint32_t task, const char *key,
		    size_t key_len, int status)
{
	struct mf_node r;
	mf_root_sidx(&r, m->dbi_sidx, task, (uint8_t)status);
	int rc = mf_tree_del(m, txn, &r, key, key_len);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int mf_sidx_update(struct manifest *m, MDB_txn *txn, uint32_t task, const char *key, size_t key_len,
		   int old, int new_status)
{
	int rc = 0;
	if (old == -2) {
		for (int s = 0; s < OBJ__COUNT && !rc; s++)
			if (mf_sidx_status(s) && s != new_status)
				rc = sidx_del(m, txn, task, key, key_len, s);
	} else if (mf_sidx_status(old) && old != new_status) {
		rc = sidx_del(m, txn, task, key, key_len, old);
	}
	if (rc || !mf_sidx_status(new_status))
		return rc;
	/* put even when old == new_status: it heals an entry a build has not
	 * reached yet, and costs one lookup */
	struct mf_node r;
	mf_root_sidx(&r, m->dbi_sidx, task, (uint8_t)new_status);
	MDB_val v = {0, ""};
	return mf_tree_put(m, txn, &r, key, key_len, &v);
}

bool mf_sidx_ready(struct manifest *m, MDB_txn *txn)
{
	uint64_t v;
	return m->have_sidx && mf_meta_get_u64(txn, m->dbi_meta, "statusidx", &v) == 0 && v == 1;
}

/* ---- building it on an older manifest ---- */

struct build {
	/* where the next chunk starts: task, and the last key done (has_after) */
	uint32_t task;
	bool has_after, done;
	struct buf after;
	/* the chunk's outcome, adopted only once its transaction committed */
	uint32_t n_task;
	bool n_has_after, n_done;
	struct buf n_after;
	struct buf keys; /* status (1 byte), length (size_t), key bytes; repeated */
	uint32_t keys_task;
	uint64_t indexed, n_indexed;
};

/* The first task >= from with objects; MDB_NOTFOUND when none. */
static int next_task(struct manifest *m, MDB_txn *txn, uint32_t from, uint32_t *task)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, m->dbi_objects, &cur);
	if (rc)
		return rc;
	unsigned char kb[4];
	mf_be32(kb, from);
	MDB_val k = {4, kb}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (!rc && k.mv_size < 4)
		rc = MDB_CORRUPTED;
	if (!rc)
		*task = mf_get_be32(k.mv_data);
	mdb_cursor_close(cur);
	return rc;
}

static int build_finish(struct manifest *m, MDB_txn *txn)
{
	int rc = mf_meta_put_u64(txn, m->dbi_meta, "statusidx", 1);
	if (!rc)
		rc = mf_meta_put_u64(txn, m->dbi_meta, "schema", MANIFEST_SCHEMA_VERSION);
	return rc;
}

/* Walk up to SIDX_BUILD_CHUNK records of the current task, collecting the
 * keys to index into b->keys. */
static int build_collect(struct manifest *m, MDB_txn *txn, struct build *b)
{
	struct mf_iter *it = xmalloc(sizeof(*it));
	b->keys_task = b->n_task;
	mf_iter_init(it, m, txn, &MF_TASK_ROOT(m->dbi_objects, b->n_task));
	int rc = mf_iter_seek(it, b->n_has_after ? b->n_after.data : NULL,
			      b->n_has_after ? b->n_after.len : 0);
	if (!rc && b->n_has_after &&
	    !bytes_order(it->kb, it->klen, b->n_after.data, b->n_after.len))
		rc = mf_iter_next(it);
	for (unsigned n = 0; !rc && n < SIDX_BUILD_CHUNK; n++) {
		struct obj_record r;
		if (codec_obj_decode(it->val.mv_data, it->val.mv_size, &r) == 0 &&
		    mf_sidx_status(r.status)) {
			unsigned char st = r.status;
			size_t kl = it->klen;
			buf_add(&b->keys, &st, 1);
			buf_add(&b->keys, &kl, sizeof(kl));
			buf_add(&b->keys, it->kb, kl);
		}
		buf_reset(&b->n_after);
		buf_add(&b->n_after, it->kb, it->klen);
		b->n_has_after = true;
		rc = mf_iter_next(it);
	}
	mf_iter_close(it);
	free(it);
	if (rc == MDB_NOTFOUND) { /* the task is done: on to the next */
		b->n_has_after = false;
		if (b->n_task == UINT32_MAX)
			b->n_done = true;
		else
			b->n_task++;
		return 0;
	}
	return rc;
}

static int build_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct build *b = ctx;
	b->n_task = b->task;
	b->n_has_after = b->has_after;
	b->n_done = false;
	b->n_indexed = 0;
	buf_reset(&b->n_after);
	buf_add(&b->n_after, b->after.data, b->after.len);
	buf_reset(&b->keys);
	if (mf_sidx_ready(m, txn)) { /* another process finished it */
		b->n_done = true;
		return 0;
	}
	int rc = 0;
	if (!b->n_has_after) {
		rc = next_task(m, txn, b->n_task, &b->n_task);
		if (rc == MDB_NOTFOUND) {
			b->n_done = true;
			return build_finish(m, txn);
		}
	}
	if (!rc)
		rc = build_collect(m, txn, b);
	for (size_t off = 0; !rc && off < b->keys.len;) {
		unsigned char st = (unsigned char)b->keys.data[off];
		size_t kl;
		memcpy(&kl, b->keys.data + off + 1, sizeof(kl));
		const char *key = b->keys.data + off + 1 + sizeof(kl);
		off += 1 + sizeof(kl) + kl;
		rc = mf_sidx_update(m, txn, b->keys_task, key, kl, -1, st);
		b->n_indexed++;
	}
	if (!rc && b->n_done)
		rc = build_finish(m, txn);
	return rc;
}

int mf_sidx_build(struct manifest *m, struct dth_err *err)
{
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return err_set(err, rc, "manifest %s: cannot begin a transaction: %s", m->dir,
			       strerror(-rc));
	bool ready = mf_sidx_ready(m, txn);
	mf_read_end(m, txn);
	if (ready)
		return 0;
	log_info("manifest %s: building the index of objects by status (once)", m->dir);
	struct build b;
	memset(&b, 0, sizeof(b));
	buf_init(&b.after);
	buf_init(&b.n_after);
	buf_init(&b.keys);
	uint64_t chunks = 0;
	while (!b.done) {
		rc = mf_write_txn(m, build_txn, &b);
		if (rc) {
			err_set(err, rc, "manifest %s: cannot build the status index: %s", m->dir,
				strerror(-rc));
			break;
		}
		b.task = b.n_task;
		b.has_after = b.n_has_after;
		b.done = b.n_done;
		buf_reset(&b.after);
		buf_add(&b.after, b.n_after.data, b.n_after.len);
		b.indexed += b.n_indexed;
		chunks++;
	}
	if (!rc)
		log_info("manifest %s: status index built: %llu objects in %llu transactions",
			 m->dir, (unsigned long long)b.indexed, (unsigned long long)chunks);
	buf_release(&b.after);
	buf_release(&b.n_after);
	buf_release(&b.keys);
	return rc;
}

/* ---- pages ---- */

struct page {
	struct buf keys;	/* the keys given, back to back */
	size_t *klen;		/* their lengths */
	struct obj_record *rec; /* their records */
	unsigned n;
	struct buf last; /* the last key examined */
	bool more;
};

/* Collect the page from one snapshot. */
static int page_collect(struct manifest *m, MDB_txn *txn, uint32_t task, int status,
			const char *after, size_t after_len, unsigned limit, struct page *p)
{
	bool use_idx = mf_sidx_status(status) && mf_sidx_ready(m, txn);
	struct mf_node root;
	if (use_idx)
		mf_root_sidx(&root, m->dbi_sidx, task, (uint8_t)status);
	else
		mf_root_task(&root, m->dbi_objects, task);
	struct mf_iter *it = xmalloc(sizeof(*it));
	mf_iter_init(it, m, txn, &root);
	int rc = mf_iter_seek(it, after, after ? after_len : 0);
	if (!rc && after && !bytes_order(it->kb, it->klen, after, after_len))
		rc = mf_iter_next(it);
	unsigned examined = 0;
	bool warned = false;
	while (!rc) {
		if (p->n == limit || examined >= (manifest_page_scan ? manifest_page_scan : 1)) {
			p->more = true; /* the iterator stands on one more */
			break;
		}
		examined++;
		MDB_val v = it->val;
		if (use_idx)
			rc = mf_tree_get(m, txn, &MF_TASK_ROOT(m->dbi_objects, task),
					 (const char *)it->kb, it->klen, &v);
		struct obj_record *r = &p->rec[p->n];
		if (rc == MDB_NOTFOUND || (!rc && codec_obj_decode(v.mv_data, v.mv_size, r))) {
			if (!warned)
				log_warn("manifest %s: task %u: %s record skipped in a page",
					 m->dir, task,
					 rc ? "an indexed object without a" : "an unreadable");
			warned = true;
			rc = 0;
		} else if (!rc && (status < 0 || r->status == status)) {
			buf_add(&p->keys, it->kb, it->klen);
			p->klen[p->n++] = it->klen;
		}
		if (rc)
			break;
		buf_reset(&p->last);
		buf_add(&p->last, it->kb, it->klen);
		rc = mf_iter_next(it);
	}
	mf_iter_close(it);
	free(it);
	return rc == MDB_NOTFOUND ? 0 : rc ? mf_errno(rc) : 0;
}

int manifest_obj_page(struct manifest *m, uint32_t task, int status, const char *after,
		      size_t after_len, unsigned limit,
		      int (*fn)(void *ctx, const char *key, size_t key_len,
				const struct obj_record *rec),
		      void *ctx, struct buf *next, bool *more)
{
	if (next)
		buf_reset(next);
	if (more)
		*more = false;
	if (status < -1 || status >= OBJ__COUNT || !limit || limit > MANIFEST_PAGE_MAX || !fn)
		return -EINVAL;
	if (after && after_len > MANIFEST_KEY_MAX)
		return -ENAMETOOLONG;
	struct page p;
	memset(&p, 0, sizeof(p));
	buf_init(&p.keys);
	buf_init(&p.last);
	p.klen = xcalloc(limit, sizeof(*p.klen));
	p.rec = xcalloc(limit, sizeof(*p.rec));
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (!rc) {
		rc = page_collect(m, txn, task, status, after, after_len, limit, &p);
		mf_read_end(m, txn);
	}
	if (!rc) {
		if (p.more && next)
			buf_add(next, p.last.data, p.last.len);
		if (more)
			*more = p.more;
		size_t off = 0;
		for (unsigned i = 0; i < p.n && !rc; i++) {
			rc = fn(ctx, p.keys.data + off, p.klen[i], &p.rec[i]);
			off += p.klen[i];
		}
		if (!rc)
			rc = (int)p.n;
	}
	if (rc < 0 && next)
		buf_reset(next);
	buf_release(&p.keys);
	buf_release(&p.last);
	free(p.klen);
	free(p.rec);
	return rc;
}
