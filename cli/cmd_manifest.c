/* dth manifest: read-only inspection of what was moved (tasks, ls, stat,
 * stats, diff, verify, export, merge). Opens the LMDB manifest read-only, so
 * it runs while a sync or the agent writes. --state may be repeated: the
 * shards' state directories of one task are then read as one manifest
 * (manifest/multi.h); diff and verify run in agent/inspect.c. */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/inspect.h"
#include "agent/shardplan.h"
#include "agent/sync.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/uri.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "manifest/multi.h"

struct mopts {
	const char *state;   /* the first --state, or NULL */
	const char **states; /* every --state, in order (argc slots) */
	size_t nstates;
	const char *into;
	const char *config;
	const char *status;
	bool json;
	bool lng;
	unsigned concurrency;
};

static void manifest_usage(FILE *f)
{
	fputs("usage: dth manifest [--state DIR]... [--json] COMMAND ...\n"
	      "\n"
	      "commands:\n"
	      "  tasks                       the tasks in the manifest (of each --state)\n"
	      "  ls TASK [PREFIX] [--status S] [--long]\n"
	      "                              keys of a task (S: pending, copying, done, failed,\n"
	      "                              skipped, deleted)\n"
	      "  stat TASK KEY               one object's record\n"
	      "  stats TASK                  counts and bytes by status\n"
	      "  diff TASK [--config FILE]   what the next run would do, copying nothing\n"
	      "  verify TASK [--config FILE] [--concurrency N]\n"
	      "                              HEAD every done object at the destination and report\n"
	      "                              mismatches (exit 1 when any)\n"
	      "  export TASK                 every record as JSON lines\n"
	      "  merge TASK --into DIR       write the task's records of every --state into a\n"
	      "                              new manifest in DIR\n"
	      "  images TASK                 an image task's tags: repo:tag, status, source\n"
	      "                              digest (and the error of a failed one)\n"
	      "\n"
	      "--state DIR may be repeated (the state directories of the shards of one task):\n"
	      "ls, stat, stats, diff, verify, export and merge then read them as one manifest,\n"
	      "and a key recorded in two of them is an error naming both.\n"
	      "--json prints JSON (one object; ls and export print one object per line)\n",
	      f);
}

/* A key as a JSON string; keys that are not UTF-8 are percent-encoded and
 * flagged with "key_encoding": "url". */
static void json_set_key(json_t *o, const char *key, size_t len)
{
	if (utf8_valid(key, len)) {
		json_object_set_new(o, "key", json_stringn(key, len));
	} else {
		struct buf b = BUF_INIT;
		uri_encode(&b, key, len, true);
		json_object_set_new(o, "key", json_string(b.data));
		json_object_set_new(o, "key_encoding", json_string("url"));
		buf_release(&b);
	}
}

static void print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(o);
}

