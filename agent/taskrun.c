/* One run of a task from its definition (see taskrun.h). */
#include "common/compat.h"

#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ends.h"
#include "agent/filter.h"
#include "agent/shard.h"
#include "agent/taskdef.h"
#include "agent/taskrun.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/registry.h"
#include "remote/s3.h"

int taskrun_record_new(const struct taskdef *def, struct task_record *t, struct dth_err *err)
{
	memset(t, 0, sizeof(*t));
	if (str_copy(t->name, def->name, sizeof(t->name)))
		return err_set(err, -ENAMETOOLONG,
			       "the task name is %zu bytes; a task name has at most %zu: choose a "
			       "shorter one with --task NAME",
			       strlen(def->name), sizeof(t->name) - 1);
	if (str_copy(t->src, def->source, sizeof(t->src)) ||
	    str_copy(t->dst, def->destination, sizeof(t->dst)))
		return err_set(err, -ENAMETOOLONG,
			       "a source or destination of more than %zu bytes cannot be recorded "
			       "in the manifest",
			       sizeof(t->src) - 1);
	str_copy_fit(t->kind, taskdef_kind_name(def->kind), sizeof(t->kind));
	str_copy_fit(t->state, "starting", sizeof(t->state));
	t->created = (int64_t)time(NULL);
	return 0;
}

static void fail(struct taskrun_result *r, int exit, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct taskrun_result *r, int exit, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->exit = exit;
}

/* Find or make the record of o->def; check that it copies the same ends. */
static int record_open(const struct taskrun_opts *o, struct taskrun_result *r,
		       struct task_record *t, bool *rebound)
{
	const struct taskdef *d = o->def;
	struct dth_err err;
	err_clear(&err);
	*rebound = false;
	if (taskrun_record_new(d, t, &err)) {
		fail(r, TASKRUN_USAGE, "%s", err.message);
		return -1;
	}
	bool created;
	int rc = manifest_task_ensure(o->manifest, t, &r->task_id, &created);
	if (!rc)
		rc = manifest_task_find(o->manifest, d->name, &r->task_id, t);
	if (rc) {
		fail(r, TASKRUN_SOME_FAILED, "task %s: %s", d->name, strerror(-rc));
		return -1;
	}
	const char *kind = taskdef_kind_name(d->kind);
	if (!strcmp(t->kind, kind) && !strcmp(t->src, d->source) && !strcmp(t->dst, d->destination))
		return 0;
	if (!o->rebind || strcmp(t->kind, kind)) {
		fail(r, TASKRUN_USAGE,
		     "task '%s' is a %s task copying %s to %s, not %s from %s to %s: choose "
		     "another --task name",
		     d->name, t->kind, t->src, t->dst, d->kind == TASKDEF_S3 ? "objects" : "images",
		     d->source, d->destination);
		return -1;
	}
	log_info("task %s: now copies %s to %s (was %s to %s)", d->name, d->source, d->destination,
		 t->src, t->dst);
	str_copy_fit(t->src, d->source, sizeof(t->src));
	str_copy_fit(t->dst, d->destination, sizeof(t->dst));
	t->dest_listed = 0;
	*rebound = true;
	return 0;
}

static void record_put(const struct taskrun_opts *o, const struct taskrun_result *r,
		       const struct task_record *t)
{
	if (o->dry_run)
		return;
	if (manifest_task_put(o->manifest, r->task_id, t))
		log_warn("could not update task %s", t->name);
}

/* Mark the record running; true when the last run never ended. */
static bool record_running(const struct taskrun_opts *o, const struct taskrun_result *r,
			   struct task_record *t)
{
	bool after_crash = !o->dry_run && !strcmp(t->state, "running");
	if (o->dry_run)
		return false;
	str_copy_fit(t->state, "running", sizeof(t->state));
	t->last_run_start = (int64_t)time(NULL);
	record_put(o, r, t);
	return after_crash;
}

static void record_end(const struct taskrun_opts *o, const struct taskrun_result *r,
		       struct task_record *t, bool went_through)
{
	t->last_run_end = (int64_t)time(NULL);
	t->last_exit = r->exit;
	if (went_through && !r->interrupted && r->exit == TASKRUN_DONE)
		t->last_success = t->last_run_end;
	str_copy_msg(t->error, r->interrupted ? "" : r->error, sizeof(t->error));
	if (went_through && !r->interrupted) {
		t->runs++;
		str_copy_fit(t->state, r->failed ? "error" : "idle", sizeof(t->state));
	} else {
		str_copy_fit(t->state, r->interrupted ? "stopped" : "error", sizeof(t->state));
	}
	record_put(o, r, t);
}

