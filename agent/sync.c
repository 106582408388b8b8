#include "agent/sync.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/filter.h"
#include "agent/planner.h"
#include "agent/plister.h"
#include "agent/transfer.h"
#include "common/log.h"
#include "manifest/manifest.h"
#include "remote/s3.h"

static struct sync_progress progress;

struct sync_progress *sync_progress_get(void)
{
	return &progress;
}

const char *sync_action_name(enum sync_action a)
{
	static const char *const names[SYNC__COUNT] = {"new",  "changed", "retry",  "missing",
						       "skip", "adopt",	  "delete", "gone"};
	return (unsigned)a < SYNC__COUNT ? names[a] : "?";
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
			strlcpy_s(msg, err->message, sizeof(msg));
			err_set(err, rc, "%s (the credentials were refused or lack permission)",
				msg);
		}
		err_prefix(err, "destination %s:%s", s3_client_name(o->dst), o->dst_bucket);
		res->unreachable = true;
	}
	return rc;
}

/* Split keys (full source keys) for a parallel listing: one range per 5,000
 * known objects, at most max+1 ranges and no more than the concurrency. */
static unsigned source_splits(const struct sync_opts *o, struct buf *store, const char **keys,
			      unsigned max)
{
	struct task_stats st;
	if (manifest_stats_get(o->manifest, o->task_id, &st))
		return 0;
	uint64_t total = 0;
	for (int i = 0; i < OBJ__COUNT; i++)
		total += st.count[i];
	uint64_t ranges = total / 5000;
	if (ranges > max + 1)
		ranges = max + 1;
	if (ranges > o->concurrency)
		ranges = o->concurrency;
	if (ranges < 2)
		return 0;
	struct buf q = BUF_INIT;
	unsigned n = 0;
	if (manifest_key_quantiles(o->manifest, o->task_id, NULL, (unsigned)ranges, &q, &n) ||
	    n == 0) {
		buf_release(&q);
		return 0;
	}
	/* Full keys: the source prefix + each relative key. */
	size_t off = 0;
	size_t *offs = xcalloc(n, sizeof(size_t));
	unsigned k = 0;
	for (unsigned i = 0; i < n && off < q.len && k < max; i++) {
		const char *rel = q.data + off;
		size_t len = strlen(rel);
		offs[k++] = store->len;
		buf_adds(store, o->src_prefix);
		buf_add(store, rel, len);
		buf_addch(store, '\0');
		off += len + 1;
	}
	for (unsigned i = 0; i < k; i++)
		keys[i] = store->data + offs[i];
	free(offs);
	buf_release(&q);
	return k;
}

static bool unreachable_errno(int rc)
{
	return rc == -EACCES || rc == -EPERM || rc == -ENOENT || rc == -ETIMEDOUT ||
	       rc == -ECONNREFUSED || rc == -ECONNRESET || rc == -EHOSTUNREACH ||
	       rc == -ENETUNREACH || rc == -EPROTO;
}

