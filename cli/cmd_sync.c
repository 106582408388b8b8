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
#include "agent/shard.h"
#include "agent/shardplan.h"
#include "agent/sync.h"
#include "agent/taskdef.h"
#include "agent/taskrun.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"
#include "remote/s3.h"

/* The flags of dth sync besides the task's settings (taskdef.h's table). */
enum opt_id {
	O_CONFIG = 256,
	O_DRY_RUN,
	O_TASK,
	O_STATE,
	O_JSON,
	O_NO_PROGRESS,
	O_MAKE_PLAN,
	O_HELP,
	O_TASKDEF = 512, /* taskdef_cli_options values start here */
};

static const struct cli_setting settings[] = {
    {"config", 1, O_CONFIG, "FILE",
     "config file (default $DTH_CONFIG, ~/.config/dth/dth.conf, /etc/dth/dth.conf)", NULL},
    {"dry-run", 0, O_DRY_RUN, NULL, "print what would be done, copy nothing", NULL},
    {"task", 1, O_TASK, "NAME", "task name in the manifest (default from SRC and DST)", NULL},
    {"state", 1, O_STATE, "DIR",
     "state directory (default $DTH_STATE_DIR, /var/lib/dth as root, ~/.local/state/dth)", NULL},
    {"json", 0, O_JSON, NULL, "print one JSON object with the results", NULL},
    {"no-progress", 0, O_NO_PROGRESS, NULL, "no progress line on a terminal", NULL},
    {"make-shard-plan", 1, O_MAKE_PLAN, "N",
     "copy nothing: write the cut keys of N shards to the --shard-plan FILE, from the task's "
     "sample of its last listing when this state directory has one, else from one listing of "
     "SRC",
     NULL},
    {"help", 0, O_HELP, NULL, "this help", NULL},
};

static void sync_usage(FILE *f)
{
	fputs("usage: dth sync [options] SRC DST\n"
	      "  SRC, DST: REMOTE:BUCKET[/PREFIX] (remotes come from the config file or\n"
	      "            DTH_REMOTE_<NAME>_<KEY> variables)\n"
	      "  SRC may also be a local directory (/path, ./path): its files are copied\n"
	      "            under DST's prefix, keys relative to the directory\n\noptions:\n",
	      f);
	cli_settings_help(f, settings, ARRAY_SIZE(settings));
	fputs("\nthe task's settings (also the keys of a [task NAME] section):\n", f);
	taskdef_cli_help(f, TASKDEF_S3);
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
	bool quiet; /* failures not printed */
	bool json;  /* dry-run items not printed */
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

static void on_item(void *ctx, const struct sync_item *it)
{
	struct failures *f = ctx;
	if (f->json)
		return;
	if (it->action == SYNC_SKIP)
		return;
	struct buf shown = BUF_INIT;
	buf_add_printable(&shown, it->key, it->key_len);
	printf("%s\t%s\t%llu\n", sync_action_name(it->action), buf_str(&shown),
	       (unsigned long long)it->size);
	buf_release(&shown);
}

/* SRC--DST, and " [shard I/N]" for a shard (each shard its own task, so
 * shards may share a state directory). */
static int default_task_name(const struct taskdef *def, struct buf *out, struct dth_err *err)
{
	buf_adds(out, def->source);
	buf_adds(out, "--");
	buf_adds(out, def->destination);
	if (!def->shard)
		return 0;
	struct shard_spec sp;
	int rc = shard_spec_parse(def->shard, NULL, &sp, err);
	if (!rc)
		buf_addf(out, " [shard %u/%u]", sp.index, sp.count);
	return rc;
}

/* What the command line gives besides the task's settings. */
struct sync_args {
	const char *config, *task, *state;
	bool dry_run, json, no_progress;
	unsigned make_plan; /* --make-shard-plan N (0: not given) */
};

/* Parse argv into a and def (initialised by the caller). EXIT_DONE with
 * def->source and destination set, -1 after --help, or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct sync_args *a, struct taskdef *def)
{
	size_t nt = taskdef_cli_count(TASKDEF_S3), no = ARRAY_SIZE(settings);
	struct option *lopts = xcalloc(no + nt + 1, sizeof(*lopts));
	cli_settings_longopts(settings, no, lopts);
	taskdef_cli_options(TASKDEF_S3, O_TASKDEF, lopts + no);
	struct dth_err err;
	int rc = EXIT_USAGE, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			a->config = optarg;
			continue;
		case O_DRY_RUN:
			a->dry_run = true;
			continue;
		case O_TASK:
			a->task = optarg;
			continue;
		case O_STATE:
			a->state = optarg;
			continue;
		case O_JSON:
			a->json = true;
			continue;
		case O_NO_PROGRESS:
			a->no_progress = true;
			continue;
		case O_MAKE_PLAN: {
			uint64_t n;
			if (parse_u64(optarg, &n) || n < 1 || n > SHARD_COUNT_MAX) {
				cli_error("sync: --make-shard-plan: N is 1 to %d", SHARD_COUNT_MAX);
				goto out;
			}
			a->make_plan = (unsigned)n;
			continue;
		}
		case 'h':
		case O_HELP:
			sync_usage(stdout);
			rc = -1;
			goto out;
		}
		int tr = taskdef_cli_apply(def, O_TASKDEF, c, optarg, &err);
		if (tr < 0) {
			cli_error("sync: %s", err.message);
			goto out;
		}
		if (tr == 0) {
			cli_error("sync: unknown or incomplete option '%s'", argv[optind - 1]);
			sync_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 2) {
		cli_error("sync needs a source and a destination (REMOTE:BUCKET[/PREFIX])");
		sync_usage(stderr);
		goto out;
	}
	/* A local directory is kept as its absolute path: the task is the same
	 * from any working directory. */
	if (remote_spec_is_local(argv[optind])) {
		def->source = realpath(argv[optind], NULL);
		if (!def->source) {
			cli_error("sync: source %s: %s", argv[optind], strerror(errno));
			goto out;
		}
	} else {
		def->source = xstrdup(argv[optind]);
	}
	def->destination = xstrdup(argv[optind + 1]);
	rc = EXIT_DONE;
out:
	free(lopts);
	return rc;
}

