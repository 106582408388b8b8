/* dth sync SRC DST: one incremental, resumable copy run of an S3 task. */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/filter.h"
#include "agent/sync.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"
#include "remote/s3.h"

/* The settings of a sync run: one table, used for parsing and for --help. */
enum opt_id {
	O_CONFIG = 256,
	O_CONCURRENCY,
	O_THRESHOLD,
	O_PART_SIZE,
	O_METADATA,
	O_NO_METADATA,
	O_STORAGE_CLASS,
	O_ACL,
	O_SSE,
	O_SSE_KMS,
	O_INCLUDE,
	O_EXCLUDE,
	O_DRY_RUN,
	O_DELETE,
	O_TASK,
	O_STATE,
	O_JSON,
	O_NO_PROGRESS,
	O_NO_SERVER_COPY,
	O_RETRIES,
	O_MAX_DELETE,
	O_MEMORY_LIMIT,
	O_PARALLEL_PARTS,
	O_HELP,
};

static const struct cli_setting settings[] = {
    {"config", 1, O_CONFIG, "FILE",
     "config file (default $DTH_CONFIG, ~/.config/dth/dth.conf, /etc/dth/dth.conf)", NULL},
    {"concurrency", 1, O_CONCURRENCY, "N", "parallel transfers and parts (default 16)", NULL},
    {"multipart-threshold", 1, O_THRESHOLD, "SIZE",
     "objects this large or larger go multipart (default 16M)", NULL},
    {"part-size", 1, O_PART_SIZE, "SIZE",
     "part size when the source layout is not repeated (default 8M)", NULL},
    {"parallel-parts", 0, O_PARALLEL_PARTS, NULL,
     "copy single-part objects of --multipart-threshold or more in parts, in parallel "
     "(their destination etag then differs from the source's)",
     NULL},
    {"memory-limit", 1, O_MEMORY_LIMIT, "SIZE",
     "object bytes held in memory at once, all workers together (default 512M); larger "
     "bodies are streamed",
     NULL},
    {"metadata", 0, O_METADATA, NULL, "copy headers, user metadata and tags (default)", NULL},
    {"no-metadata", 0, O_NO_METADATA, NULL, "do not copy metadata or tags", NULL},
    {"storage-class", 1, O_STORAGE_CLASS, "CLASS", "storage class at the destination", NULL},
    {"acl", 1, O_ACL, "ACL", "canned ACL at the destination", NULL},
    {"sse", 1, O_SSE, "AES256|aws:kms", "server-side encryption at the destination", NULL},
    {"sse-kms-key-id", 1, O_SSE_KMS, "ID", "KMS key for --sse aws:kms", NULL},
    {"include", 1, O_INCLUDE, "GLOB", "copy only keys matching GLOB (repeatable)", NULL},
    {"exclude", 1, O_EXCLUDE, "GLOB", "skip keys matching GLOB (repeatable)", NULL},
    {"dry-run", 0, O_DRY_RUN, NULL, "print what would be done, copy nothing", NULL},
    {"delete", 0, O_DELETE, NULL, "delete destination objects whose source is gone", NULL},
    {"max-delete", 1, O_MAX_DELETE, "N|P%",
     "with --delete: delete nothing when more than N objects (or P% of the destination's) "
     "would go; without it, nothing is deleted when the source lists no objects",
     NULL},
    {"task", 1, O_TASK, "NAME", "task name in the manifest (default from SRC and DST)", NULL},
    {"state", 1, O_STATE, "DIR",
     "state directory (default $DTH_STATE_DIR, /var/lib/dth as root, ~/.local/state/dth)", NULL},
    {"json", 0, O_JSON, NULL, "print one JSON object with the results", NULL},
    {"no-progress", 0, O_NO_PROGRESS, NULL, "no progress line on a terminal", NULL},
    {"no-server-side-copy", 0, O_NO_SERVER_COPY, NULL,
     "copy through this host even on one endpoint", NULL},
    {"retries", 1, O_RETRIES, "N",
     "retries of a failed request, with backoff (default 7, or the remote's retries)", NULL},
    {"help", 0, O_HELP, NULL, "this help", NULL},
};

