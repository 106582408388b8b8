/* The run history and the definitions of API tasks: the databases runs (key:
 * task id + run sequence, codec_run_key) and taskdefs (key: task id). Runs are
 * rare (one per task run), so each call is its own write transaction; a new
 * run and the trimming of the history to MANIFEST_RUNS_KEPT happen in the same
 * one, so the history never exceeds the bound by more than the run being
 * added. Both refuse to add records for a task that does not exist, so a
 * purged task cannot be given new ones by a late caller. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int mf_task_exists(struct manifest *m, MDB_txn *txn, uint32_t task)
{
	unsigned char kb[4];
	mf_be32(kb, task);
	MDB_val k = {4, kb}, v;
	int rc = mdb_get(txn, m->dbi_tasks, &k, &v);
	return rc == MDB_NOTFOUND ? -ENOENT : rc;
}

/* ---- runs ---- */

/* Sequence of the task's newest run (0: none), with cur left anywhere. */
static int run_last_seq(MDB_cursor *cur, uint32_t task, uint64_t *last)
{
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(task, UINT64_MAX, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	*last = 0;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == sizeof(kb) && !memcmp(k.mv_data, kb, sizeof(kb)))
		return -EOVERFLOW;
	rc = rc == 0		  ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
	     : rc == MDB_NOTFOUND ? mdb_cursor_get(cur, &k, &v, MDB_LAST)
				  : rc;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	uint32_t t;
	uint64_t seq;
	if (codec_run_key_decode(k.mv_data, k.mv_size, &t, &seq) == 0 && t == task)
		*last = seq;
	return 0;
}

/* Drop the task's oldest runs beyond MANIFEST_RUNS_KEPT. */
static int run_trim(MDB_cursor *cur, uint32_t task)
{
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(task, 0, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	uint64_t n = 0;
	uint32_t t;
	uint64_t seq;
	int rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (codec_run_key_decode(k.mv_data, k.mv_size, &t, &seq) || t != task)
			break;
		n++;
	}
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (n <= MANIFEST_RUNS_KEPT)
		return 0;
	for (rc = 0; !rc && n > MANIFEST_RUNS_KEPT; n--) {
		k.mv_size = sizeof(kb);
		k.mv_data = kb;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (!rc && (codec_run_key_decode(k.mv_data, k.mv_size, &t, &seq) || t != task))
			rc = MDB_CORRUPTED;
		if (!rc)
			rc = mdb_cursor_del(cur, 0);
	}
	return rc;
}

struct run_begin {
	uint32_t task;
	const struct buf *val;
	uint64_t seq;
};

static int run_begin_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct run_begin *b = ctx;
	int rc = mf_task_exists(m, txn, b->task);
	if (rc)
		return rc;
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, m->dbi_runs, &cur);
	if (rc)
		return rc;
	uint64_t last;
	rc = run_last_seq(cur, b->task, &last);
	if (!rc) {
		b->seq = last + 1;
		unsigned char kb[CODEC_RUN_KEY_LEN];
		codec_run_key(b->task, b->seq, kb);
		MDB_val k = {sizeof(kb), kb}, v = {b->val->len, b->val->data};
		rc = mdb_put(txn, m->dbi_runs, &k, &v, 0);
	}
	if (!rc)
		rc = run_trim(cur, b->task);
	mdb_cursor_close(cur);
	return rc;
}

int manifest_run_begin(struct manifest *m, uint32_t task, const struct run_record *rec,
		       uint64_t *seq)
{
	*seq = 0;
	if (!rec)
		return -EINVAL;
	struct run_record r = *rec;
	r.ended = 0;
	struct buf val = BUF_INIT;
	codec_run_encode(&r, &val);
	struct run_begin b = {task, &val, 0};
	int rc = mf_write_txn(m, run_begin_txn, &b);
	buf_release(&val);
	if (!rc)
		*seq = b.seq;
	return rc;
}

struct run_put {
	uint32_t task;
	uint64_t seq;
	const struct buf *val;
};