static void print_summary(const struct sync_args *a, const struct taskrun_result *r)
{
	const json_t *rep = r->report;
#define NUM(k) ((unsigned long long)json_integer_value(json_object_get(rep, k)))
	if (a->dry_run) {
		const json_t *pl = json_object_get(rep, "planned");
#define PL(k) ((unsigned long long)json_integer_value(json_object_get(pl, k)))
		fprintf(stderr,
			"dry run of %s: would copy %llu, delete %llu, skip %llu, adopt %llu\n",
			json_string_value(json_object_get(rep, "task")),
			PL("new") + PL("changed") + PL("retry") + PL("missing"), PL("delete"),
			PL("skip"), PL("adopt"));
#undef PL
		return;
	}
	char b[32], rate[32];
	progress_fmt_bytes(r->object_bytes, b);
	progress_fmt_bytes(r->seconds > 0 ? (uint64_t)((double)r->object_bytes / r->seconds) : 0,
			   rate);
	fprintf(stderr,
		"%s: %llu copied (%s), %llu unchanged, %llu failed, %llu deleted in %.1f s (%s/s, "
		"%llu requests)\n",
		json_string_value(json_object_get(rep, "task")), NUM("transferred"), b,
		NUM("skipped"), NUM("failed"), NUM("deleted"), r->seconds, rate,
		(unsigned long long)r->requests);
#undef NUM
}

static void print_json(struct failures *fails, const struct taskrun_result *r)
{
	json_object_set(r->report, "failures", fails->list);
	char *s = json_dumps(r->report, JSON_COMPACT);
	if (s) {
		puts(s);
		free(s);
	}
}

/* Run the task defined by def (checked) and print the results. */
static int run(const struct sync_args *a, struct taskdef *def, struct config *cfg,
	       struct manifest *m)
{
	struct failures fails = {PTHREAD_MUTEX_INITIALIZER, json_array(), 0, false, a->json};
	struct taskrun_opts o = {
	    .def = def,
	    .cfg = cfg,
	    .manifest = m,
	    .dry_run = a->dry_run,
	    .stop = &stop_flag,
	    .on_failure = on_failure,
	    .on_item = a->dry_run ? on_item : NULL,
	    .hook_ctx = &fails,
	};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct progress *pg = progress_start(!a->json && !a->no_progress && !a->dry_run);
	struct taskrun_result r;
	int exitc = taskrun_run(&o, &r);
	progress_stop(pg);
	if (r.error[0])
		cli_error("%s", r.error);
	if (a->json && r.report)
		print_json(&fails, &r);
	else if (r.report && (r.exit == EXIT_DONE || r.transferred || r.failed))
		print_summary(a, &r);
	taskrun_result_release(&r);
	json_decref(fails.list);
	return exitc;
}