void taskrun_result_release(struct taskrun_result *r)
{
	json_decref(r->report);
	r->report = NULL;
}

/* ---- S3 tasks ---- */

static json_t *s3_counts_json(const uint64_t *c)
{
	json_t *o = json_object();
	static const enum s3_req_kind kinds[] = {S3_REQ_LIST,	S3_REQ_HEAD, S3_REQ_GET,
						 S3_REQ_PUT,	S3_REQ_COPY, S3_REQ_MULTIPART,
						 S3_REQ_DELETE, S3_REQ_OTHER};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		json_object_set_new(o, s3_req_kind_name(kinds[i]),
				    json_integer((json_int_t)c[kinds[i]]));
	return o;
}

static void s3_report(const struct taskrun_opts *o, const struct s3_ends *e,
		      const struct sync_result *res, struct taskrun_result *r)
{
	uint64_t cs[S3_REQ__COUNT], cd[S3_REQ__COUNT], ct[S3_REQ__COUNT];
	s3_client_counts(e->src, cs);
	s3_client_counts(e->dst, cd);
	r->requests = 0;
	for (int k = 0; k < S3_REQ__COUNT; k++) {
		ct[k] = cs[k] + (e->dst != e->src ? cd[k] : 0);
		r->requests += ct[k];
	}
	json_t *out = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:o}", "task", o->def->name,
	    "transferred", (json_int_t)res->transferred, "bytes", (json_int_t)res->bytes_sent,
	    "skipped", (json_int_t)res->skipped, "failed", (json_int_t)res->failed, "deleted",
	    (json_int_t)res->deleted, "seconds", res->seconds, "requests", s3_counts_json(ct),
	    "source_requests", s3_counts_json(cs), "destination_requests", s3_counts_json(cd));
	json_object_set_new(out, "dry_run", json_boolean(o->dry_run));
	if (o->dry_run) {
		json_t *pl = json_object();
		for (int a = 0; a < SYNC__COUNT; a++)
			json_object_set_new(pl, sync_action_name(a),
					    json_integer((json_int_t)res->planned[a]));
		json_object_set_new(out, "planned", pl);
	}
	json_object_set_new(out, "adopted", json_integer((json_int_t)res->adopted));
	/* bytes: body bytes this run uploaded and the destination took;
	 * object_bytes: the sizes of the objects it completed (parts an earlier
	 * run sent included); server-side copies send nothing. */
	json_object_set_new(out, "object_bytes", json_integer((json_int_t)res->bytes));
	json_object_set_new(out, "bytes_server_side",
			    json_integer((json_int_t)res->bytes_server_side));
	json_object_set_new(out, "memory_peak", json_integer((json_int_t)res->memory_peak));
	/* small-object lanes allowed, and the fewest let in after throttling */
	json_object_set_new(out, "small_lanes", json_integer(res->small_lanes));
	json_object_set_new(out, "small_lanes_low", json_integer(res->small_lanes_low));
	json_object_set_new(out, "deletes_refused", json_integer((json_int_t)res->deletes_refused));
	r->report = out;
}

static void s3_opts(const struct taskrun_opts *o, const struct s3_ends *e,
		    const struct filter *filter, struct sync_opts *so)
{
	const struct taskdef *d = o->def;
	memset(so, 0, sizeof(*so));
	so->src = e->src;
	so->dst = e->dst;
	so->src_bucket = e->src_bucket;
	so->src_prefix = e->src_prefix;
	so->dst_bucket = e->dst_bucket;
	so->dst_prefix = e->dst_prefix;
	so->same_endpoint = e->same_endpoint && d->server_side_copy;
	so->manifest = o->manifest;
	so->concurrency = (unsigned)d->concurrency;
	so->small_concurrency = d->small_concurrency < 0 ? 0 : (unsigned)d->small_concurrency;
	so->multipart_threshold = d->multipart_threshold;
	so->part_size = d->part_size;
	so->memory_limit = d->memory_limit;
	so->parallel_parts = d->parallel_parts;
	so->metadata = d->metadata;
	so->storage_class = d->storage_class;
	so->acl = d->acl;
	so->sse = d->sse;
	so->sse_kms_key_id = d->sse_kms_key_id;
	so->filter = filter_empty(filter) ? NULL : filter;
	so->dry_run = o->dry_run;
	so->delete_gone = d->delete_gone;
	so->max_delete = d->max_delete;
	so->max_delete_percent = d->max_delete_percent;
	so->on_item = o->on_item;
	so->on_item_ctx = o->hook_ctx;
	so->on_failure = o->on_failure;
	so->on_failure_ctx = o->hook_ctx;
	so->stop = (volatile int *)o->stop;
	so->progress = o->live ? &o->live->sync : NULL;
	so->fair = o->fair;
}