static void sync_usage(FILE *f)
{
	fputs("usage: dth sync [options] SRC DST\n"
	      "  SRC, DST: REMOTE:BUCKET[/PREFIX] (remotes come from the config file or\n"
	      "            DTH_REMOTE_<NAME>_<KEY> variables)\n\noptions:\n",
	      f);
	cli_settings_help(f, settings, ARRAY_SIZE(settings));
	fputs("\nexit status: 0 all done, 1 some objects failed, 2 bad usage or config,\n"
	      "             3 an endpoint cannot be reached or refuses the credentials\n",
	      f);
}

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	if (stop_flag) {
		static const char msg[] = "dth: interrupted again, exiting now\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(130);
	}
	stop_flag = 1;
}

#define MAX_FAILURES_KEPT 1000

struct failures {
	pthread_mutex_t lock;
	json_t *list;
	size_t n;
	bool quiet;
};

static void on_failure(void *ctx, const char *key, size_t key_len, const char *reason)
{
	struct failures *f = ctx;
	struct buf shown = BUF_INIT;
	buf_add_printable(&shown, key, key_len);
	pthread_mutex_lock(&f->lock);
	if (!f->quiet)
		fprintf(stderr, "dth: failed: %s: %s\n", buf_str(&shown), reason);
	if (f->n < MAX_FAILURES_KEPT) {
		json_array_append_new(
		    f->list, json_pack("{s:s, s:s}", "key", buf_str(&shown), "reason", reason));
	}
	f->n++;
	pthread_mutex_unlock(&f->lock);
	buf_release(&shown);
}

struct dry_ctx {
	bool json;
};

static void on_item(void *ctx, const struct sync_item *it)
{
	struct dry_ctx *d = ctx;
	if (d->json)
		return;
	if (it->action == SYNC_SKIP)
		return;
	struct buf shown = BUF_INIT;
	buf_add_printable(&shown, it->key, it->key_len);
	printf("%s\t%s\t%llu\n", sync_action_name(it->action), buf_str(&shown),
	       (unsigned long long)it->size);
	buf_release(&shown);
}

/* "N" (objects) or "P%" (of the destination's objects, 0..100). */
static int parse_max_delete(const char *s, int64_t *n, int *pct)
{
	size_t len = strlen(s);
	uint64_t v;
	if (len > 1 && s[len - 1] == '%') {
		char num[16];
		if (len - 1 >= sizeof(num))
			return -EINVAL;
		memcpy(num, s, len - 1);
		num[len - 1] = '\0';
		if (parse_u64(num, &v))
			return -EINVAL;
		if (v > 100)
			return -ERANGE;
		*pct = (int)v;
		return 0;
	}
	if (parse_u64(s, &v))
		return -EINVAL;
	if (v > INT64_MAX)
		return -ERANGE;
	*n = (int64_t)v;
	return 0;
}

static json_t *counts_json(const uint64_t *c)
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

static void default_task_name(const char *src, const char *dst, struct buf *out)
{
	buf_adds(out, src);
	buf_adds(out, "--");
	buf_adds(out, dst);
}