static void fmt_time(int64_t t, char out[32])
{
	if (!t) {
		xsnprintf(out, 32, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *record_json(const char *key, size_t len, const struct obj_record *r)
{
	json_t *o = json_object();
	json_set_key(o, key, len);
	json_object_set_new(o, "status", json_string(obj_status_name(r->status)));
	json_object_set_new(o, "size", json_integer((json_int_t)r->size));
	json_object_set_new(o, "etag", json_string(r->etag));
	json_object_set_new(o, "last_modified", json_integer(r->last_modified));
	json_object_set_new(o, "dest_etag", json_string(r->dest_etag));
	json_object_set_new(o, "transferred_at", json_integer(r->transferred_at));
	json_object_set_new(o, "attempts", json_integer(r->attempts));
	char fp[17];
	xsnprintf(fp, sizeof(fp), "%016llx", (unsigned long long)r->meta_fp);
	json_object_set_new(o, "meta_fingerprint", json_string(r->meta_fp ? fp : ""));
	if (r->last_error[0])
		json_object_set_new(o, "last_error", json_string(r->last_error));
	return o;
}

/* The manifest in dir, read-only, into *m: 0, or EXIT_USAGE with the
 * problem printed. */
static int open_dir(const char *dir, struct manifest **m)
{
	struct dth_err err;
	err_clear(&err);
	*m = manifest_open(dir, MANIFEST_RDONLY, &err);
	if (*m)
		return 0;
	cli_error("no manifest in %s: %s", dir, err.message);
	return EXIT_USAGE;
}

static int open_task(const struct mopts *mo, const char *name, struct manifest **m, uint32_t *id,
		     struct task_record *rec)
{
	if (mo->nstates > 1) {
		cli_error("this command reads one state directory (--state given %zu times)",
			  mo->nstates);
		return EXIT_USAGE;
	}
	char *dir = cli_state_dir(mo->state);
	int ec = open_dir(dir, m);
	free(dir);
	if (ec || !name)
		return ec;
	int rc = manifest_task_find(*m, name, id, rec);
	if (rc) {
		cli_error("no task called '%s' (see dth manifest tasks)", name);
		manifest_free(*m);
		*m = NULL;
		return EXIT_USAGE;
	}
	return 0;
}

/* The task in every --state directory (or the default one), read-only. */
static int open_set(const struct mopts *mo, const char *name, struct manifest_set **s,
		    struct task_record *rec)
{
	struct dth_err err;
	err_clear(&err);
	if (mo->nstates) {
		*s = manifest_set_open(mo->states, mo->nstates, name, &err);
	} else {
		char *dir = cli_state_dir(NULL);
		const char *dirs[1] = {dir};
		*s = manifest_set_open(dirs, 1, name, &err);
		free(dir);
	}
	if (!*s) {
		cli_error("%s", err.message);
		return EXIT_USAGE;
	}
	manifest_set_task(*s, rec);
	return 0;
}

/* The message of a failed read of a set's cursor (an overlap names both dirs). */
static const char *set_failure(const struct manifest_set *s, int rc)
{
	const struct dth_err *e = manifest_set_error(s);
	return e->code ? e->message : strerror(-rc);
}

/* ---- tasks ---- */

struct tasks_ctx {
	struct manifest *m;
	const struct mopts *mo;
	const char *dir; /* NULL: one directory, not named */
	json_t *arr;
};

static int tasks_cb(void *ctx, uint32_t id, const struct task_record *t)
{
	struct tasks_ctx *c = ctx;
	struct task_stats st;
	memset(&st, 0, sizeof(st));
	if (manifest_stats_get(c->m, id, &st))
		memset(&st, 0, sizeof(st));
	char last[32];
	fmt_time(t->last_run_end, last);
	if (c->mo->json) {
		json_t *o = json_pack(
		    "{s:i, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I, s:I}", "id", (int)id,
		    "name", t->name, "kind", t->kind, "source", t->src, "destination", t->dst,
		    "state", t->state, "runs", (int)t->runs, "last_run_end", last, "done",
		    (json_int_t)st.count[OBJ_DONE], "failed", (json_int_t)st.count[OBJ_FAILED],
		    "bytes_done", (json_int_t)st.bytes[OBJ_DONE]);
		if (c->dir)
			json_object_set_new(o, "state_dir", json_string(c->dir));
		json_array_append_new(c->arr, o);
	} else {
		printf("%-30s %-8s %5u runs  %8llu done %6llu failed  last %s  %s -> %s\n", t->name,
		       t->state, t->runs, (unsigned long long)st.count[OBJ_DONE],
		       (unsigned long long)st.count[OBJ_FAILED], last, t->src, t->dst);
	}
	return 0;
}

/* The tasks of one directory (dir: named in the output, NULL: the only one). */
static int tasks_of(const struct mopts *mo, const char *path, const char *dir, json_t *arr)
{
	struct manifest *m;
	int ec = open_dir(path, &m);
	if (ec)
		return ec;
	if (dir && !mo->json)
		printf("%s:\n", dir);
	struct tasks_ctx c = {m, mo, dir, arr};
	int rc = manifest_task_each(m, tasks_cb, &c);
	manifest_free(m);
	if (rc) {
		cli_error("reading the tasks in %s: %s", path, strerror(-rc));
		return EXIT_SOME_FAILED;
	}
	return EXIT_DONE;
}

/* tasks: of each --state directory, named when there are several. */
static int do_tasks(const struct mopts *mo)
{
	json_t *arr = mo->json ? json_array() : NULL;
	int ec = EXIT_DONE;
	if (mo->nstates <= 1) {
		char *dir = cli_state_dir(mo->state);
		ec = tasks_of(mo, dir, NULL, arr);
		free(dir);
	}
	for (size_t i = 0; mo->nstates > 1 && i < mo->nstates && ec == EXIT_DONE; i++) {
		if (i && !mo->json)
			putchar('\n');
		ec = tasks_of(mo, mo->states[i], mo->states[i], arr);
	}
	if (arr && ec == EXIT_DONE)
		print_json(json_pack("{s:o}", "tasks", arr));
	else
		json_decref(arr);
	if (ec)
		return ec;
	return fflush(stdout) ? EXIT_SOME_FAILED : EXIT_DONE;
}

/* ---- ls / export ---- */

static int do_ls(const struct mopts *mo, const char *task, const char *prefix, bool export)
{
	int want = -1;
	if (mo->status) {
		want = obj_status_parse(mo->status);
		if (want < 0) {
			cli_error("unknown status '%s' (pending, copying, done, failed, skipped, "
				  "deleted)",
				  mo->status);
			return EXIT_USAGE;
		}
	}
	struct manifest_set *set;
	struct task_record tr;
	int ec = open_set(mo, task, &set, &tr);
	if (ec)
		return ec;
	struct dth_err err;
	err_clear(&err);
	struct manifest_cursor *c =
	    manifest_set_cursor(set, prefix && *prefix ? prefix : NULL, &err);
	if (!c) {
		cli_error("%s", err.message);
		manifest_set_free(set);
		return EXIT_SOME_FAILED;
	}
	const char *key;
	size_t len;
	struct obj_record r;
	int rc;
	while ((rc = manifest_cursor_next(c, &key, &len, &r)) == 1) {
		if (want >= 0 && r.status != want)
			continue;
		if (mo->json || export) {
			print_json(record_json(key, len, &r));
		} else if (mo->lng) {
			char when[32];
			fmt_time(r.transferred_at, when);
			printf("%-8s %12llu  %-34s %s  %.*s\n", obj_status_name(r.status),
			       (unsigned long long)r.size, r.etag, when, (int)len, key);
		} else {
			fwrite(key, 1, len, stdout);
			putchar('\n');
		}
	}
	manifest_cursor_free(c);
	if (rc < 0)
		cli_error("reading the manifest: %s", set_failure(set, rc));
	manifest_set_free(set);
	if (rc < 0)
		return EXIT_SOME_FAILED;
	return fflush(stdout) ? EXIT_SOME_FAILED : EXIT_DONE;
}

/* ---- stat ---- */

static int do_stat(const struct mopts *mo, const char *task, const char *key)
{
	struct manifest_set *set;
	struct task_record tr;
	int ec = open_set(mo, task, &set, &tr);
	if (ec)
		return ec;
	struct obj_record r;
	struct dth_err err;
	size_t which = 0;
	int rc = manifest_set_obj_get(set, key, strlen(key), &r, &which, &err);
	if (rc) {
		if (rc == -ENOENT)
			cli_error("not found: no record of '%s' in task %s", key, task);
		else
			cli_error("%s", err.message);
		manifest_set_free(set);
		return EXIT_SOME_FAILED;
	}
	uint32_t id;
	struct manifest *m = manifest_set_manifest(set, which, &id);
	struct upload_record u;
	bool have_u = manifest_upload_get(m, id, key, strlen(key), &u) == 0;
	if (mo->json) {
		json_t *o = record_json(key, strlen(key), &r);
		if (have_u)
			json_object_set_new(
			    o, "upload",
			    json_pack("{s:s, s:I, s:i, s:i}", "upload_id", u.upload_id, "part_size",
				      (json_int_t)u.part_size, "parts", (int)u.part_count,
				      "parts_done", (int)u.n_parts));
		print_json(o);
	} else {
		char lm[32], tt[32];
		fmt_time(r.last_modified, lm);
		fmt_time(r.transferred_at, tt);
		printf("key:            %s\nstatus:         %s\nsize:           %llu\n"
		       "source etag:    %s\nlast modified:  %s\ndest etag:      %s\n"
		       "transferred at: %s\nattempts:       %u\n",
		       key, obj_status_name(r.status), (unsigned long long)r.size, r.etag, lm,
		       r.dest_etag[0] ? r.dest_etag : "-", tt, r.attempts);
		if (r.last_error[0])
			printf("last error:     %s\n", r.last_error);
		if (have_u)
			printf("upload:         %s (%u of %u parts done, %llu-byte parts)\n",
			       u.upload_id, u.n_parts, u.part_count,
			       (unsigned long long)u.part_size);
	}
	if (have_u)
		codec_upload_release(&u);
	manifest_set_free(set);
	return EXIT_DONE;
}

/* ---- stats ---- */

static int do_stats(const struct mopts *mo, const char *task)
{
	struct manifest_set *set;
	struct task_record tr;
	int ec = open_set(mo, task, &set, &tr);
	if (ec)
		return ec;
	struct task_stats st;
	struct dth_err err;
	err_clear(&err);
	int rc = manifest_set_stats(set, &st, &err);
	size_t ndirs = manifest_set_size(set);
	json_t *dirs = json_array();
	for (size_t i = 0; i < ndirs; i++)
		json_array_append_new(dirs, json_string(manifest_set_dir(set, i)));
	manifest_set_free(set);
	if (rc) {
		json_decref(dirs);
		cli_error("reading stats: %s", err.message);
		return EXIT_SOME_FAILED;
	}
	uint64_t tc = 0, tb = 0;
	for (int s = 0; s < OBJ__COUNT; s++) {
		tc += st.count[s];
		tb += st.bytes[s];
	}
	if (mo->json) {
		json_t *counts = json_object(), *bytes = json_object();
		for (int s = 0; s < OBJ__COUNT; s++) {
			json_object_set_new(counts, obj_status_name(s),
					    json_integer((json_int_t)st.count[s]));
			json_object_set_new(bytes, obj_status_name(s),
					    json_integer((json_int_t)st.bytes[s]));
		}
		json_t *o =
		    json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:I, s:I}", "task", tr.name,
			      "source", tr.src, "destination", tr.dst, "state", tr.state, "runs",
			      (int)tr.runs, "count", counts, "bytes", bytes, "total_count",
			      (json_int_t)tc, "total_bytes", (json_int_t)tb);
		if (ndirs > 1) /* one directory: the schema as before */
			json_object_set(o, "state_dirs", dirs);
		print_json(o);
	} else {
		printf("task %s: %s -> %s (%s, %u runs", tr.name, tr.src, tr.dst, tr.state,
		       tr.runs);
		if (ndirs > 1)
			printf(", %zu state directories", ndirs);
		printf(")\n");
		for (int s = 0; s < OBJ__COUNT; s++) {
			char b[32];
			progress_fmt_bytes(st.bytes[s], b);
			printf("  %-8s %12llu objects %14s\n", obj_status_name(s),
			       (unsigned long long)st.count[s], b);
		}
		char b[32];
		progress_fmt_bytes(tb, b);
		printf("  %-8s %12llu objects %14s\n", "total", (unsigned long long)tc, b);
	}
	json_decref(dirs);
	return EXIT_DONE;
}

/* ---- diff ---- */

struct diff_ctx {
	bool json;
	bool first;
};

static void diff_item(void *ctx, const struct sync_item *it)
{
	struct diff_ctx *d = ctx;
	if (it->action == SYNC_SKIP)
		return;
	if (d->json) {
		json_t *o = json_object();
		json_object_set_new(o, "action", json_string(sync_action_name(it->action)));
		json_set_key(o, it->key, it->key_len);
		json_object_set_new(o, "size", json_integer((json_int_t)it->size));
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s%s", d->first ? "" : ",", s ? s : "null");
		free(s);
		json_decref(o);
		d->first = false;
	} else {
		printf("%-8s %12llu  %.*s\n", sync_action_name(it->action),
		       (unsigned long long)it->size, (int)it->key_len, it->key);
	}
}

/* Plan a dry run over the set: one directory as `dth sync --dry-run` does;
 * several through the merge of their cursors. */
static int diff_run(struct manifest_set *set, struct sync_opts *o, struct sync_result *res,
		    struct dth_err *err)
{
	if (manifest_set_size(set) == 1)
		return sync_run(o, res, err);
	struct manifest_cursor *c = manifest_set_cursor(set, NULL, err);
	if (!c) {
		memset(res, 0, sizeof(*res));
		return err->code ? err->code : -EIO;
	}
	int rc = inspect_diff(o, c, res, err);
	manifest_cursor_free(c);
	if (rc && manifest_set_error(set)->code)
		*err = *manifest_set_error(set);
	return rc;
}

static void diff_print_json_head(const char *name)
{
	json_t *n = json_string(name);
	char *s = json_dumps(n, JSON_ENCODE_ANY);
	printf("{\"task\":%s,\"items\":[", s ? s : "null");
	free(s);
	json_decref(n);
}

static void diff_print_end(const struct mopts *mo, const struct sync_result *res, int rc,
			   const struct dth_err *err)
{
	uint64_t changes = 0;
	for (int a = 0; a < SYNC__COUNT; a++)
		if (a != SYNC_SKIP && a != SYNC_GONE)
			changes += res->planned[a];
	if (mo->json) {
		printf("],\"planned\":{");
		for (int a = 0; a < SYNC__COUNT; a++)
			printf("%s\"%s\":%llu", a ? "," : "", sync_action_name(a),
			       (unsigned long long)res->planned[a]);
		printf("},\"changes\":%llu", (unsigned long long)changes);
		if (rc) {
			json_t *msg = json_string(err->message);
			char *s = json_dumps(msg, JSON_ENCODE_ANY);
			printf(",\"error\":%s", s ? s : "null");
			free(s);
			json_decref(msg);
		}
		printf("}\n");
	} else if (!rc) {
		printf("%llu to copy, %llu to delete, %llu unchanged, %llu gone from the source\n",
		       (unsigned long long)(res->planned[SYNC_COPY_NEW] +
					    res->planned[SYNC_COPY_CHANGED] +
					    res->planned[SYNC_COPY_RETRY] +
					    res->planned[SYNC_COPY_MISSING]),
		       (unsigned long long)res->planned[SYNC_DELETE],
		       (unsigned long long)res->planned[SYNC_SKIP],
		       (unsigned long long)res->planned[SYNC_GONE]);
	}
}

static int do_diff(const struct mopts *mo, const char *task)
{
	struct manifest_set *set;
	struct task_record tr;
	int ec = open_set(mo, task, &set, &tr);
	if (ec)
		return ec;
	struct cli_ends e;
	ec = cli_ends_open(&e, mo->config, tr.src, tr.dst);
	if (ec) {
		cli_ends_close(&e);
		manifest_set_free(set);
		return ec;
	}
	uint32_t id;
	struct manifest *m = manifest_set_manifest(set, 0, &id);
	struct sync_opts o;
	cli_sync_opts_init(&o, &e, m, id, &tr);
	o.dry_run = true;
	/* One shard's task plans its own range only; several shards' directories
	 * together are planned over the whole listing. */
	struct buf lo = BUF_INIT, hi = BUF_INIT;
	if (manifest_set_size(set) == 1 &&
	    shard_task_bounds(m, id, &lo, &hi, &o.shard_lo, &o.shard_hi))
		fprintf(stderr, "dth: warning: the task's shard bounds cannot be read\n");
	struct diff_ctx d = {mo->json, true};
	o.on_item = diff_item;
	o.on_item_ctx = &d;
	if (mo->json)
		diff_print_json_head(tr.name);
	struct sync_result res;
	struct dth_err err;
	err_clear(&err);
	int rc = diff_run(set, &o, &res, &err);
	diff_print_end(mo, &res, rc, &err);
	cli_ends_close(&e);
	manifest_set_free(set);
	buf_release(&lo);
	buf_release(&hi);
	if (rc) {
		cli_error("%s", err.message);
		return res.unreachable ? EXIT_UNREACHABLE : EXIT_SOME_FAILED;
	}
	return EXIT_DONE;
}

/* ---- verify: HEAD every done object at the destination ---- */

struct verify_out {
	bool json;
	json_t *problems; /* with --json: the first 100,000 */
};

/* Serialised by inspect_verify. */
static void verify_problem(void *ctx, const char *key, size_t len, const char *problem)
{
	struct verify_out *v = ctx;
	if (!v->json) {
		printf("%s: %.*s\n", problem, (int)len, key);
		return;
	}
	if (json_array_size(v->problems) < 100000) {
		json_t *o = json_object();
		json_set_key(o, key, len);
		json_object_set_new(o, "problem", json_string(problem));
		json_array_append_new(v->problems, o);
	}
}

static int do_verify(const struct mopts *mo, const char *task)
{
	struct manifest_set *set;
	struct task_record tr;
	int ec = open_set(mo, task, &set, &tr);
	if (ec)
		return ec;
	struct cli_ends e;
	ec = cli_ends_open(&e, mo->config, tr.dst, NULL);
	if (ec) {
		cli_ends_close(&e);
		manifest_set_free(set);
		return ec;
	}
	struct verify_out out = {mo->json, json_array()};
	struct inspect_verify_opts vo = {e.s.src,	  e.s.src_bucket, e.s.src_prefix,
					 mo->concurrency, verify_problem, &out};
	struct inspect_verify_result v;
	memset(&v, 0, sizeof(v));
	struct dth_err err;
	struct manifest_cursor *c = manifest_set_cursor(set, NULL, &err);
	int rc = c ? inspect_verify(&vo, c, &v, &err) : (err.code ? err.code : -EIO);
	manifest_cursor_free(c);
	if (rc && manifest_set_error(set)->code)
		err = *manifest_set_error(set);
	if (mo->json)
		print_json(json_pack("{s:s, s:I, s:I, s:I, s:o}", "task", tr.name, "checked",
				     (json_int_t)v.checked, "ok", (json_int_t)v.ok, "mismatches",
				     (json_int_t)v.bad, "problems", out.problems));
	else {
		json_decref(out.problems);
		printf("%llu checked, %llu ok, %llu mismatched\n", (unsigned long long)v.checked,
		       (unsigned long long)v.ok, (unsigned long long)v.bad);
	}
	cli_ends_close(&e);
	manifest_set_free(set);
	if (rc < 0) {
		cli_error("%s", err.message);
		return EXIT_SOME_FAILED;
	}
	return v.bad ? EXIT_SOME_FAILED : EXIT_DONE;
}

/* ---- merge: the records of every --state into one new manifest ---- */

static int do_merge(const struct mopts *mo, const char *task)
{
	if (!mo->into) {
		cli_error("merge needs --into DIR, a directory for the new manifest");
		return EXIT_USAGE;
	}
	struct manifest_set *set;
	struct task_record tr;
	int ec = open_set(mo, task, &set, &tr);
	if (ec)
		return ec;
	uint64_t n = 0;
	struct dth_err err;
	int rc = manifest_set_merge_into(set, mo->into, &n, &err);
	size_t ndirs = manifest_set_size(set);
	manifest_set_free(set);
	if (mo->json)
		print_json(json_pack("{s:s, s:s, s:I, s:I, s:b}", "task", task, "into", mo->into,
				     "state_dirs", (json_int_t)ndirs, "records", (json_int_t)n,
				     "ok", rc == 0));
	else if (!rc)
		printf("%llu records of task %s from %zu state directories written to %s\n",
		       (unsigned long long)n, task, ndirs, mo->into);
	if (rc) {
		cli_error("%s", err.message);
		return rc == -ENOTEMPTY ? EXIT_USAGE : EXIT_SOME_FAILED;
	}
	return EXIT_DONE;
}

static int do_images(const struct mopts *mo, const char *task)
{
	struct manifest *m;
	uint32_t id;
	struct task_record tr;
	int ec = open_task(mo, task, &m, &id, &tr);
	if (ec)
		return ec;
	struct dth_err err;
	err_clear(&err);
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_IMAGES, id, NULL, NULL, &err);
	if (!c) {
		cli_error("reading the manifest: %s", err.message);
		manifest_free(m);
		return EXIT_SOME_FAILED;
	}
	const char *key;
	size_t klen;
	struct image_record rec;
	int rc;
	while ((rc = manifest_cursor_next_image(c, &key, &klen, &rec)) == 1) {
		const char *st = obj_status_name(rec.status);
		if (mo->json) {
			json_t *o = json_pack(
			    "{s:s%, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "ref", key, klen, "status",
			    st ? st : "?", "src_digest", rec.src_digest, "dst_digest",
			    rec.dst_digest, "media_type", rec.media_type, "size",
			    (json_int_t)rec.size, "attempts", (json_int_t)rec.attempts, "copied_at",
			    (json_int_t)rec.copied_at);
			if (o && rec.last_error[0])
				json_object_set_new(o, "last_error", json_string(rec.last_error));
			char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
			if (s)
				printf("%s\n", s);
			free(s);
			json_decref(o);
		} else {
			printf("%.*s %s %s", (int)klen, key, st ? st : "?",
			       rec.src_digest[0] ? rec.src_digest : "-");
			if (rec.status == OBJ_FAILED && rec.last_error[0])
				printf(" %s", rec.last_error);
			printf("\n");
		}
	}
	manifest_cursor_free(c);
	manifest_free(m);
	if (rc < 0) {
		cli_error("reading the manifest: %s", strerror(-rc));
		return EXIT_SOME_FAILED;
	}
	return fflush(stdout) ? EXIT_SOME_FAILED : EXIT_DONE;
}