static struct filter *make_filter(const struct taskdef *d)
{
	struct filter *f = filter_new();
	struct dth_err err;
	for (size_t i = 0; i < d->n_patterns; i++)
		if (filter_add(f, d->patterns[i].include, d->patterns[i].glob, &err))
			log_warn("pattern %s: %s", d->patterns[i].glob, err.message); /* checked */
	return f;
}

static void s3_finish(const struct taskrun_opts *o, int rc, const struct sync_result *res,
		      const struct dth_err *err, struct taskrun_result *r)
{
	r->listed = o->live ? __atomic_load_n(&o->live->sync.listed, __ATOMIC_RELAXED) : 0;
	r->planned = res->planned[SYNC_COPY_NEW] + res->planned[SYNC_COPY_CHANGED] +
		     res->planned[SYNC_COPY_RETRY] + res->planned[SYNC_COPY_MISSING];
	r->transferred = res->transferred;
	r->skipped = res->skipped;
	r->failed = res->failed;
	r->deleted = res->deleted;
	r->bytes = res->bytes_sent;
	r->object_bytes = res->bytes;
	r->seconds = res->seconds;
	r->interrupted = o->stop && *o->stop;
	if (rc) {
		if (rc == -EINTR || r->interrupted)
			fail(r, TASKRUN_SOME_FAILED,
			     "interrupted: the next run resumes where this one stopped");
		else
			fail(r, res->unreachable ? TASKRUN_UNREACHABLE : TASKRUN_SOME_FAILED, "%s",
			     err->message[0] ? err->message : strerror(-rc));
	} else {
		r->exit = res->failed || r->interrupted ? TASKRUN_SOME_FAILED : TASKRUN_DONE;
	}
}

/* The shard a task copies is recorded with it (note "shard": "I/N PLAN"):
 * its records hold that shard's keys only, so a run with another shard, or
 * none, is refused rather than taking the records for the whole (a full run
 * would copy again what other shards copied, and a --delete could act on
 * what it never recorded). 0, or -1 with r failed. */
static int shard_record(const struct taskrun_opts *o, struct taskrun_result *r,
			const struct task_record *t, const struct shard_bind *b)
{
	struct buf was = BUF_INIT, now = BUF_INIT;
	int rc = manifest_task_note_get(o->manifest, r->task_id, "shard", &was);
	if (b->plan)
		shard_bind_note(b, &now);
	const char *w = rc == 0 ? buf_str(&was) : "the whole key space";
	const char *n = b->plan ? buf_str(&now) : "the whole key space";
	if (rc == 0 || (b->plan && t->runs > 0)) {
		if (rc && rc != -ENOENT)
			fail(r, TASKRUN_SOME_FAILED, "task %s: reading its shard: %s", t->name,
			     strerror(-rc));
		else if (strcmp(w, n))
			fail(r, TASKRUN_USAGE,
			     "task %s copies shard %s, not %s: its records hold that part only; "
			     "give each shard its own task (--task) or state directory",
			     t->name, w, n);
		rc = r->error[0] ? -1 : 0;
	} else if (b->plan && !o->dry_run) {
		struct buf bounds = BUF_INIT;
		shard_bounds_format(b, &bounds);
		rc = manifest_task_note_put(o->manifest, r->task_id, "bounds", bounds.data,
					    bounds.len);
		buf_release(&bounds);
		if (!rc)
			rc = manifest_task_note_put(o->manifest, r->task_id, "shard", now.data,
						    now.len);
		if (rc)
			fail(r, TASKRUN_SOME_FAILED, "task %s: recording its shard: %s", t->name,
			     strerror(-rc));
		rc = rc ? -1 : 0;
	} else {
		rc = 0;
	}
	buf_release(&was);
	buf_release(&now);
	return rc;
}