int cmd_sync(int argc, char **argv)
{
	const char *config = NULL, *task_name = NULL, *state_opt = NULL;
	uint64_t concurrency = 16, threshold = 16ULL << 20, part_size = 8ULL << 20;
	bool metadata = true, dry_run = false, del = false, json = false, no_progress = false;
	bool no_server_copy = false;
	int64_t max_delete = -1;
	uint64_t memory_limit = 0;
	bool parallel_parts = false;
	int max_delete_pct = -1;
	const char *storage_class = NULL, *acl = NULL, *sse = NULL, *sse_kms = NULL;
	struct filter *filter = filter_new();
	struct dth_err err;
	err_clear(&err);
	int exitc = EXIT_USAGE;
	struct cli_ends ends;
	memset(&ends, 0, sizeof(ends));
	struct manifest *m = NULL;
	char *state_dir = NULL;
	struct buf tname = BUF_INIT;
	struct failures fails = {PTHREAD_MUTEX_INITIALIZER, json_array(), 0, false};

	struct option lopts[ARRAY_SIZE(settings) + 1];
	cli_settings_longopts(settings, ARRAY_SIZE(settings), lopts);

	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
		int prc = 0;
		switch (c) {
		case O_CONFIG:
			config = optarg;
			break;
		case O_CONCURRENCY:
			prc = parse_u64(optarg, &concurrency);
			if (!prc && (concurrency < 1 || concurrency > 1024))
				prc = -ERANGE;
			break;
		case O_THRESHOLD:
			prc = parse_size(optarg, &threshold);
			if (!prc && (threshold < (5ULL << 20) || threshold > (5ULL << 30)))
				prc = -ERANGE;
			break;
		case O_PART_SIZE:
			prc = parse_size(optarg, &part_size);
			if (!prc && (part_size < (5ULL << 20) || part_size > (5ULL << 30)))
				prc = -ERANGE;
			break;
		case O_METADATA:
			metadata = true;
			break;
		case O_PARALLEL_PARTS:
			parallel_parts = true;
			break;
		case O_MEMORY_LIMIT:
			prc = parse_size(optarg, &memory_limit);
			if (!prc && (memory_limit < (16ULL << 20) || memory_limit > (1ULL << 40)))
				prc = -ERANGE;
			break;
		case O_NO_METADATA:
			metadata = false;
			break;
		case O_STORAGE_CLASS:
			storage_class = optarg;
			break;
		case O_ACL:
			acl = optarg;
			break;
		case O_SSE:
			if (strcmp(optarg, "AES256") && strcmp(optarg, "aws:kms")) {
				cli_error("--sse takes AES256 or aws:kms, not '%s'", optarg);
				goto out;
			}
			sse = optarg;
			break;
		case O_SSE_KMS:
			sse_kms = optarg;
			break;
		case O_INCLUDE:
		case O_EXCLUDE:
			if (filter_add(filter, c == O_INCLUDE, optarg, &err)) {
				cli_error("--%s %s: %s", c == O_INCLUDE ? "include" : "exclude",
					  optarg, err.message);
				goto out;
			}
			break;
		case O_DRY_RUN:
			dry_run = true;
			break;
		case O_DELETE:
			del = true;
			break;
		case O_MAX_DELETE:
			prc = parse_max_delete(optarg, &max_delete, &max_delete_pct);
			break;
		case O_TASK:
			task_name = optarg;
			break;
		case O_STATE:
			state_opt = optarg;
			break;
		case O_JSON:
			json = true;
			break;
		case O_NO_PROGRESS:
			no_progress = true;
			break;
		case O_NO_SERVER_COPY:
			no_server_copy = true;
			break;
		case O_RETRIES: {
			uint64_t n;
			prc = parse_u64(optarg, &n);
			if (!prc && n > 100)
				prc = -ERANGE;
			if (!prc)
				cli_set_retries((int)n);
			break;
		}
		case 'h':
		case O_HELP:
			sync_usage(stdout);
			exitc = EXIT_DONE;
			goto out;
		default:
			cli_error("sync: unknown or incomplete option '%s'", argv[optind - 1]);
			sync_usage(stderr);
			goto out;
		}
		if (prc) {
			cli_error("sync: bad value '%s' for --%s%s", optarg,
				  cli_setting_name(settings, ARRAY_SIZE(settings), c),
				  prc == -ERANGE ? " (out of range)" : "");
			goto out;
		}
	}
	if (argc - optind != 2) {
		cli_error("sync needs a source and a destination (REMOTE:BUCKET[/PREFIX])");
		sync_usage(stderr);
		goto out;
	}
	if (sse_kms && (!sse || strcmp(sse, "aws:kms"))) {
		cli_error("--sse-kms-key-id needs --sse aws:kms");
		goto out;
	}
	const char *src = argv[optind], *dst = argv[optind + 1];
	if (task_name)
		buf_adds(&tname, task_name);
	else
		default_task_name(src, dst, &tname);
	struct task_record trec;
	if ((exitc = cli_task_record_new(&trec, tname.data, src, dst, "s3")))
		goto out;
	if ((max_delete >= 0 || max_delete_pct >= 0) && !del) {
		cli_error("--max-delete needs --delete");
		exitc = EXIT_USAGE;
		goto out;
	}
	exitc = cli_ends_open(&ends, config, src, dst);
	if (exitc)
		goto out;
	exitc = EXIT_USAGE;
	if (!strcmp(s3_client_endpoint(ends.src), s3_client_endpoint(ends.dst)) &&
	    !strcmp(ends.src_bucket, ends.dst_bucket)) {
		const char *a = ends.src_prefix, *b = ends.dst_prefix;
		if (str_startswith(a, b) || str_startswith(b, a)) {
			cli_error("source and destination overlap (%s and %s)", src, dst);
			goto out;
		}
	}

	state_dir = cli_state_dir(state_opt);
	m = manifest_open(state_dir, MANIFEST_RDWR, &err);
	if (!m) {
		cli_error("state directory %s: %s", state_dir, err.message);
		exitc = EXIT_USAGE;
		goto out;
	}
	uint32_t task_id;
	bool created;
	int rc = manifest_task_ensure(m, &trec, &task_id, &created);
	if (rc) {
		cli_error("task %s: %s", tname.data, strerror(-rc));
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	rc = manifest_task_find(m, tname.data, &task_id, &trec);
	if (rc) {
		cli_error("task %s: %s", tname.data, strerror(-rc));
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	if (strcmp(trec.src, src) || strcmp(trec.dst, dst)) {
		cli_error("task '%s' copies %s to %s, not %s to %s: choose another --task name",
			  tname.data, trec.src, trec.dst, src, dst);
		goto out;
	}

	/* Still "running": the last run never ended (killed, or the host went
	 * down), and what it copied in its last moments is not recorded. The
	 * destination listing then finds those copies, so they are not sent again. */
	bool after_crash = !dry_run && !strcmp(trec.state, "running");
	if (after_crash)
		log_info("task %s: the last run did not end; the destination is listed",
			 tname.data);
	struct sync_opts o;
	cli_sync_opts_init(&o, &ends, m, task_id, &trec);
	o.same_endpoint = ends.same_endpoint && !no_server_copy;
	o.merge_destination = !trec.dest_listed || del || after_crash;
	o.concurrency = (unsigned)concurrency;
	o.multipart_threshold = threshold;
	o.part_size = part_size;
	o.memory_limit = memory_limit;
	o.parallel_parts = parallel_parts;
	o.metadata = metadata;
	o.storage_class = storage_class;
	o.acl = acl;
	o.sse = sse;
	o.sse_kms_key_id = sse_kms;
	o.filter = filter_empty(filter) ? NULL : filter;
	o.dry_run = dry_run;
	o.delete_gone = del;
	o.max_delete = max_delete;
	o.max_delete_percent = max_delete_pct;
	struct dry_ctx dctx = {json};
	if (dry_run) {
		o.on_item = on_item;
		o.on_item_ctx = &dctx;
	}
	o.on_failure = on_failure;
	o.on_failure_ctx = &fails;
	o.stop = &stop_flag;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!dry_run) {
		str_copy_fit(trec.state, "running", sizeof(trec.state));
		trec.last_run_start = (int64_t)time(NULL);
		if (manifest_task_put(m, task_id, &trec))
			log_warn("could not update task %s", tname.data);
	}
	struct progress *pg = progress_start(!json && !no_progress && !dry_run);
	struct sync_result res;
	err_clear(&err);
	rc = sync_run(&o, &res, &err);
	progress_stop(pg);

	if (!dry_run) {
		trec.last_run_end = (int64_t)time(NULL);
		if (rc == 0 && !stop_flag) {
			trec.runs++;
			if (o.merge_destination)
				trec.dest_listed = 1;
			str_copy_fit(trec.state, res.failed ? "error" : "idle", sizeof(trec.state));
		} else {
			str_copy_fit(trec.state, stop_flag ? "stopped" : "error",
				     sizeof(trec.state));
		}
		if (manifest_task_put(m, task_id, &trec))
			log_warn("could not update task %s", tname.data);
	}

	uint64_t cs[S3_REQ__COUNT], cd[S3_REQ__COUNT], ct[S3_REQ__COUNT];
	s3_client_counts(ends.src, cs);
	s3_client_counts(ends.dst, cd);
	for (int k = 0; k < S3_REQ__COUNT; k++)
		ct[k] = cs[k] + (ends.dst != ends.src ? cd[k] : 0);

	if (rc) {
		if (rc == -EINTR || stop_flag)
			cli_error("interrupted: the next run resumes where this one stopped");
		else
			cli_error("%s", err.message[0] ? err.message : strerror(-rc));
		exitc = res.unreachable ? EXIT_UNREACHABLE : EXIT_SOME_FAILED;
	} else {
		exitc = res.failed ? EXIT_SOME_FAILED : EXIT_DONE;
		if (stop_flag)
			exitc = EXIT_SOME_FAILED;
	}

	if (json) {
		json_t *out = json_pack(
		    "{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:o}", "task", tname.data,
		    "transferred", (json_int_t)res.transferred, "bytes", (json_int_t)res.bytes_sent,
		    "skipped", (json_int_t)res.skipped, "failed", (json_int_t)res.failed, "deleted",
		    (json_int_t)res.deleted, "seconds", res.seconds, "requests", counts_json(ct),
		    "source_requests", counts_json(cs), "destination_requests", counts_json(cd));
		json_object_set_new(out, "dry_run", json_boolean(dry_run));
		if (dry_run) {
			json_t *pl = json_object();
			for (int a = 0; a < SYNC__COUNT; a++)
				json_object_set_new(pl, sync_action_name(a),
						    json_integer((json_int_t)res.planned[a]));
			json_object_set_new(out, "planned", pl);
		}
		json_object_set_new(out, "adopted", json_integer((json_int_t)res.adopted));
		/* bytes: body bytes this run uploaded and the destination took;
		 * object_bytes: the sizes of the objects it completed (parts an
		 * earlier run sent included); server-side copies send nothing. */
		json_object_set_new(out, "object_bytes", json_integer((json_int_t)res.bytes));
		json_object_set_new(out, "bytes_server_side",
				    json_integer((json_int_t)res.bytes_server_side));
		json_object_set_new(out, "memory_peak", json_integer((json_int_t)res.memory_peak));
		json_object_set_new(out, "deletes_refused",
				    json_integer((json_int_t)res.deletes_refused));
		json_object_set(out, "failures", fails.list);
		if (rc)
			json_object_set_new(out, "error", json_string(err.message));
		char *s = json_dumps(out, JSON_COMPACT);
		if (s) {
			puts(s);
			free(s);
		}
		json_decref(out);
	} else if (!rc || res.transferred || res.failed) {
		char b[32];
		progress_fmt_bytes(res.bytes, b);
		double rate = res.seconds > 0 ? (double)res.bytes / res.seconds : 0;
		char r[32];
		progress_fmt_bytes((uint64_t)rate, r);
		uint64_t reqs = 0;
		for (int k = 0; k < S3_REQ__COUNT; k++)
			reqs += ct[k];
		if (dry_run) {
			uint64_t would =
			    res.planned[SYNC_COPY_NEW] + res.planned[SYNC_COPY_CHANGED] +
			    res.planned[SYNC_COPY_RETRY] + res.planned[SYNC_COPY_MISSING];
			fprintf(
			    stderr,
			    "dry run of %s: would copy %llu, delete %llu, skip %llu, adopt %llu\n",
			    tname.data, (unsigned long long)would,
			    (unsigned long long)res.planned[SYNC_DELETE],
			    (unsigned long long)res.planned[SYNC_SKIP],
			    (unsigned long long)res.planned[SYNC_ADOPT]);
		} else {
			fprintf(
			    stderr,
			    "%s: %llu copied (%s), %llu unchanged, %llu failed, %llu deleted in "
			    "%.1f s (%s/s, %llu requests)\n",
			    tname.data, (unsigned long long)res.transferred, b,
			    (unsigned long long)res.skipped, (unsigned long long)res.failed,
			    (unsigned long long)res.deleted, res.seconds, r,
			    (unsigned long long)reqs);
		}
	}
out:
	json_decref(fails.list);
	filter_free(filter);
	if (m)
		manifest_free(m);
	free(state_dir);
	buf_release(&tname);
	cli_ends_close(&ends);
	return exitc;
}
