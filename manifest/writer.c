/* The manifest writer: a bounded queue of operations drained by one thread
 * that commits them in batches, one LMDB write transaction (fsync'd) per
 * batch, keeping the stats records and the status index (statusidx.c) in step
 * inside the same transaction.
 * Sequence numbers: enq_seq counts operations queued, taken_seq those handed
 * to the thread, done_seq those whose batch has finished (committed, or
 * dropped after an error). The first error is sticky. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/failpoint.h"
#include "common/log.h"

#define WRITER_QUEUE_MIN     4096
#define WRITER_BATCH_DEFAULT 1000
#define WRITER_FLUSH_DEFAULT 200

enum wop_type {
	WOP_PUT_OBJ,
	WOP_DEL_OBJ,
	WOP_PUT_UPLOAD,
	WOP_DEL_UPLOAD,
	WOP_PUT_IMAGE,
	WOP_DEL_IMAGE,
	WOP_PUT_BLOB, /* key: the encoded blob key (mf_blob_key) */
	WOP_DEL_BLOB,
};

struct wop {
	enum wop_type type;
	uint32_t task;
	char *key;
	size_t klen;
	char *val; /* encoded record (put) */
	size_t vlen;
	uint8_t status; /* put obj: new status and size, for stats */
	uint64_t size;
	uint64_t queued_ms;
};

struct stats_slot {
	uint32_t task;
	struct task_stats st;
};

struct manifest_writer {
	struct manifest *m;
	struct manifest_writer *next; /* in m->writers */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_space, cv_done;
	struct wop *ring;
	size_t cap, head, n;
	uint64_t enq_seq, taken_seq, done_seq, flush_req;
	unsigned batch_max, flush_ms;
	bool stop;
	int err;
	/* writer thread only */
	struct wop *batch;
	struct stats_slot *slots;
	size_t n_slots, cap_slots;
};

static void wop_release(struct wop *op)
{
	free(op->key);
	free(op->val);
	op->key = op->val = NULL;
}

/* ---- applying a batch (writer thread) ---- */

static struct task_stats *stats_slot(struct manifest_writer *w, MDB_txn *txn, uint32_t task,
				     int *rc)
{
	for (size_t i = 0; i < w->n_slots; i++)
		if (w->slots[i].task == task)
			return &w->slots[i].st;
	if (w->n_slots == w->cap_slots) {
		w->cap_slots = w->cap_slots ? w->cap_slots * 2 : 8;
		w->slots = xrealloc(w->slots, w->cap_slots * sizeof(*w->slots));
	}
	struct stats_slot *s = &w->slots[w->n_slots];
	memset(s, 0, sizeof(*s));
	s->task = task;
	unsigned char kb[4];
	mf_be32(kb, task);
	MDB_val k = {4, kb}, v;
	*rc = mdb_get(txn, w->m->dbi_stats, &k, &v);
	if (*rc == MDB_NOTFOUND) {
		*rc = 0;
	} else if (*rc) {
		return NULL;
	} else if (codec_stats_decode(v.mv_data, v.mv_size, &s->st) != 0) {
		log_warn("manifest: stats of task %u unreadable, recounting from zero", task);
		memset(&s->st, 0, sizeof(s->st));
	}
	w->n_slots++;
	return &s->st;
}

static void stats_sub(struct task_stats *st, const struct obj_record *old)
{
	unsigned s = old->status;
	if (s >= OBJ__COUNT)
		return;
	st->count[s] = st->count[s] ? st->count[s] - 1 : 0;
	st->bytes[s] = st->bytes[s] >= old->size ? st->bytes[s] - old->size : 0;
}

/* Old object record, if any, is subtracted from the task's stats; *old is
 * its status (-1: none, -2: unreadable). */