static int run_s3(const struct taskrun_opts *o, struct taskrun_result *r)
{
	const struct taskdef *d = o->def;
	struct dth_err err;
	err_clear(&err);
	struct s3_ends e;
	int rc = ends_s3_open(&e, o->cfg, d->source, d->destination, (int)d->retries,
			      d->requester_pays, &err);
	if (rc) {
		fail(r, rc == -ENOMEM ? TASKRUN_SOME_FAILED : TASKRUN_USAGE, "%s", err.message);
		ends_s3_close(&e);
		return r->exit;
	}
	if (ends_s3_overlap(&e)) {
		fail(r, TASKRUN_USAGE, "source and destination overlap (%s and %s)", d->source,
		     d->destination);
		ends_s3_close(&e);
		return r->exit;
	}
	struct shard_bind shard = {0};
	if (d->shard && shard_bind_open(d->shard, d->shard_plan, &shard, &err)) {
		fail(r, TASKRUN_USAGE, "%s", err.message);
		ends_s3_close(&e);
		return r->exit;
	}
	struct task_record t;
	bool rebound;
	if (record_open(o, r, &t, &rebound) || shard_record(o, r, &t, &shard)) {
		shard_bind_release(&shard);
		ends_s3_close(&e);
		return r->exit;
	}
	/* Still "running": the last run never ended (killed, or the host went
	 * down), and what it copied in its last moments is not recorded. The
	 * destination listing then finds those copies, so they are not sent again. */
	bool after_crash = record_running(o, r, &t);
	if (after_crash)
		log_info("task %s: the last run did not end; the destination is listed", d->name);
	struct filter *filter = make_filter(d);
	struct sync_opts so;
	s3_opts(o, &e, filter, &so);
	so.task_id = r->task_id;
	so.shard_lo = shard.lo;
	so.shard_hi = shard.hi;
	so.merge_destination = !t.dest_listed || d->delete_gone || after_crash || rebound;
	if (o->retry_failed) {
		so.retry_failed = true;
		so.merge_destination = false;
		so.delete_gone = false;
	} else if (o->keys) {
		so.keys = o->keys;
		so.n_keys = o->n_keys;
		so.merge_destination = !t.dest_listed || after_crash || rebound;
	}
	struct sync_result res;
	rc = sync_run(&so, &res, &err);
	s3_finish(o, rc, &res, &err, r);
	if (!o->dry_run) {
		if (!rc && !r->interrupted && so.merge_destination && !o->keys)
			t.dest_listed = 1;
		record_end(o, r, &t, rc == 0);
	}
	s3_report(o, &e, &res, r);
	if (r->error[0])
		json_object_set_new(r->report, "error", json_string(r->error));
	filter_free(filter);
	shard_bind_release(&shard);
	ends_s3_close(&e);
	return r->exit;
}

/* ---- image tasks ---- */

struct image_args {
	regex_t tags_re;
	bool have_re;
	struct image_platform *platforms;
	size_t n_platforms;
};

static int image_args_init(const struct taskdef *d, struct image_args *a, struct dth_err *err)
{
	memset(a, 0, sizeof(*a));
	if (d->tags) {
		struct buf wrapped = BUF_INIT;
		buf_addf(&wrapped, "^(%s)$", d->tags);
		int rc = regcomp(&a->tags_re, wrapped.data, REG_EXTENDED);
		buf_release(&wrapped);
		if (rc)
			return err_set(err, -EINVAL, "tags: bad regex");
		a->have_re = true;
	}
	if (d->platform && image_parse_platforms(d->platform, &a->platforms, &a->n_platforms, err))
		return -EINVAL;
	return 0;
}

static void image_args_release(struct image_args *a)
{
	if (a->have_re)
		regfree(&a->tags_re);
	free(a->platforms);
}

struct image_hooks {
	const struct taskrun_opts *o;
	const char **refs; /* o->keys as strings (owned), or NULL */
};

static void image_failure(void *ctx, const char *ref, int rc, const char *message)
{
	const struct taskrun_opts *o = ((struct image_hooks *)ctx)->o;
	(void)rc;
	if (o->on_failure)
		o->on_failure(o->hook_ctx, ref, strlen(ref), message);
}

static void image_note(void *ctx, const char *ref, const char *message)
{
	const struct taskrun_opts *o = ((struct image_hooks *)ctx)->o;
	if (o->on_note)
		o->on_note(o->hook_ctx, ref, message);
}

static void image_report(const struct taskrun_opts *o, const struct image_ends *e,
			 const struct image_sync_result *res, struct taskrun_result *r)
{
	json_t *reqs = ends_image_requests_json(e);
	r->requests = 0;
	const char *sides[2] = {"source", "destination"};
	for (int i = 0; i < 2; i++)
		r->requests += (uint64_t)json_integer_value(
		    json_object_get(json_object_get(reqs, sides[i]), "total"));
	json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "task",
				o->def->name, "images", (json_int_t)res->images, "copied",
				(json_int_t)res->copied, "skipped", (json_int_t)res->skipped,
				"failed", (json_int_t)res->failed, "blobs", (json_int_t)res->blobs,
				"blobs_mounted", (json_int_t)res->blobs_mounted, "blobs_present",
				(json_int_t)res->blobs_present, "bytes", (json_int_t)res->bytes,
				"seconds", res->seconds, "requests", reqs);
	json_object_set_new(out, "filtered", json_integer((json_int_t)res->filtered));
	r->report = out;
}

