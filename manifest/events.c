/* The event journal: database events, key = task id + sequence (the run key
 * layout, codec_run_key), value = the event's key bytes. Sequence 0 is the
 * task's head: next sequence (8 bytes BE), count (8 bytes BE), rescan flag
 * (1 byte). Every change of a task's events rewrites its head in the same
 * transaction, so the count is exact and the bound needs no scan. Sequences
 * only grow; acknowledging deletes from the oldest. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <string.h>

#define HEAD_LEN 17

uint64_t manifest_events_max = MANIFEST_EVENTS_MAX;

static void be64_put(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static uint64_t be64_get(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The head of task (a fresh one when absent). Raw LMDB codes. */
static int head_get(struct manifest *m, MDB_txn *txn, uint32_t task,
		    struct manifest_events_state *st)
{
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(task, 0, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	memset(st, 0, sizeof(*st));
	st->next = 1;
	int rc = m->have_events ? mdb_get(txn, m->dbi_events, &k, &v) : MDB_NOTFOUND;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (v.mv_size != HEAD_LEN)
		return MDB_CORRUPTED;
	const unsigned char *p = v.mv_data;
	st->next = be64_get(p);
	st->count = be64_get(p + 8);
	st->rescan = p[16] != 0;
	return 0;
}

static int head_put(struct manifest *m, MDB_txn *txn, uint32_t task,
		    const struct manifest_events_state *st)
{
	unsigned char kb[CODEC_RUN_KEY_LEN], vb[HEAD_LEN];
	codec_run_key(task, 0, kb);
	be64_put(vb, st->next);
	be64_put(vb + 8, st->count);
	vb[16] = st->rescan ? 1 : 0;
	MDB_val k = {sizeof(kb), kb}, v = {sizeof(vb), vb};
	return mdb_put(txn, m->dbi_events, &k, &v, 0);
}

static int task_exists(struct manifest *m, MDB_txn *txn, uint32_t task)
{
	unsigned char kb[4];
	mf_be32(kb, task);
	MDB_val k = {4, kb}, v;
	int rc = mdb_get(txn, m->dbi_tasks, &k, &v);
	return rc == MDB_NOTFOUND ? -ENOENT : rc;
}

struct ev_add {
	uint32_t task;
	const struct manifest_event *ev;
	size_t n;
	bool rescan;
	struct manifest_events_state st;
};

static int add_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct ev_add *a = ctx;
	int rc = task_exists(m, txn, a->task);
	if (!rc)
		rc = head_get(m, txn, a->task, &a->st);
	if (a->rescan)
		a->st.rescan = true;
	for (size_t i = 0; !rc && i < a->n; i++) {
		if (a->st.count >= manifest_events_max) {
			a->st.rescan = true;
			break;
		}
		unsigned char kb[CODEC_RUN_KEY_LEN];
		codec_run_key(a->task, a->st.next, kb);
		MDB_val k = {sizeof(kb), kb}, v = {a->ev[i].key_len, (void *)a->ev[i].key};
		rc = mdb_put(txn, m->dbi_events, &k, &v, 0);
		a->st.next++;
		a->st.count++;
	}
	if (!rc)
		rc = head_put(m, txn, a->task, &a->st);
	return rc;
}

int manifest_events_add(struct manifest *m, uint32_t task, const struct manifest_event *ev,
			size_t n, bool rescan, struct manifest_events_state *st)
{
	if (m->mode != MANIFEST_RDWR)
		return -EROFS;
	for (size_t i = 0; i < n; i++)
		if (!ev[i].key_len || ev[i].key_len > MANIFEST_EVENT_KEY_MAX)
			return -EINVAL;
	struct ev_add a = {.task = task, .ev = ev, .n = n, .rescan = rescan};
	int rc = mf_write_txn(m, add_txn, &a);
	if (!rc && st)
		*st = a.st;
	return rc;
}

int manifest_events_state(struct manifest *m, uint32_t task, struct manifest_events_state *st)
{
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	rc = head_get(m, txn, task, st);
	mf_read_end(m, txn);
	return rc ? mf_errno(rc) : 0;
}

int manifest_events_page(struct manifest *m, uint32_t task, unsigned limit,
			 int (*fn)(void *ctx, const struct manifest_event *ev), void *ctx)
{
	if (!m->have_events)
		return 0;
	MDB_txn *txn;
	int rc = mf_read_begin(m, &txn);
	if (rc)
		return rc;
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, m->dbi_events, &cur);
	if (rc) {
		mf_read_end(m, txn);
		return mf_errno(rc);
	}
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(task, 1, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	unsigned given = 0;
	int stop = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc && given < limit && !stop;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint32_t t;
		struct manifest_event ev;
		if (codec_run_key_decode(k.mv_data, k.mv_size, &t, &ev.seq) || t != task)
			break;
		ev.key = v.mv_data;
		ev.key_len = v.mv_size;
		stop = fn(ctx, &ev);
		given++;
	}
	mdb_cursor_close(cur);
	mf_read_end(m, txn);
	if (stop)
		return stop;
	if (rc && rc != MDB_NOTFOUND)
		return mf_errno(rc);
	return (int)given;
}

struct ev_ack {
	uint32_t task;
	uint64_t upto;
	bool clear_rescan;
};

static int ack_txn(struct manifest *m, MDB_txn *txn, void *ctx)
{
	struct ev_ack *a = ctx;
	struct manifest_events_state st;
	int rc = head_get(m, txn, a->task, &st);
	if (rc)
		return rc;
	MDB_cursor *cur;
	rc = mdb_cursor_open(txn, m->dbi_events, &cur);
	if (rc)
		return rc;
	unsigned char kb[CODEC_RUN_KEY_LEN];
	codec_run_key(a->task, 1, kb);
	MDB_val k = {sizeof(kb), kb}, v;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint32_t t;
		uint64_t seq;
		if (codec_run_key_decode(k.mv_data, k.mv_size, &t, &seq) || t != a->task ||
		    seq > a->upto)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
		if (st.count)
			st.count--;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (a->clear_rescan)
		st.rescan = false;
	return head_put(m, txn, a->task, &st);
}

int manifest_events_ack(struct manifest *m, uint32_t task, uint64_t upto, bool clear_rescan)
{
	if (m->mode != MANIFEST_RDWR)
		return -EROFS;
	struct ev_ack a = {task, upto, clear_rescan};
	return mf_write_txn(m, ack_txn, &a);
}
