#include "common/compat.h"

#include "agent/sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/filter.h"
#include "agent/keysample.h"
#include "agent/planner.h"
#include "agent/shard.h"
#include "agent/spool.h"
#include "agent/transfer.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "manifest/manifest.h"
#include "remote/exec.h"
#include "remote/s3.h"

static struct sync_progress progress;

struct sync_progress *sync_progress_get(void)
{
	return &progress;
}

static void add64(uint64_t *p, uint64_t v)
{
	__atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

struct orphan_ctx {
	const char *key;
	int64_t since;
	struct buf ids;
};

static int orphan_cb(void *ctx, const struct s3_upload *u)
{
	struct orphan_ctx *s = ctx;
	if (!strcmp(u->key, s->key) && u->initiated >= s->since) {
		buf_adds(&s->ids, u->upload_id);
		buf_addch(&s->ids, '\0');
	}
	return 0;
}

/* Abort the uploads still recorded for the task after a complete run: their
 * objects are gone from the source or were copied another way, and an
 * unfinished upload costs money. */
static int abort_orphans(const struct sync_opts *o, struct manifest_writer *w)
{
	struct dth_err err;
	err_clear(&err);
	int frc = manifest_writer_flush(w);
	if (frc)
		return frc;
	struct manifest_cursor *c =
	    manifest_cursor_new(o->manifest, MANIFEST_UPLOADS, o->task_id, NULL, NULL, &err);
	if (!c)
		return err.code ? err.code : -EIO;
	int rc;
	const char *key;
	size_t len;
	struct upload_record rec;
	struct buf dkey = BUF_INIT;
	while ((rc = manifest_cursor_next_upload(c, &key, &len, &rec)) == 1) {
		buf_reset(&dkey);
		buf_adds(&dkey, o->dst_prefix);
		buf_add(&dkey, key, len);
		if (!rec.upload_id[0]) {
			/* Only the intent was recorded: an upload may exist that we never
			 * learned the id of. */
			struct orphan_ctx oc = {dkey.data, rec.created - 300, BUF_INIT};
			struct dth_err e2;
			err_clear(&e2);
			int lrc = s3_mpu_list_uploads(o->dst, o->dst_bucket, dkey.data, orphan_cb,
						      &oc, &e2);
			for (size_t off = 0; !lrc && off < oc.ids.len;
			     off += strlen(oc.ids.data + off) + 1) {
				int a = s3_mpu_abort(o->dst, o->dst_bucket, dkey.data,
						     oc.ids.data + off, &e2);
				if (a && a != -ENOENT)
					lrc = a;
			}
			buf_release(&oc.ids);
			if (lrc) {
				log_warn("could not abort unrecorded uploads of %s: %s", dkey.data,
					 e2.message);
				continue; /* keep the record; the next run retries */
			}
		} else {
			struct dth_err e2;
			err_clear(&e2);
			int arc =
			    s3_mpu_abort(o->dst, o->dst_bucket, dkey.data, rec.upload_id, &e2);
			if (arc && arc != -ENOENT) {
				log_warn("could not abort the multipart upload of %s: %s",
					 dkey.data, e2.message);
				continue;
			}
			if (!arc)
				log_info("aborted the orphaned multipart upload of %s", dkey.data);
		}
		if ((rc = manifest_writer_del_upload(w, o->task_id, key, len)))
			break;
	}
	manifest_cursor_free(c);
	buf_release(&dkey);
	return rc < 0 ? rc : 0;
}

/* HEAD the destination bucket (creating it when missing, unless a dry run). */
static int check_destination(const struct sync_opts *o, struct sync_result *res,
			     struct dth_err *err)
{
	int rc = s3_head_bucket(o->dst, o->dst_bucket, err);
	if (rc == -ENOENT && !o->dry_run) {
		err_clear(err);
		rc = s3_create_bucket(o->dst, o->dst_bucket, err);
		if (rc == -EEXIST)
			rc = 0;
		if (rc == 0)
			log_info("created destination bucket %s", o->dst_bucket);
	}
	if (rc) {
		if (rc == -EACCES && !strstr(err->message, "credentials")) {
			char msg[sizeof(err->message)];
			str_copy_fit(msg, err->message, sizeof(msg));
			err_set(err, rc, "%s (the credentials were refused or lack permission)",
				msg);
		}
		err_prefix(err, "destination %s:%s", s3_client_name(o->dst), o->dst_bucket);
		res->unreachable = true;
	}
	return rc;
}

/* Split keys for planning in parallel key ranges, from the sample of the
 * source listing the last complete run kept (task note "sample",
 * keysample.h): one read of a bounded record, whatever the number of keys.
 * The splits are keys that ended one of the source's own listing pages, so
 * each range lists whole pages of the source and an unchanged source is
 * listed in exactly as many LISTs as one full listing, however it is split.
 * Relative keys, NUL-separated in store; returns how many (ranges - 1). */
static unsigned range_splits(const struct sync_opts *o, struct buf *store, unsigned max_ranges)
{
	if (s3_client_is_local(o->src))
		return 0; /* a directory tree is walked once, in order */
	struct buf note = BUF_INIT;
	struct keysample *ks = NULL;
	unsigned n = 0;
	if (manifest_task_note_get(o->manifest, o->task_id, "sample", &note) == 0 &&
	    keysample_decode(note.data, note.len, &ks) == 0) {
		uint64_t ranges = (keysample_pages(ks) + 1) / 2; /* at least two pages a range */
		if (ranges > max_ranges)
			ranges = max_ranges;
		if (ranges > o->concurrency)
			ranges = o->concurrency;
		if (ranges >= 2)
			n = keysample_cuts(ks, (unsigned)ranges, true, store);
	}
	keysample_free(ks);
	buf_release(&note);
	return n;
}

_Static_assert(sizeof(struct sync_progress) == 12 * sizeof(uint64_t),
	       "progress_reset zeroes every field of struct sync_progress");

/* Zero a run's progress field by field: the agent's API reads it (atomic
 * loads) while a new run of the task starts. */
static void progress_reset(struct sync_progress *p)
{
	uint64_t *const f[] = {
	    &p->listed,	 &p->planned,	  &p->planned_bytes, &p->transferred,
	    &p->bytes,	 &p->bytes_moved, &p->bytes_sent,    &p->bytes_server_side,
	    &p->skipped, &p->failed,	  &p->deleted};
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		__atomic_store_n(f[i], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&p->listing_done, false, __ATOMIC_RELAXED);
}

/* The first listing's failure: unreachable, or no such bucket. */
static bool unreachable_errno(int rc)
{
	return exec_unreachable(rc) || rc == -ENOENT;
}

/* What the planner threads of one run share. */
struct run {
	const struct sync_opts *o;
	struct sync_result *res;
	struct sync_progress *prog;
	struct manifest_writer *w;
	struct transfer *xfer;
	bool dst_absent;
	pthread_mutex_t lock;
	bool dst_checked;
	bool failed; /* a range failed: the others stop */
	int rc;
	struct dth_err err;
};

struct range {
	struct run *run;
	const char *lo; /* relative, exclusive; NULL: from the start */
	const char *hi; /* relative, inclusive; NULL: to the end */
	pthread_t thread;
	bool started;
	struct spool *deletes;	  /* planned deletes, sent once every range listed cleanly */
	uint64_t n_deletes;	  /* planned deletes (also counted in dry runs) */
	uint64_t dst_listed;	  /* destination keys this range listed */
	struct keysample *sample; /* of the source listing (NULL: not kept) */
};

static void run_fail(struct run *r, int rc, const struct dth_err *err, bool unreachable)
{
	pthread_mutex_lock(&r->lock);
	if (!r->failed) {
		r->failed = true;
		r->rc = rc;
		r->err = *err;
		if (unreachable)
			r->res->unreachable = true;
	}
	pthread_mutex_unlock(&r->lock);
}

static bool run_failed(struct run *r)
{
	pthread_mutex_lock(&r->lock);
	bool f = r->failed;
	pthread_mutex_unlock(&r->lock);
	return f;
}

static int ensure_destination(struct run *r, struct dth_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&r->lock);
	if (!r->dst_checked) {
		rc = check_destination(r->o, r->res, err);
		if (!rc)
			r->dst_checked = true;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

static void bounded_list_opts(struct s3_list_opts *lo, const char *prefix, const char *from,
			      const char *to, struct buf *sa, struct buf *eb)
{
	memset(lo, 0, sizeof(*lo));
	lo->prefix = prefix[0] ? prefix : NULL;
	if (from) {
		buf_adds(sa, prefix);
		buf_adds(sa, from);
		lo->start_after = sa->data;
	}
	if (to) {
		/* Keys hold no NUL: the first key after `to` is >= to + "\x01". */
		buf_adds(eb, prefix);
		buf_adds(eb, to);
		buf_addch(eb, '\x01');
		lo->end_before = eb->data;
	}
}

/* Why no request can carry this key, or NULL when one can. Keys are byte
 * strings everywhere in dth, but an S3 request takes the key as a C string in
 * its URL, so a NUL byte would send (and with --delete, delete) another key. */
const char *sync_key_unusable(const char *key, size_t len)
{
	if (memchr(key, '\0', len))
		return "the key holds a NUL byte, which no S3 request can carry";
	if (len > MANIFEST_KEY_MAX)
		return "the key is longer than the manifest records (4096 bytes after the "
		       "prefix)";
	return NULL;
}

bool sync_action_is_copy(enum sync_action a)
{
	return a == SYNC_COPY_NEW || a == SYNC_COPY_CHANGED || a == SYNC_COPY_RETRY ||
	       a == SYNC_COPY_MISSING;
}

/* A record of the planned key's source side with status (the rest zero). */
static void rec_of(const struct plan *p, int status, struct obj_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->size = p->size;
	rec->last_modified = p->last_modified;
	str_copy_fit(rec->etag, p->etag, sizeof(rec->etag));
	rec->status = (uint8_t)status;
}

/* A key the run must not act on: reported as failed, never copied or deleted.
 * A copy's failure is recorded in the manifest when the key fits there. */
static int refuse_key(struct run *r, const struct plan *p, const char *why, struct dth_err *err)
{
	const struct sync_opts *o = r->o;
	add64(&r->prog->failed, 1);
	if (o->on_failure)
		o->on_failure(o->on_failure_ctx, p->key, p->key_len, why);
	if (o->dry_run || !sync_action_is_copy(p->action) || p->key_len > MANIFEST_KEY_MAX)
		return 0;
	struct obj_record rec;
	rec_of(p, OBJ_FAILED, &rec);
	rec.attempts = (p->has_rec ? p->rec.attempts : 0) + 1;
	str_copy_msg(rec.last_error, why, sizeof(rec.last_error));
	int rc = manifest_writer_put_obj(r->w, o->task_id, p->key, p->key_len, &rec);
	if (rc)
		err_set(err, rc, "writing the manifest: %s", strerror(-rc));
	return rc;
}

/* Record an object the destination already holds (same size and ETag). */
static int adopt(struct run *r, const struct plan *p, struct dth_err *err)
{
	const struct sync_opts *o = r->o;
	add64(&r->prog->skipped, 1);
	add64(&r->res->adopted, 1);
	if (o->dry_run)
		return 0;
	struct obj_record rec;
	rec_of(p, OBJ_DONE, &rec);
	rec.attempts = p->has_rec ? p->rec.attempts : 0;
	str_copy_fit(rec.dest_etag, p->dst_etag, sizeof(rec.dest_etag));
	rec.transferred_at = (int64_t)time(NULL);
	int rc = manifest_writer_put_obj(r->w, o->task_id, p->key, p->key_len, &rec);
	if (rc)
		err_set(err, rc, "writing the manifest: %s", strerror(-rc));
	return rc;
}

/* Whether a multipart upload of p's key, of the listed version, is recorded:
 * an earlier run was copying it, and may have completed it at the destination
 * without the steps that follow the completion (setting its tags) before it
 * stopped. Such an object is not adopted: the copy finds the upload complete
 * and finishes it. */
static bool upload_recorded(const struct sync_opts *o, const struct plan *p)
{
	struct upload_record u;
	if (p->key_len > MANIFEST_KEY_MAX ||
	    manifest_upload_get(o->manifest, o->task_id, p->key, p->key_len, &u) != 0)
		return false;
	bool same = u.object_size == p->size && !strcmp(u.src_etag, p->etag);
	codec_upload_release(&u);
	return same;
}

/* A delete waits in the range's spool (see sync_run). */
static int spool_delete(struct range *rg, const struct plan *p, struct dth_err *err)
{
	struct run *r = rg->run;
	rg->n_deletes++;
	if (r->o->dry_run) {
		add64(&r->prog->deleted, 1);
		return 0;
	}
	if (!rg->deletes) {
		rg->deletes = spool_new(manifest_dir(r->o->manifest), err);
		if (!rg->deletes)
			return err->code ? err->code : -EIO;
	}
	return spool_add(rg->deletes, p->key, p->key_len, p->has_rec ? &p->rec : NULL, err);
}

/* Act on one planned item. 0, or a negative errno that ends the run (err set). */
static int plan_item(struct range *rg, struct plan *p, struct dth_err *err)
{
	struct run *r = rg->run;
	const struct sync_opts *o = r->o;
	int rc;
	const char *why = sync_key_unusable(p->key, p->key_len);
	if (why && (sync_action_is_copy(p->action) || p->action == SYNC_DELETE))
		return refuse_key(r, p, why, err);
	if (!o->dry_run && sync_action_is_copy(p->action) && (rc = ensure_destination(r, err))) {
		run_fail(r, rc, err, true);
		return rc;
	}
	add64(&r->res->planned[p->action], 1);
	if (o->on_item) {
		struct sync_item it = {p->action, p->key, p->key_len,
				       p->in_src ? p->size : p->rec.size,
				       p->in_src ? p->etag : p->rec.etag};
		o->on_item(o->on_item_ctx, &it);
	}
	switch (p->action) {
	case SYNC_COPY_NEW:
	case SYNC_COPY_CHANGED:
	case SYNC_COPY_RETRY:
	case SYNC_COPY_MISSING:
		add64(&r->prog->planned, 1);
		add64(&r->prog->planned_bytes, p->size);
		if (!o->dry_run && (rc = transfer_submit(r->xfer, p)))
			return err_set(err, rc, "the transfer pool stopped: %s", strerror(-rc));
		return 0;
	case SYNC_SKIP:
		add64(&r->prog->skipped, 1);
		return 0;
	case SYNC_ADOPT:
		if (o->dry_run || !upload_recorded(o, p))
			return adopt(r, p, err);
		add64(&r->prog->planned, 1);
		add64(&r->prog->planned_bytes, p->size);
		if ((rc = transfer_submit(r->xfer, p)))
			return err_set(err, rc, "the transfer pool stopped: %s", strerror(-rc));
		return 0;
	case SYNC_DELETE:
		return spool_delete(rg, p, err);
	case SYNC_GONE:
	case SYNC__COUNT:
		break;
	}
	return 0;
}

/* The listers and the manifest cursor of one range. */
struct range_streams {
	struct buf sa, eb, dsa, deb;
	struct s3_lister *ls, *ld;
	struct manifest_cursor *cur;
};

static int streams_open(struct range *rg, struct range_streams *st, struct dth_err *err)
{
	struct run *r = rg->run;
	const struct sync_opts *o = r->o;
	struct s3_list_opts lo;
	memset(st, 0, sizeof(*st));
	bounded_list_opts(&lo, o->src_prefix, rg->lo, rg->hi, &st->sa, &st->eb);
	st->ls = s3_lister_new(o->src, o->src_bucket, &lo);
	if (o->merge_destination && !r->dst_absent) {
		bounded_list_opts(&lo, o->dst_prefix, rg->lo, rg->hi, &st->dsa, &st->deb);
		st->ld = s3_lister_new(o->dst, o->dst_bucket, &lo);
	}
	st->cur = manifest_cursor_new(o->manifest, MANIFEST_OBJECTS, o->task_id, NULL, rg->lo, err);
	return st->cur ? 0 : (err->code ? err->code : -EIO);
}

static void streams_close(struct range_streams *st)
{
	manifest_cursor_free(st->cur);
	s3_lister_free(st->ls);
	s3_lister_free(st->ld);
	buf_release(&st->sa);
	buf_release(&st->eb);
	buf_release(&st->dsa);
	buf_release(&st->deb);
}

static void sample_hook(void *ctx, const char *key, size_t len, bool page_last)
{
	keysample_add(ctx, key, len, page_last);
}

/* Keep the sample of a complete listing (the ranges' in key order) with the
 * task, for the next run's splits and for shard plans. */
static void sample_save(const struct sync_opts *o, struct range *ranges, unsigned nr)
{
	struct keysample *all = keysample_new();
	for (unsigned i = 0; i < nr; i++)
		keysample_append(all, ranges[i].sample);
	struct buf b = BUF_INIT;
	keysample_encode(all, &b);
	int rc = b.len <= MANIFEST_NOTE_MAX
		     ? manifest_task_note_put(o->manifest, o->task_id, "sample", b.data, b.len)
		     : -EFBIG;
	if (rc)
		log_warn("could not keep the listing's sample: %s", strerror(-rc));
	buf_release(&b);
	keysample_free(all);
}

static int plan_range(struct range *rg, struct dth_err *err)
{
	struct run *r = rg->run;
	const struct sync_opts *o = r->o;
	struct range_streams st;
	struct planner *pl = NULL;
	int rc = streams_open(rg, &st, err);
	if (rc)
		goto out;
	pl = planner_new(st.ls, o->src_prefix, st.cur, st.ld, o->dst_prefix, o->filter,
			 o->delete_gone);
	planner_set_bounds(pl, rg->lo, rg->hi);
	if (rg->sample)
		planner_set_source_hook(pl, sample_hook, rg->sample);
	struct plan p;
	uint64_t seen = 0, paged = 0;
	for (;;) {
		if (o->stop && *o->stop) {
			rc = err_set(err, -EINTR, "interrupted");
			break;
		}
		if (__atomic_load_n(&r->failed, __ATOMIC_RELAXED)) {
			rc = -ECANCELED;
			break;
		}
		rc = planner_next(pl, &p, err);
		uint64_t now = planner_listed(pl);
		add64(&r->prog->listed, now - seen);
		seen = now;
		rg->dst_listed = planner_dst_listed(pl);
		if (rc < 0) {
			run_fail(r, rc, err, unreachable_errno(rc) && !seen);
			break;
		}
		if (rc == 0) {
			failpoint_hit(FAILPOINT_LIST_PAGE); /* the range's last page */
			break;
		}
		if ((rc = plan_item(rg, &p, err))) {
			run_fail(r, rc, err, false);
			break;
		}
		failpoint_hit(FAILPOINT_KEY_PLANNED);
		if (now % 1000 == 0 && now > paged) {
			paged = now;
			failpoint_hit(FAILPOINT_LIST_PAGE);
		}
	}
out:
	planner_free(pl);
	streams_close(&st);
	return rc;
}

static void *range_main(void *arg)
{
	struct range *rg = arg;
	struct dth_err err;
	err_clear(&err);
	int rc = plan_range(rg, &err);
	if (rc && rc != -ECANCELED)
		run_fail(rg->run, rc, &err, false);
	return NULL;
}

#define MAX_RANGES 8

/* Whether the brake allows n deletes out of dst_total destination objects;
 * when not, err says why. */
/* ---- retrying the failed objects only ---- */

struct retry_ctx {
	struct range rg; /* a range of no keys: plan_item's context */
	struct dth_err err;
	int rc;
};

/* HEAD of key under prefix at an end (-EINVAL for a key holding a NUL). */
static int head_key(struct s3_client *c, const char *bucket, const char *prefix, const char *key,
		    size_t len, struct s3_object_head *h, struct dth_err *e)
{
	err_clear(e);
	if (memchr(key, 0, len))
		return err_set(e, -EINVAL, "the key holds a NUL byte");
	struct buf k = BUF_INIT;
	buf_adds(&k, prefix);
	buf_add(&k, key, len);
	int rc = s3_head_object(c, bucket, k.data, 0, h, e);
	buf_release(&k);
	return rc;
}

/* A plan to copy key as the source's HEAD describes it. */
static void plan_from_head(struct plan *p, enum sync_action a, const char *key, size_t len,
			   const struct s3_object_head *h, const struct obj_record *rec)
{
	memset(p, 0, sizeof(*p));
	p->action = a;
	p->key = key;
	p->key_len = len;
	p->in_src = true;
	p->size = h->size;
	p->last_modified = h->last_modified;
	str_copy_fit(p->etag, h->etag, sizeof(p->etag));
	if (rec) {
		p->has_rec = true;
		p->rec = *rec;
	}
}

/* One failed object: asked for at the source (HEAD), then copied again; one
 * the source no longer has is forgotten. 0, or an error that ends the run. */
static int retry_one(void *ctx, const char *key, size_t len, const struct obj_record *rec)
{
	struct retry_ctx *c = ctx;
	struct run *r = c->rg.run;
	const struct sync_opts *o = r->o;
	if (o->stop && *o->stop)
		return -EINTR;
	add64(&r->prog->listed, 1);
	struct s3_object_head h;
	struct dth_err e;
	int rc = head_key(o->src, o->src_bucket, o->src_prefix, key, len, &h, &e);
	if (rc == -ENOENT) {
		add64(&r->prog->skipped, 1);
		return o->dry_run ? 0 : manifest_writer_del_obj(r->w, o->task_id, key, len);
	}
	if (rc) {
		if (unreachable_errno(rc)) {
			c->err = e;
			return rc;
		}
		add64(&r->prog->failed, 1);
		if (o->on_failure)
			o->on_failure(o->on_failure_ctx, key, len,
				      e.message[0] ? e.message : strerror(-rc));
		return 0;
	}
	struct plan p;
	plan_from_head(&p, SYNC_COPY_RETRY, key, len, &h, rec);
	s3_object_head_release(&h);
	rc = plan_item(&c->rg, &p, &c->err);
	return rc;
}

/* Page through the task's failed objects (the manifest's status index) and
 * copy each again: no listing of either side. */
static int retry_failed(struct run *r, struct dth_err *err)
{
	struct retry_ctx c;
	memset(&c, 0, sizeof(c));
	c.rg.run = r;
	struct buf after = BUF_INIT, next = BUF_INIT;
	bool more = true, first = true;
	int rc = 0;
	while (more && rc >= 0) {
		buf_reset(&next);
		rc = manifest_obj_page(r->o->manifest, r->o->task_id, OBJ_FAILED,
				       first ? NULL : after.data, after.len, MANIFEST_PAGE_MAX,
				       retry_one, &c, &next, &more);
		first = false;
		buf_reset(&after);
		buf_add(&after, next.data, next.len);
	}
	buf_release(&after);
	buf_release(&next);
	if (rc < 0) {
		if (c.err.message[0])
			*err = c.err;
		else
			err_set(err, rc, "retrying the failed objects: %s", strerror(-rc));
		r->res->unreachable = unreachable_errno(rc);
		return rc;
	}
	return 0;
}

/* ---- the given keys only (event runs) ---- */

/* What to do with a key the source has (h), given its record. */
static enum sync_action key_action(struct run *r, const char *key, size_t len,
				   const struct s3_object_head *h, const struct obj_record *rec,
				   struct plan *p)
{
	const struct sync_opts *o = r->o;
	if (rec && rec->status == OBJ_DONE && rec->size == h->size && !strcmp(rec->etag, h->etag))
		return SYNC_SKIP;
	if (rec && rec->status != OBJ_DONE && rec->status != OBJ_DELETED)
		return SYNC_COPY_RETRY;
	if (o->merge_destination && !r->dst_absent) {
		struct s3_object_head d;
		struct dth_err e;
		if (head_key(o->dst, o->dst_bucket, o->dst_prefix, key, len, &d, &e) == 0) {
			bool same = d.size == h->size && !strcmp(d.etag, h->etag);
			p->in_dst = true;
			p->dst_size = d.size;
			str_copy_fit(p->dst_etag, d.etag, sizeof(p->dst_etag));
			s3_object_head_release(&d);
			if (same)
				return SYNC_ADOPT;
		}
	}
	return rec && rec->status == OBJ_DONE ? SYNC_COPY_CHANGED : SYNC_COPY_NEW;
}

/* A key the source no longer has: deleted at the destination when the task
 * deletes and the key was copied; else left as it is. */
static int key_gone(struct range *rg, const char *key, size_t len, const struct obj_record *rec,
		    bool has_rec, struct dth_err *err)
{
	struct run *r = rg->run;
	const struct sync_opts *o = r->o;
	if (!o->delete_gone || !has_rec || rec->status == OBJ_DELETED) {
		add64(&r->prog->skipped, 1);
		return 0;
	}
	struct plan p;
	memset(&p, 0, sizeof(p));
	p.action = SYNC_DELETE;
	p.key = key;
	p.key_len = len;
	p.has_rec = true;
	p.rec = *rec;
	add64(&r->res->planned[SYNC_DELETE], 1);
	if (o->dry_run) {
		add64(&r->prog->deleted, 1);
		return 0;
	}
	int rc = transfer_submit(r->xfer, &p);
	return rc ? err_set(err, rc, "the transfer pool stopped: %s", strerror(-rc)) : 0;
}

/* A key whose event said what the object is: planned from that, without a
 * HEAD (the copy's GET asks with If-Match and follows a newer version). */
static int key_hinted(struct range *rg, const struct sync_key *k, const struct obj_record *rec,
		      struct plan *p, struct dth_err *err)
{
	struct s3_object_head h;
	memset(&h, 0, sizeof(h));
	h.size = h.total_size = k->size;
	str_copy_fit(h.etag, k->etag, sizeof(h.etag));
	plan_from_head(p, SYNC_COPY_NEW, k->key, k->len, &h, rec);
	p->action = key_action(rg->run, k->key, k->len, &h, rec, p);
	return plan_item(rg, p, err);
}

/* One given key. 0, or an error that ends the run (err set). */
static int key_one(struct range *rg, const struct sync_key *k, struct dth_err *err)
{
	struct run *r = rg->run;
	const struct sync_opts *o = r->o;
	if (o->filter && !filter_match(o->filter, k->key, k->len))
		return 0;
	if (!shard_range_holds(o->shard_lo, o->shard_hi, k->key, k->len))
		return 0; /* another shard's */
	add64(&r->prog->listed, 1);
	struct obj_record rec;
	bool has_rec = k->len <= MANIFEST_KEY_MAX &&
		       manifest_obj_get(o->manifest, o->task_id, k->key, k->len, &rec) == 0;
	struct plan p;
	/* a server-side copy reads no headers the record's time could come from */
	if (k->hint && !o->merge_destination && !o->same_endpoint && !memchr(k->key, 0, k->len))
		return key_hinted(rg, k, has_rec ? &rec : NULL, &p, err);
	struct s3_object_head h;
	struct dth_err e;
	int rc = head_key(o->src, o->src_bucket, o->src_prefix, k->key, k->len, &h, &e);
	if (rc == -ENOENT)
		return key_gone(rg, k->key, k->len, &rec, has_rec, err);
	if (rc) {
		if (unreachable_errno(rc)) {
			*err = e;
			return rc; /* run_fail marks the run unreachable */
		}
		memset(&p, 0, sizeof(p));
		p.action = SYNC_COPY_NEW;
		p.key = k->key;
		p.key_len = k->len;
		p.has_rec = has_rec;
		if (has_rec)
			p.rec = rec;
		return refuse_key(r, &p, e.message[0] ? e.message : strerror(-rc), err);
	}
	plan_from_head(&p, SYNC_COPY_NEW, k->key, k->len, &h, has_rec ? &rec : NULL);
	p.action = key_action(r, k->key, k->len, &h, has_rec ? &rec : NULL, &p);
	s3_object_head_release(&h);
	return plan_item(rg, &p, err);
}

/* One of the threads that look at the given keys: every nth key from its
 * first, so the source's HEADs (one round trip each) overlap. */
struct key_lane {
	struct range rg;
	size_t first, step;
	pthread_t thread;
	bool started;
	int rc;
	struct dth_err err;
};

static void *key_lane_main(void *arg)
{
	struct key_lane *l = arg;
	struct run *r = l->rg.run;
	err_clear(&l->err);
	for (size_t i = l->first; i < r->o->n_keys && !l->rc; i += l->step) {
		if ((r->o->stop && *r->o->stop) || run_failed(r))
			break;
		l->rc = key_one(&l->rg, &r->o->keys[i], &l->err);
	}
	if (l->rc)
		run_fail(r, l->rc, &l->err, unreachable_errno(l->rc));
	return NULL;
}

static int given_keys(struct run *r, struct dth_err *err)
{
	size_t n = r->o->concurrency ? r->o->concurrency : 1;
	if (n > r->o->n_keys)
		n = r->o->n_keys ? r->o->n_keys : 1;
	if (n > 16)
		n = 16;
	struct key_lane *lanes = xcalloc(n, sizeof(*lanes));
	for (size_t i = 0; i < n; i++) {
		lanes[i].rg.run = r;
		lanes[i].first = i;
		lanes[i].step = n;
		lanes[i].started =
		    i > 0 && pthread_create(&lanes[i].thread, NULL, key_lane_main, &lanes[i]) == 0;
	}
	key_lane_main(&lanes[0]);
	for (size_t i = 1; i < n; i++) {
		if (lanes[i].started)
			pthread_join(lanes[i].thread, NULL);
		else
			key_lane_main(&lanes[i]);
	}
	free(lanes);
	if (r->failed) {
		*err = r->err;
		return r->rc;
	}
	return 0;
}

static bool deletes_allowed(const struct sync_opts *o, uint64_t n, uint64_t src_total,
			    uint64_t dst_total, struct dth_err *err)
{
	if (o->max_delete >= 0 && n > (uint64_t)o->max_delete) {
		err_set(err, -ECANCELED,
			"refusing to delete %llu objects: more than --max-delete %lld; nothing "
			"was deleted",
			(unsigned long long)n, (long long)o->max_delete);
		return false;
	}
	if (o->max_delete_percent >= 0 &&
	    n * 100 > (uint64_t)o->max_delete_percent * (dst_total ? dst_total : 1)) {
		err_set(err, -ECANCELED,
			"refusing to delete %llu of the %llu objects at the destination: more "
			"than --max-delete %d%%; nothing was deleted",
			(unsigned long long)n, (unsigned long long)dst_total,
			o->max_delete_percent);
		return false;
	}
	if (o->max_delete < 0 && o->max_delete_percent < 0 && src_total == 0) {
		err_set(err, -ECANCELED,
			"the source lists no objects, and %llu would be deleted at the "
			"destination: refusing (a mistyped source?); nothing was deleted. "
			"--max-delete 100%% allows it",
			(unsigned long long)n);
		return false;
	}
	return true;
}

/* Send the deletes the ranges spooled, once every range has listed its keys
 * completely and checked them, and only when the brake allows their number. */
static int apply_deletes(struct run *r, struct range *ranges, unsigned nr, struct dth_err *err)
{
	const struct sync_opts *o = r->o;
	uint64_t n = 0, dst_total = 0;
	for (unsigned i = 0; i < nr; i++) {
		n += ranges[i].n_deletes;
		dst_total += ranges[i].dst_listed;
	}
	if (n == 0)
		return 0;
	if (!deletes_allowed(o, n, r->prog->listed, dst_total, err)) {
		r->res->deletes_refused = n;
		if (o->dry_run)
			__atomic_store_n(&r->prog->deleted, 0, __ATOMIC_RELAXED);
		return err->code;
	}
	for (unsigned i = 0; i < nr && !o->dry_run; i++) {
		struct spool *sp = ranges[i].deletes;
		if (!sp)
			continue;
		int rc = spool_rewind(sp, err);
		struct plan p;
		memset(&p, 0, sizeof(p));
		p.action = SYNC_DELETE;
		while (rc == 0 && !(o->stop && *o->stop) &&
		       (rc = spool_next(sp, &p.key, &p.key_len, &p.has_rec, &p.rec, err)) == 1) {
			if ((rc = transfer_submit(r->xfer, &p)))
				err_set(err, rc, "the transfer pool stopped: %s", strerror(-rc));
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int sync_run(const struct sync_opts *o, struct sync_result *res, struct dth_err *err)
{
	double t0 = now_mono();
	int rc = 0;
	struct sync_progress *prog = o->progress ? o->progress : &progress;
	struct run r;
	struct buf splits = BUF_INIT;
	struct range ranges[MAX_RANGES];

	memset(res, 0, sizeof(*res));
	progress_reset(prog);
	memset(&r, 0, sizeof(r));
	memset(ranges, 0, sizeof(ranges));
	r.o = o;
	r.res = res;
	r.prog = prog;
	pthread_mutex_init(&r.lock, NULL);

	/* The source answers through its first listing page; the destination is
	 * checked before the first thing is written to it (or listed), so a
	 * no-change rescan sends nothing but source LISTs. */
	if (o->merge_destination) {
		rc = check_destination(o, res, err);
		if (rc == -ENOENT && o->dry_run) {
			/* A dry run into a bucket that does not exist yet: all is new. */
			err_clear(err);
			res->unreachable = false;
			r.dst_absent = true;
			rc = 0;
		}
		if (rc)
			goto done;
		r.dst_checked = true;
	}

	if (!o->dry_run) {
		r.w = manifest_writer_new(o->manifest, 1024, 200, err);
		if (!r.w) {
			rc = err->code ? err->code : -EIO;
			goto done;
		}
		r.xfer = transfer_new(o, r.w, prog);
	}

	if (o->retry_failed || o->keys) {
		rc = o->keys ? given_keys(&r, err) : retry_failed(&r, err);
		__atomic_store_n(&prog->listing_done, rc == 0, __ATOMIC_RELAXED);
		goto finish;
	}
	/* A known task is planned in parallel key ranges (one lister, cursor and
	 * merge-join each), so a rescan lists at the speed of several LISTs in
	 * flight with constant memory. Item callbacks want one ordered stream. */
	unsigned nsplit = o->on_item ? 0 : range_splits(o, &splits, MAX_RANGES);
	const char *keys[MAX_RANGES];
	size_t off = 0;
	for (unsigned i = 0; i < nsplit; i++) {
		keys[i] = splits.data + off;
		off += strlen(keys[i]) + 1;
	}
	unsigned nr = nsplit + 1;
	bool sampled = !o->dry_run && !s3_client_is_local(o->src);
	for (unsigned i = 0; i < nr; i++) {
		ranges[i].run = &r;
		ranges[i].lo = i ? keys[i - 1] : o->shard_lo;
		ranges[i].hi = i < nsplit ? keys[i] : o->shard_hi;
		ranges[i].sample = sampled ? keysample_new() : NULL;
	}
	if (nr == 1) {
		struct dth_err e1;
		err_clear(&e1);
		if (plan_range(&ranges[0], &e1) && !r.failed)
			run_fail(&r, -EIO, &e1, false);
	} else {
		for (unsigned i = 0; i < nr; i++)
			ranges[i].started =
			    pthread_create(&ranges[i].thread, NULL, range_main, &ranges[i]) == 0;
		for (unsigned i = 0; i < nr; i++) {
			if (ranges[i].started) {
				pthread_join(ranges[i].thread, NULL);
			} else {
				struct dth_err e1;
				err_set(&e1, -EAGAIN, "cannot start a planner thread");
				run_fail(&r, -EAGAIN, &e1, false);
			}
		}
	}
	if (r.failed) {
		rc = r.rc;
		*err = r.err;
	}
	__atomic_store_n(&prog->listing_done, rc == 0, __ATOMIC_RELAXED);
	if (rc == 0 && sampled && !(o->stop && *o->stop))
		sample_save(o, ranges, nr);
	if (rc == 0 && !(o->stop && *o->stop))
		rc = apply_deletes(&r, ranges, nr, err);
finish:
	if (r.xfer) {
		struct dth_err ferr;
		err_clear(&ferr);
		int frc = transfer_finish(r.xfer, &ferr);
		res->memory_peak = transfer_memory_peak(r.xfer);
		transfer_small_lanes(r.xfer, &res->small_lanes, &res->small_lanes_low);
		if (frc && (!rc || rc == frc)) {
			rc = frc;
			*err = ferr;
		}
	}
	if (rc == 0 && !o->dry_run && !(o->stop && *o->stop)) {
		int arc = abort_orphans(o, r.w);
		if (arc)
			log_warn("could not clean up recorded multipart uploads: %s",
				 strerror(-arc));
	}
	if (r.w) {
		int wrc = manifest_writer_free(r.w);
		if (wrc && !rc) {
			rc = wrc;
			err_set(err, rc, "writing the manifest: %s", strerror(-wrc));
		}
	}
	transfer_free(r.xfer);
done:
	for (unsigned i = 0; i < MAX_RANGES; i++) {
		spool_free(ranges[i].deletes);
		keysample_free(ranges[i].sample);
	}
	pthread_mutex_destroy(&r.lock);
	buf_release(&splits);
	res->transferred = prog->transferred;
	res->bytes = prog->bytes;
	res->skipped = prog->skipped;
	res->failed = prog->failed;
	res->deleted = prog->deleted;
	res->bytes_sent = prog->bytes_sent;
	res->bytes_server_side = prog->bytes_server_side;
	res->seconds = now_mono() - t0;
	return rc;
}