static int run_put_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct run_put *p = ctx;
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(p->task, p->seq, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	int rc = mdb_get(txn, m->dbi_runs, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? -ENOENT : rc;
	v.mv_size = p->val->len;
	v.mv_data = p->val->data;
	return mdb_put(txn, m->dbi_runs, &k, &v, 0);
}

int manifest_run_put(struct manifest *m, uint32_t task, uint64_t seq, const struct run_record *rec)
{
	if (!rec || !seq)
		return -EINVAL;
	struct buf val = BUF_INIT;
	codec_run_encode(rec, &val);
	struct run_put p = {task, seq, &val};
	int rc = mf_write_txn(m, run_put_txn, &p);
	buf_release(&val);
	return rc;
}

int manifest_run_get(struct manifest *m, uint32_t task, uint64_t seq, struct run_record *out)
{
	memset(out, 0, sizeof(*out));
	if (!m->have_runs)
		return -ENOENT;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(task, seq, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	rc = mdb_get(txn, m->dbi_runs, &k, &v);
	if (rc)
		rc = mf_errno(rc);
	else
		rc = codec_run_decode(v.mv_data, v.mv_size, out);
	mf_read_end(m, txn);
	if (!rc)
		out->seq = seq;
	return rc;
}

/* Read up to limit runs, newest first, into a malloc'd array. */
static int runs_load(struct manifest *m, MDB_txn *txn, uint32_t task, uint64_t before,
		     unsigned limit, struct run_record **out, size_t *n)
{
	MDB_cursor *cur;
	struct run_record *arr = NULL;
	size_t cnt = 0, cap = 0;
	int rc = mdb_cursor_open(txn, m->dbi_runs, &cur);
	if (rc)
		return mf_errno(rc);
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(task, before ? before : UINT64_MAX, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	else if (rc == 0 &&
		 !(before == 0 && k.mv_size == sizeof(kb) && !memcmp(k.mv_data, kb, sizeof(kb))))
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV); /* the first one < the target */
	for (; rc == 0 && (!limit || cnt < limit); rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		uint32_t t;
		uint64_t seq;
		if (codec_run_key_decode(k.mv_data, k.mv_size, &t, &seq) || t != task)
			break;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			arr = xrealloc(arr, cap * sizeof(*arr));
		}
		rc = codec_run_decode(v.mv_data, v.mv_size, &arr[cnt]);
		if (rc)
			break;
		arr[cnt++].seq = seq;
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

int manifest_run_each(struct manifest *m, uint32_t task, uint64_t before, unsigned limit,
		      int (*fn)(void *ctx, const struct run_record *rec), void *ctx)
{
	if (!m->have_runs || before == 1)
		return 0;
	MDB_txn *txn;
	struct run_record *arr = NULL;
	size_t n = 0;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	rc = runs_load(m, txn, task, before, limit, &arr, &n);
	mf_read_end(m, txn);
	for (size_t i = 0; i < n && !rc; i++)
		rc = fn(ctx, &arr[i]);
	free(arr);
	return rc;
}

/* ---- taskdefs ---- */

struct def_put {
	uint32_t id;
	const struct buf *val; /* NULL: delete */
};

static int def_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct def_put *p = ctx;
	unsigned char kb[4];
	mf_be32(kb, p->id);
	MDB_val k = {4, kb};
	if (!p->val) {
		int rc = mdb_del(txn, m->dbi_taskdefs, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	int rc = mf_task_exists(m, txn, p->id);
	if (rc)
		return rc;
	MDB_val v = {p->val->len, p->val->data};
	return mdb_put(txn, m->dbi_taskdefs, &k, &v, 0);
}

int manifest_taskdef_put(struct manifest *m, uint32_t id, const void *data, size_t len)
{
	if (!data && len)
		return -EINVAL;
	if (len > MANIFEST_TASKDEF_MAX)
		return -EFBIG;
	struct buf val = BUF_INIT;
	codec_taskdef_encode(data, len, &val);
	struct def_put p = {id, &val};
	int rc = mf_write_txn(m, def_txn, &p);
	buf_release(&val);
	return rc;
}

int manifest_taskdef_del(struct manifest *m, uint32_t id)
{
	struct def_put p = {id, NULL};
	return mf_write_txn(m, def_txn, &p);
}

int manifest_taskdef_get(struct manifest *m, uint32_t id, struct buf *out)
{
	buf_reset(out);
	if (!m->have_taskdefs)
		return -ENOENT;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	unsigned char kb[4];
	mf_be32(kb, id);
	MDB_val k = {4, kb}, v;
	rc = mdb_get(txn, m->dbi_taskdefs, &k, &v);
	if (rc) {
		rc = mf_errno(rc);
	} else {
		const void *p;
		size_t n;
		rc = codec_taskdef_decode(v.mv_data, v.mv_size, &p, &n);
		if (!rc && n > MANIFEST_TASKDEF_MAX)
			rc = -EPROTO;
		if (!rc)
			buf_add(out, p, n);
	}
	mf_read_end(m, txn);
	return rc;
}