int sync_run(const struct sync_opts *o, struct sync_result *res, struct dth_err *err)
{
	double t0 = now_mono();
	int rc = 0;
	struct manifest_writer *w = NULL;
	struct transfer *xfer = NULL;
	struct plister *ls = NULL, *ld = NULL;
	struct buf splits = BUF_INIT;
	struct manifest_cursor *cur = NULL;
	struct planner *pl = NULL;
	struct sync_progress *prog = &progress;

	memset(res, 0, sizeof(*res));
	memset(prog, 0, sizeof(*prog));

	/* The source answers through its first listing page; the destination is
	 * checked before the first thing is written to it (or listed), so a
	 * no-change rescan sends nothing but source LISTs. */
	bool dst_checked = false;
	bool dst_absent = false;
	if (o->merge_destination) {
		rc = check_destination(o, res, err);
		if (rc == -ENOENT && o->dry_run) {
			/* A dry run into a bucket that does not exist yet: all is new. */
			err_clear(err);
			res->unreachable = false;
			dst_absent = true;
			rc = 0;
		}
		if (rc)
			return rc;
		dst_checked = true;
	}

	if (!o->dry_run) {
		w = manifest_writer_new(o->manifest, 1024, 200, err);
		if (!w)
			return err->code ? err->code : -EIO;
		xfer = transfer_new(o, w, prog);
	}

	/* List the source in parallel key ranges split at the manifest's own
	 * quantiles (a rescan of a known task), else as one stream. */
	const char *split_keys[7];
	unsigned nsplit = source_splits(o, &splits, split_keys, ARRAY_SIZE(split_keys));
	ls = plister_new(o->src, o->src_bucket, o->src_prefix[0] ? o->src_prefix : NULL, split_keys,
			 nsplit, 5000);
	if (o->merge_destination && !dst_absent)
		ld = plister_new(o->dst, o->dst_bucket, o->dst_prefix[0] ? o->dst_prefix : NULL,
				 NULL, 0, 0);
	cur = manifest_cursor_new(o->manifest, MANIFEST_OBJECTS, o->task_id, NULL, NULL, err);
	if (!cur) {
		rc = err->code ? err->code : -EIO;
		goto out;
	}
	pl = planner_new(ls, o->src_prefix, cur, ld, o->dst_prefix, o->filter, o->delete_gone);

	struct plan p;
	for (;;) {
		if (o->stop && *o->stop) {
			rc = -EINTR;
			err_set(err, rc, "interrupted");
			break;
		}
		rc = planner_next(pl, &p, err);
		prog->listed = planner_listed(pl);
		if (rc < 0 && unreachable_errno(rc) && !prog->listed)
			res->unreachable = true;
		if (rc <= 0)
			break;
		if (!dst_checked && !o->dry_run && p.action != SYNC_SKIP && p.action != SYNC_GONE) {
			if ((rc = check_destination(o, res, err)))
				goto out;
			dst_checked = true;
		}
		res->planned[p.action]++;
		if (o->on_item) {
			struct sync_item it = {p.action, p.key, p.key_len,
					       p.in_src ? p.size : p.rec.size,
					       p.in_src ? p.etag : p.rec.etag};
			o->on_item(o->on_item_ctx, &it);
		}
		switch (p.action) {
		case SYNC_COPY_NEW:
		case SYNC_COPY_CHANGED:
		case SYNC_COPY_RETRY:
		case SYNC_COPY_MISSING:
			add64(&prog->planned, 1);
			add64(&prog->planned_bytes, p.size);
			if (!o->dry_run && (rc = transfer_submit(xfer, &p)))
				goto out;
			break;
		case SYNC_SKIP:
			add64(&prog->skipped, 1);
			break;
		case SYNC_ADOPT:
			add64(&prog->skipped, 1);
			res->adopted++;
			if (!o->dry_run) {
				struct obj_record r;
				memset(&r, 0, sizeof(r));
				r.size = p.size;
				r.last_modified = p.last_modified;
				strlcpy_s(r.etag, p.etag, sizeof(r.etag));
				r.status = OBJ_DONE;
				r.attempts = p.has_rec ? p.rec.attempts : 0;
				strlcpy_s(r.dest_etag, p.dst_etag, sizeof(r.dest_etag));
				r.transferred_at = (int64_t)time(NULL);
				if ((rc = manifest_writer_put_obj(w, o->task_id, p.key, p.key_len,
								  &r))) {
					err_set(err, rc, "writing the manifest: %s", strerror(-rc));
					goto out;
				}
			}
			break;
		case SYNC_DELETE:
			if (!o->dry_run && (rc = transfer_submit(xfer, &p)))
				goto out;
			if (o->dry_run)
				add64(&prog->deleted, 1);
			break;
		case SYNC_GONE:
		case SYNC__COUNT:
			break;
		}
	}
	prog->listing_done = rc == 0;
out:
	if (xfer) {
		struct dth_err ferr;
		err_clear(&ferr);
		int frc = transfer_finish(xfer, &ferr);
		if (frc && (!rc || rc == frc)) {
			rc = frc;
			*err = ferr;
		}
	}
	if (rc == 0 && !o->dry_run && !(o->stop && *o->stop)) {
		int arc = abort_orphans(o, w);
		if (arc)
			log_warn("could not clean up recorded multipart uploads: %s",
				 strerror(-arc));
	}
	if (w) {
		int wrc = manifest_writer_free(w);
		if (wrc && !rc) {
			rc = wrc;
			err_set(err, rc, "writing the manifest: %s", strerror(-wrc));
		}
	}
	transfer_free(xfer);
	planner_free(pl);
	manifest_cursor_free(cur);
	plister_free(ls);
	plister_free(ld);
	buf_release(&splits);
	res->transferred = prog->transferred;
	res->bytes = prog->bytes;
	res->skipped = prog->skipped;
	res->failed = prog->failed;
	res->deleted = prog->deleted;
	res->seconds = now_mono() - t0;
	return rc;
}