static void image_finish(const struct taskrun_opts *o, int rc, const struct image_sync_result *res,
			 const struct dth_err *err, struct taskrun_result *r)
{
	r->listed = res->images;
	r->planned = res->images - res->skipped;
	r->transferred = res->copied;
	r->skipped = res->skipped + res->filtered;
	r->failed = res->failed;
	r->bytes = res->bytes;
	r->object_bytes = res->bytes;
	r->seconds = res->seconds;
	r->interrupted = rc == -EINTR || (o->stop && *o->stop);
	if (rc)
		fail(r, res->unreachable ? TASKRUN_UNREACHABLE : TASKRUN_SOME_FAILED, "%s",
		     err->message[0] ? err->message : strerror(-rc));
	else if (res->unreachable)
		r->exit = TASKRUN_UNREACHABLE;
	else
		r->exit = res->failed || r->interrupted ? TASKRUN_SOME_FAILED : TASKRUN_DONE;
}

static void image_opts(const struct taskrun_opts *o, const struct image_args *a,
		       struct image_hooks *h, struct image_sync_opts *io)
{
	const struct taskdef *d = o->def;
	memset(io, 0, sizeof(*io));
	io->manifest = o->manifest;
	io->images = (const char *const *)d->images;
	io->n_images = d->n_images;
	io->all = d->all;
	if (o->keys) {
		/* the pushed tags only (h->refs: their strings) */
		io->images = (const char *const *)h->refs;
		io->n_images = o->n_keys;
		io->all = false;
	}
	io->tags_re = a->have_re ? &a->tags_re : NULL;
	io->platforms = a->platforms;
	io->n_platforms = a->n_platforms;
	io->on_note = image_note;
	io->on_note_ctx = h;
	io->concurrency = (unsigned)d->concurrency;
	io->on_failure = image_failure;
	io->on_failure_ctx = h;
	io->stop = o->stop;
	io->progress = o->live ? &o->live->image : NULL;
	io->fair = o->fair;
}

static int run_image(const struct taskrun_opts *o, struct taskrun_result *r)
{
	const struct taskdef *d = o->def;
	struct dth_err err;
	err_clear(&err);
	struct image_args a;
	struct image_ends e;
	memset(&e, 0, sizeof(e));
	int rc = image_args_init(d, &a, &err);
	if (!rc)
		rc = ends_image_open(&e, o->cfg, d->source, d->destination, (int)d->retries, &err);
	struct task_record t;
	bool rebound;
	if (rc) {
		fail(r, rc == -ENOMEM ? TASKRUN_SOME_FAILED : TASKRUN_USAGE, "%s", err.message);
		goto out;
	}
	if (record_open(o, r, &t, &rebound))
		goto out;
	/* Still "running": the last run never ended (killed, or the host went down). */
	bool after_crash = record_running(o, r, &t);
	if (after_crash)
		log_info("task %s: the last run did not end; blobs it may have uploaded are "
			 "checked at the destination",
			 d->name);
	struct image_hooks h = {o, NULL};
	if (o->keys) {
		h.refs = xcalloc(o->n_keys ? o->n_keys : 1, sizeof(*h.refs));
		for (size_t i = 0; i < o->n_keys; i++)
			h.refs[i] = o->keys[i].key;
	}
	struct image_sync_opts io;
	image_opts(o, &a, &h, &io);
	ends_image_apply(&e, &io);
	io.task_id = r->task_id;
	io.after_crash = after_crash || rebound;
	struct image_sync_result res;
	rc = image_sync_run(&io, &res, &err);
	image_finish(o, rc, &res, &err, r);
	record_end(o, r, &t, rc == 0);
	image_report(o, &e, &res, r);
	if (r->error[0])
		json_object_set_new(r->report, "error", json_string(r->error));
	free(h.refs);
out:
	image_args_release(&a);
	ends_image_close(&e);
	return r->exit;
}

int taskrun_run(const struct taskrun_opts *o, struct taskrun_result *r)
{
	memset(r, 0, sizeof(*r));
	if (o->live)
		memset(o->live, 0, sizeof(*o->live));
	if (o->def->kind == TASKDEF_IMAGE && o->dry_run) {
		fail(r, TASKRUN_USAGE, "image tasks have no dry run");
		return r->exit;
	}
	return o->def->kind == TASKDEF_IMAGE ? run_image(o, r) : run_s3(o, r);
}