static int dispatch(const struct mopts *mo, int nargs, char **args)
{
	if (nargs < 1) {
		manifest_usage(stderr);
		return EXIT_USAGE;
	}
	const char *sub = args[0];
	if (mo->into && strcmp(sub, "merge")) {
		cli_error("--into is for merge");
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "tasks") && nargs == 1)
		return do_tasks(mo);
	if (!strcmp(sub, "ls") && (nargs == 2 || nargs == 3))
		return do_ls(mo, args[1], nargs == 3 ? args[2] : NULL, false);
	if (!strcmp(sub, "stat") && nargs == 3)
		return do_stat(mo, args[1], args[2]);
	if (!strcmp(sub, "stats") && nargs == 2)
		return do_stats(mo, args[1]);
	if (!strcmp(sub, "diff") && nargs == 2)
		return do_diff(mo, args[1]);
	if (!strcmp(sub, "verify") && nargs == 2)
		return do_verify(mo, args[1]);
	if (!strcmp(sub, "images") && nargs == 2)
		return do_images(mo, args[1]);
	if (!strcmp(sub, "export") && nargs == 2)
		return do_ls(mo, args[1], NULL, true);
	if (!strcmp(sub, "merge") && nargs == 2)
		return do_merge(mo, args[1]);
	cli_error("manifest: unknown command or wrong arguments: %s", sub);
	manifest_usage(stderr);
	return EXIT_USAGE;
}