/* --make-shard-plan N: write the plan to def->shard_plan. */
static int make_plan(const struct sync_args *a, struct taskdef *def, const char *state_dir)
{
	struct config *cfg = NULL;
	struct dth_err err;
	err_clear(&err);
	int exitc = cli_config_load(a->config, &cfg);
	if (exitc)
		return exitc;
	struct manifest *m = manifest_open(state_dir, MANIFEST_RDONLY, &err);
	struct shardplan_info info;
	err_clear(&err);
	int rc = shardplan_make(def, cfg, m, a->make_plan, def->shard_plan, &info, &err);
	if (rc) {
		cli_error("sync: --make-shard-plan: %s", err.message);
		exitc = rc == -EINVAL ? EXIT_USAGE : EXIT_SOME_FAILED;
	} else if (a->json) {
		json_t *o = json_pack("{s:s, s:i, s:s, s:I, s:I}", "plan", def->shard_plan,
				      "shards", (int)a->make_plan, "from", info.from, "keys",
				      (json_int_t)info.keys, "lists", (json_int_t)info.lists);
		char *t = json_dumps(o, JSON_COMPACT);
		if (t)
			puts(t);
		free(t);
		json_decref(o);
	} else {
		fprintf(stderr, "wrote a plan of %u shards to %s (from the %s of %llu keys)\n",
			a->make_plan, def->shard_plan, info.from, (unsigned long long)info.keys);
	}
	if (m)
		manifest_free(m);
	config_free(cfg);
	return exitc;
}

int cmd_sync(int argc, char **argv)
{
	struct sync_args a = {0};
	struct taskdef def;
	struct config *cfg = NULL;
	struct manifest *m = NULL;
	char *state_dir = NULL;
	struct dth_err err;
	err_clear(&err);
	taskdef_init(&def, TASKDEF_S3);
	int exitc = parse_args(argc, argv, &a, &def);
	if (exitc) {
		exitc = exitc < 0 ? EXIT_DONE : exitc;
		goto out;
	}
	struct buf tname = BUF_INIT;
	exitc = EXIT_USAGE;
	if (a.task) {
		buf_adds(&tname, a.task);
	} else if (default_task_name(&def, &tname, &err)) {
		buf_release(&tname);
		cli_error("sync: %s", err.message);
		goto out;
	}
	def.name = buf_detach(&tname, NULL);
	if (a.make_plan) {
		if (!def.shard_plan || def.shard) {
			cli_error(
			    "sync: --make-shard-plan N takes --shard-plan FILE (where to write "
			    "the plan) and no --shard");
			goto out;
		}
		char *plan = def.shard_plan;
		def.shard_plan = NULL;
		int crc = taskdef_check(&def, true, &err, NULL);
		def.shard_plan = plan;
		if (crc) {
			cli_error("%s", err.message);
			goto out;
		}
		state_dir = cli_state_dir(a.state);
		exitc = make_plan(&a, &def, state_dir);
		goto out;
	}
	if (taskdef_check(&def, true, &err, NULL)) {
		cli_error("%s", err.message);
		goto out;
	}
	struct task_record probe;
	if (taskrun_record_new(&def, &probe, &err)) {
		cli_error("%s", err.message);
		goto out;
	}
	if ((exitc = cli_config_load(a.config, &cfg)))
		goto out;
	state_dir = cli_state_dir(a.state);
	m = manifest_open(state_dir, MANIFEST_RDWR, &err);
	if (!m) {
		cli_error("state directory %s: %s", state_dir, err.message);
		exitc = EXIT_USAGE;
		goto out;
	}
	exitc = run(&a, &def, cfg, m);
out:
	if (m)
		manifest_free(m);
	config_free(cfg);
	free(state_dir);
	taskdef_release(&def);
	return exitc;
}
