/* The event journal: database events, key = task id + sequence (the run key
 * layout, codec_run_key), value = the event's key bytes. Sequence 0 is the
 * task's head: next sequence (8 bytes BE), count (8 bytes BE), rescan flag
 * (1 byte). An event's value: a flags byte (bit 0: a hint follows), with a
 * hint its size (8 bytes BE), ETag length (1 byte) and ETag, then the key. Every change of a task's
 * events rewrites its head in the same transaction, so the count is exact and the bound needs no
 * scan. Sequences only grow; acknowledging deletes from the oldest. */
#include "common/compat.h"

#include "manifest/manifest_i.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"

#define HEAD_LEN 17

uint64_t manifest_events_max = MANIFEST_EVENTS_MAX;

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
	st->next = mf_get_be64(p);
	st->count = mf_get_be64(p + 8);
	st->rescan = p[16] != 0;
	return 0;
}

static int head_put(struct manifest *m, MDB_txn *txn, uint32_t task,
		    const struct manifest_events_state *st)
{
	unsigned char kb[CODEC_RUN_KEY_LEN], vb[HEAD_LEN];
	codec_run_key(task, 0, kb);
	mf_be64(vb, st->next);
	mf_be64(vb + 8, st->count);
	vb[16] = st->rescan ? 1 : 0;
	MDB_val k = {sizeof(kb), kb}, v = {sizeof(vb), vb};
	return mdb_put(txn, m->dbi_events, &k, &v, 0);
}

static void event_encode(const struct manifest_event *ev, struct buf *out)
{
	size_t el = ev->has_hint ? strnlen(ev->etag, CODEC_ETAG_MAX - 1) : 0;
	unsigned char head[10];
	head[0] = ev->has_hint ? 1 : 0;
	buf_add(out, head, 1);
	if (ev->has_hint) {
		mf_be64(head, ev->size);
		head[8] = (unsigned char)el;
		buf_add(out, head, 9);
		buf_add(out, ev->etag, el);
	}
	buf_add(out, ev->key, ev->key_len);
}

/* 0, or -1 for a value that is not an event. */
static int event_decode(const unsigned char *p, size_t len, struct manifest_event *ev)
{
	if (len < 1)
		return -1;
	ev->has_hint = p[0] & 1;
	size_t off = 1;
	ev->size = 0;
	ev->etag[0] = '\0';
	if (ev->has_hint) {
		if (len < 10 || len < 10 + (size_t)p[9] || p[9] >= CODEC_ETAG_MAX)
			return -1;
		ev->size = mf_get_be64(p + 1);
		memcpy(ev->etag, p + 10, p[9]);
		ev->etag[p[9]] = '\0';
		off = 10 + (size_t)p[9];
	}
	ev->key = (const char *)p + off;
	ev->key_len = len - off;
	return ev->key_len ? 0 : -1;
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
	int rc = mf_task_exists(m, txn, a->task);
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
		struct buf val = BUF_INIT;
		event_encode(&a->ev[i], &val);
		MDB_val k = {sizeof(kb), kb}, v = {val.len, val.data};
		rc = mdb_put(txn, m->dbi_events, &k, &v, 0);
		buf_release(&val);
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
		if (event_decode(v.mv_data, v.mv_size, &ev)) {
			rc = MDB_CORRUPTED;
			break;
		}
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