/* -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct mopts *mo)
{
	static const struct option lopts[] = {
	    {"state", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"status", required_argument, NULL, 'S'},
	    {"long", no_argument, NULL, 'l'},
	    {"config", required_argument, NULL, 'c'},
	    {"concurrency", required_argument, NULL, 'n'},
	    {"into", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* Options may come before or after the subcommand and its arguments. */
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "hl", lopts, NULL)) != -1) {
		uint64_t n;
		switch (c) {
		case 's':
			if (!mo->state)
				mo->state = optarg;
			mo->states[mo->nstates++] = optarg; /* at most argc of them */
			break;
		case 'j':
			mo->json = true;
			break;
		case 'S':
			mo->status = optarg;
			break;
		case 'l':
			mo->lng = true;
			break;
		case 'c':
			mo->config = optarg;
			break;
		case 'i':
			mo->into = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, &n) || n < 1 || n > 256) {
				cli_error("--concurrency takes 1 to 256");
				return EXIT_USAGE;
			}
			mo->concurrency = (unsigned)n;
			break;
		case 'h':
			manifest_usage(stdout);
			return EXIT_DONE;
		default:
			cli_error("manifest: unknown or incomplete option '%s'", argv[optind - 1]);
			manifest_usage(stderr);
			return EXIT_USAGE;
		}
	}
	return -1;
}

int cmd_manifest(int argc, char **argv)
{
	struct mopts mo;
	memset(&mo, 0, sizeof(mo));
	mo.states = xcalloc((size_t)argc + 1, sizeof(*mo.states));
	int rc = parse_opts(argc, argv, &mo);
	if (rc < 0)
		rc = dispatch(&mo, argc - optind, argv + optind);
	free(mo.states);
	return rc;
}