static int obj_forget(struct manifest_writer *w, MDB_txn *txn, const struct wop *op, int *old)
{
	struct manifest *m = w->m;
	MDB_val v;
	*old = -1;
	int rc =
	    mf_tree_get(m, txn, &MF_TASK_ROOT(m->dbi_objects, op->task), op->key, op->klen, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	*old = -2;
	struct task_stats *st = stats_slot(w, txn, op->task, &rc);
	if (!st)
		return rc;
	struct obj_record rec;
	if (codec_obj_decode(v.mv_data, v.mv_size, &rec) == 0) {
		stats_sub(st, &rec);
		*old = rec.status;
	} else {
		log_warn("manifest: unreadable object record replaced (task %u)", op->task);
	}
	return 0;
}

static int apply_op(struct manifest_writer *w, MDB_txn *txn, const struct wop *op)
{
	struct manifest *m = w->m;
	int old, rc;
	MDB_val v = {op->vlen, op->val};
	switch (op->type) {
	case WOP_PUT_OBJ: {
		rc = obj_forget(w, txn, op, &old);
		if (rc)
			return rc;
		struct task_stats *st = stats_slot(w, txn, op->task, &rc);
		if (!st)
			return rc;
		st->count[op->status]++;
		st->bytes[op->status] += op->size;
		rc = mf_sidx_update(m, txn, op->task, op->key, op->klen, old, op->status);
		if (rc)
			return rc;
		return mf_tree_put(m, txn, &MF_TASK_ROOT(m->dbi_objects, op->task), op->key,
				   op->klen, &v);
	}
	case WOP_DEL_OBJ:
		rc = obj_forget(w, txn, op, &old);
		if (rc || old == -1)
			return rc;
		rc = mf_sidx_update(m, txn, op->task, op->key, op->klen, old, -1);
		if (rc)
			return rc;
		return mf_tree_del(m, txn, &MF_TASK_ROOT(m->dbi_objects, op->task), op->key,
				   op->klen);
	case WOP_PUT_UPLOAD:
		return mf_tree_put(m, txn, &MF_TASK_ROOT(m->dbi_uploads, op->task), op->key,
				   op->klen, &v);
	case WOP_DEL_UPLOAD:
		rc =
		    mf_tree_del(m, txn, &MF_TASK_ROOT(m->dbi_uploads, op->task), op->key, op->klen);
		return rc == MDB_NOTFOUND ? 0 : rc;
	case WOP_PUT_IMAGE:
		return mf_tree_put(m, txn, &MF_TASK_ROOT(m->dbi_images, op->task), op->key,
				   op->klen, &v);
	case WOP_DEL_IMAGE:
		rc = mf_tree_del(m, txn, &MF_TASK_ROOT(m->dbi_images, op->task), op->key, op->klen);
		return rc == MDB_NOTFOUND ? 0 : rc;
	case WOP_PUT_BLOB: {
		MDB_val k = {op->klen, op->key};
		return mdb_put(txn, m->dbi_blobs, &k, &v, 0);
	}
	case WOP_DEL_BLOB: {
		MDB_val k = {op->klen, op->key};
		rc = mdb_del(txn, m->dbi_blobs, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	}
	return MDB_INVALID;
}

static int stats_write(struct manifest_writer *w, MDB_txn *txn)
{
	struct buf val = BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < w->n_slots && !rc; i++) {
		unsigned char kb[4];
		mf_be32(kb, w->slots[i].task);
		buf_reset(&val);
		codec_stats_encode(&w->slots[i].st, &val);
		MDB_val k = {4, kb}, v = {val.len, val.data};
		rc = mdb_put(txn, w->m->dbi_stats, &k, &v, 0);
	}
	buf_release(&val);
	return rc;
}

static int apply_batch(struct manifest_writer *w, size_t n)
{
	struct manifest *m = w->m;
	for (;;) {
		MDB_txn *txn;
		int rc = mf_write_begin(m, &txn);
		if (rc) {
			log_error("manifest %s: cannot begin a write transaction: %s", m->dir,
				  strerror(-rc));
			return rc;
		}
		w->n_slots = 0;
		for (size_t i = 0; i < n && !rc; i++)
			rc = apply_op(w, txn, &w->batch[i]);
		if (!rc)
			rc = stats_write(w, txn);
		if (rc) {
			mf_write_abort(m, txn);
		} else {
			failpoint_hit(FAILPOINT_COMMIT_BEFORE);
			rc = mf_write_commit(m, txn);
		}
		if (rc == MDB_MAP_FULL) {
			int e = mf_grow(m);
			if (e)
				return e; /* logged by mf_grow */
			continue;
		}
		if (rc) {
			log_error("manifest %s: commit failed: %s", m->dir, mdb_strerror(rc));
			return mf_errno(rc);
		}
		failpoint_hit(FAILPOINT_COMMIT_AFTER);
		return 0;
	}
}

static uint64_t ms_until(uint64_t deadline)
{
	uint64_t now = now_mono_ms();
	return deadline > now ? deadline - now : 0;
}

static void *writer_main(void *arg)
{
	struct manifest_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->n && !w->stop)
			pthread_cond_wait(&w->cv_work, &w->mu);
		if (!w->n && w->stop)
			break;
		/* wait for a full batch, a flush, or the oldest op's deadline */
		while (w->n < w->batch_max && w->flush_req <= w->taken_seq && !w->stop) {
			uint64_t left = ms_until(w->ring[w->head].queued_ms + w->flush_ms);
			if (!left)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(left / 1000);
			ts.tv_nsec += (long)(left % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&w->cv_work, &w->mu, &ts);
		}
		size_t k = w->n < w->batch_max ? w->n : w->batch_max;
		for (size_t i = 0; i < k; i++) {
			w->batch[i] = w->ring[w->head];
			w->head = (w->head + 1) % w->cap;
		}
		w->n -= k;
		w->taken_seq += k;
		int err = w->err;
		pthread_cond_broadcast(&w->cv_space);
		pthread_mutex_unlock(&w->mu);

		int rc = err ? err : apply_batch(w, k);
		for (size_t i = 0; i < k; i++)
			wop_release(&w->batch[i]);

		pthread_mutex_lock(&w->mu);
		if (rc && !w->err)
			w->err = rc;
		w->done_seq += k;
		pthread_cond_broadcast(&w->cv_done);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- public ---- */

struct manifest_writer *manifest_writer_new(struct manifest *m, unsigned batch_max,
					    unsigned flush_ms, struct dth_err *err)
{
	err_clear(err);
	if (m->mode != MANIFEST_RDWR) {
		err_set(err, -EROFS, "manifest %s is open read-only", m->dir);
		return NULL;
	}
	pthread_mutex_lock(&m->lock);
	struct manifest_writer *w = xcalloc(1, sizeof(*w));
	w->m = m;
	w->batch_max = batch_max ? batch_max : WRITER_BATCH_DEFAULT;
	w->flush_ms = flush_ms ? flush_ms : WRITER_FLUSH_DEFAULT;
	w->cap = w->batch_max > WRITER_QUEUE_MIN ? w->batch_max : WRITER_QUEUE_MIN;
	w->ring = xcalloc(w->cap, sizeof(*w->ring));
	w->batch = xcalloc(w->batch_max, sizeof(*w->batch));
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv_work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->cv_space, NULL);
	pthread_cond_init(&w->cv_done, NULL);
	int rc = pthread_create(&w->thread, NULL, writer_main, w);
	if (rc) {
		pthread_mutex_unlock(&m->lock);
		err_set(err, -rc, "manifest: cannot start the writer thread: %s", strerror(rc));
		manifest_writer_free(w);
		return NULL;
	}
	w->thread_started = true;
	w->next = m->writers;
	m->writers = w;
	pthread_mutex_unlock(&m->lock);
	return w;
}

/* Takes ownership of op's buffers. */
static int enqueue(struct manifest_writer *w, struct wop *op)
{
	pthread_mutex_lock(&w->mu);
	while (!w->err && !w->stop && w->n == w->cap)
		pthread_cond_wait(&w->cv_space, &w->mu);
	int rc = w->err ? w->err : w->stop ? -EINVAL : 0;
	if (!rc) {
		op->queued_ms = now_mono_ms();
		w->ring[(w->head + w->n) % w->cap] = *op;
		w->n++;
		w->enq_seq++;
		if (w->n == 1 || w->n >= w->batch_max)
			pthread_cond_signal(&w->cv_work);
	}
	pthread_mutex_unlock(&w->mu);
	if (rc)
		wop_release(op);
	return rc;
}

static int make_op(struct wop *op, enum wop_type type, uint32_t task, const char *key,
		   size_t key_len)
{
	memset(op, 0, sizeof(*op));
	if (key_len > MANIFEST_KEY_MAX)
		return -ENAMETOOLONG;
	if (!key && key_len)
		return -EINVAL;
	op->type = type;
	op->task = task;
	op->key = xmalloc(key_len ? key_len : 1);
	if (key_len)
		memcpy(op->key, key, key_len);
	op->klen = key_len;
	return 0;
}

static int sticky(struct manifest_writer *w)
{
	pthread_mutex_lock(&w->mu);
	int rc = w->err;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int manifest_writer_put_obj(struct manifest_writer *w, uint32_t task, const char *key,
			    size_t key_len, const struct obj_record *rec)
{
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	if (!rec || rec->status >= OBJ__COUNT)
		return -EINVAL;
	rc = make_op(&op, WOP_PUT_OBJ, task, key, key_len);
	if (rc)
		return rc;
	struct buf val = BUF_INIT;
	codec_obj_encode(rec, &val);
	op.val = buf_detach(&val, &op.vlen);
	op.status = rec->status;
	op.size = rec->size;
	return enqueue(w, &op);
}

int manifest_writer_del_obj(struct manifest_writer *w, uint32_t task, const char *key,
			    size_t key_len)
{
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	rc = make_op(&op, WOP_DEL_OBJ, task, key, key_len);
	if (rc)
		return rc;
	return enqueue(w, &op);
}

int manifest_writer_put_upload(struct manifest_writer *w, uint32_t task, const char *key,
			       size_t key_len, const struct upload_record *rec)
{
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	if (!rec)
		return -EINVAL;
	rc = make_op(&op, WOP_PUT_UPLOAD, task, key, key_len);
	if (rc)
		return rc;
	struct buf val = BUF_INIT;
	codec_upload_encode(rec, &val);
	op.val = buf_detach(&val, &op.vlen);
	return enqueue(w, &op);
}

int manifest_writer_del_upload(struct manifest_writer *w, uint32_t task, const char *key,
			       size_t key_len)
{
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	rc = make_op(&op, WOP_DEL_UPLOAD, task, key, key_len);
	if (rc)
		return rc;
	return enqueue(w, &op);
}

int manifest_writer_put_image(struct manifest_writer *w, uint32_t task, const char *ref,
			      size_t ref_len, const struct image_record *rec)
{
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	if (!rec || rec->status >= OBJ__COUNT)
		return -EINVAL;
	rc = make_op(&op, WOP_PUT_IMAGE, task, ref, ref_len);
	if (rc)
		return rc;
	struct buf val = BUF_INIT;
	codec_image_encode(rec, &val);
	op.val = buf_detach(&val, &op.vlen);
	return enqueue(w, &op);
}

int manifest_writer_del_image(struct manifest_writer *w, uint32_t task, const char *ref,
			      size_t ref_len)
{
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	rc = make_op(&op, WOP_DEL_IMAGE, task, ref, ref_len);
	if (rc)
		return rc;
	return enqueue(w, &op);
}

static int blob_op(struct manifest_writer *w, enum wop_type type, const char *registry,
		   const char *repo, const char *digest, const struct blob_record *rec)
{
	if (!registry || !repo || !*repo || strlen(repo) >= CODEC_REPO_MAX || !digest || !*digest ||
	    strlen(digest) >= CODEC_DIGEST_MAX)
		return -EINVAL;
	struct wop op;
	int rc = sticky(w);
	if (rc)
		return rc;
	struct buf key = BUF_INIT;
	mf_blob_key(registry, digest, repo, &key);
	rc = make_op(&op, type, 0, key.data, key.len);
	buf_release(&key);
	if (rc)
		return rc;
	if (rec) {
		struct blob_record r = *rec;
		if (str_copy(r.repo, repo, sizeof(r.repo))) {
			wop_release(&op);
			return -ENAMETOOLONG;
		}
		struct buf val = BUF_INIT;
		codec_blob_encode(&r, &val);
		op.val = buf_detach(&val, &op.vlen);
	}
	return enqueue(w, &op);
}

int manifest_writer_put_blob(struct manifest_writer *w, const char *registry, const char *repo,
			     const char *digest, const struct blob_record *rec)
{
	if (!rec)
		return -EINVAL;
	return blob_op(w, WOP_PUT_BLOB, registry, repo, digest, rec);
}

int manifest_writer_del_blob(struct manifest_writer *w, const char *registry, const char *repo,
			     const char *digest)
{
	return blob_op(w, WOP_DEL_BLOB, registry, repo, digest, NULL);
}

int manifest_writer_flush(struct manifest_writer *w)
{
	pthread_mutex_lock(&w->mu);
	uint64_t target = w->enq_seq;
	if (w->flush_req < target)
		w->flush_req = target;
	pthread_cond_signal(&w->cv_work);
	while (w->done_seq < target)
		pthread_cond_wait(&w->cv_done, &w->mu);
	int rc = w->err;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int manifest_writer_free(struct manifest_writer *w)
{
	if (!w)
		return 0;
	if (w->thread_started) {
		if (manifest_writer_flush(w))
			log_debug("manifest: writer stopping after an error");
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv_work);
		pthread_cond_broadcast(&w->cv_space);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	int rc = w->err;
	for (size_t i = 0; i < w->n; i++)
		wop_release(&w->ring[(w->head + i) % w->cap]);
	struct manifest *m = w->m;
	pthread_mutex_lock(&m->lock);
	for (struct manifest_writer **pp = &m->writers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	pthread_mutex_unlock(&m->lock);
	pthread_cond_destroy(&w->cv_work);
	pthread_cond_destroy(&w->cv_space);
	pthread_cond_destroy(&w->cv_done);
	pthread_mutex_destroy(&w->mu);
	free(w->ring);
	free(w->batch);
	free(w->slots);
	free(w);
	return rc;
}
