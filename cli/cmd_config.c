/* dth config check [--config FILE] [--remote NAME] [--json] [--offline]:
 * every problem of the config file (and of the task definitions it and
 * tasks.d hold) with its file and line, then one line per remote saying
 * whether it answers and accepts its credentials (probe.h). Exit status as
 * dth sync's: 0 all good, 2 a problem in the configuration, 3 a remote that
 * cannot be reached or refuses the credentials, 1 another failure. */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/taskset.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "remote/probe.h"
#include "remote/remotes.h"

enum { O_CONFIG = 256, O_REMOTE, O_JSON, O_OFFLINE, O_HELP };

static const struct cli_setting settings[] = {
    {"config", 1, O_CONFIG, "FILE",
     "config file (default $DTH_CONFIG, ~/.config/dth/dth.conf, /etc/dth/dth.conf)", NULL},
    {"remote", 1, O_REMOTE, "NAME", "check this remote only (repeatable)", NULL},
    {"json", 0, O_JSON, NULL, "one JSON document: the problems and each remote's outcome", NULL},
    {"offline", 0, O_OFFLINE, NULL, "check the file only: no request to any remote", NULL},
    {"help", 0, O_HELP, NULL, "this help", NULL},
};

static void config_usage(FILE *f)
{
	fputs("usage: dth config check [options]\n"
	      "  reports each problem of the configuration with its file and line: unknown\n"
	      "  sections and keys, bad values, a file holding secrets that others can\n"
	      "  read, [agent] settings, broken task definitions (in the file and in\n"
	      "  tasks.d); then asks each remote whether it answers and accepts its\n"
	      "  credentials with one cheap call: s3 a signed HeadBucket of a bucket nobody\n"
	      "  has, registry GET /v2/ through its login, ecr GetAuthorizationToken.\n"
	      "  No secret is printed.\n\noptions:\n",
	      f);
	cli_settings_help(f, settings, ARRAY_SIZE(settings));
	fputs("\nexit status: 0 all good, 1 another failure, 2 a problem in the configuration,\n"
	      "             3 a remote cannot be reached or refuses the credentials\n",
	      f);
}

struct check {
	bool json;
	json_t *problems; /* strings */
};

static void on_problem(void *ctx, const char *msg)
{
	struct check *c = ctx;
	json_array_append_new(c->problems, json_string(msg));
	if (!c->json)
		printf("problem: %s\n", msg);
}

/* The task definitions of the file and of tasks.d: a broken one is a problem. */
static void check_tasks(struct check *c, const struct config *cfg, size_t *n_tasks)
{
	struct taskset ts;
	taskset_init(&ts);
	taskset_add_config(&ts, cfg);
	char *dir = taskset_dropin_dir(config_path(cfg));
	struct dth_err err;
	err_clear(&err);
	if (dir && taskset_add_dropin(&ts, dir, &err))
		on_problem(c, err.message);
	for (size_t i = 0; i < ts.n; i++)
		if (ts.v[i].error)
			on_problem(c, ts.v[i].error);
	*n_tasks = ts.n;
	free(dir);
	taskset_release(&ts);
}

static bool wanted(const char *name, char **only, size_t n_only)
{
	if (!n_only)
		return true;
	for (size_t i = 0; i < n_only; i++)
		if (!strcmp(only[i], name))
			return true;
	return false;
}

/* Probe the remotes; the worst exit status. */
static int probe_all(struct check *c, const struct config *cfg, char **only, size_t n_only,
		     json_t *out)
{
	int worst = EXIT_DONE;
	for (size_t i = 0; i < config_remote_count(cfg); i++) {
		const struct remote_def *r = config_remote_at(cfg, i);
		if (!wanted(r->name, only, n_only))
			continue;
		struct probe_result pr;
		probe_remote(r, &pr);
		const char *where = r->url ? r->url : r->endpoint ? r->endpoint : "";
		json_array_append_new(
		    out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:s?}", "name", r->name, "type",
				   r->type ? r->type : "s3", "endpoint", where, "call",
				   pr.call ? pr.call : "", "outcome",
				   probe_outcome_name(pr.outcome), "seconds", pr.seconds, "error",
				   pr.outcome == PROBE_OK ? NULL : pr.err.message));
		if (!c->json) {
			if (pr.outcome == PROBE_OK)
				printf("remote %s (%s, %s): ok (%s, %.2f s)\n", r->name,
				       r->type ? r->type : "s3", where, pr.call, pr.seconds);
			else
				printf("remote %s (%s, %s): %s: %s\n", r->name,
				       r->type ? r->type : "s3", where,
				       probe_outcome_name(pr.outcome), pr.err.message);
		}
		int st = pr.outcome == PROBE_OK	     ? EXIT_DONE
			 : pr.outcome == PROBE_ERROR ? EXIT_SOME_FAILED
						     : EXIT_UNREACHABLE;
		if (st == EXIT_UNREACHABLE || (st == EXIT_SOME_FAILED && worst == EXIT_DONE))
			worst = st;
	}
	return worst;
}

struct config_args {
	const char *config;
	char *only[64];
	size_t n_only;
	bool json, offline;
};

static int parse_args(int argc, char **argv, struct config_args *a)
{
	struct option lopts[ARRAY_SIZE(settings) + 1];
	cli_settings_longopts(settings, ARRAY_SIZE(settings), lopts);
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			a->config = optarg;
			break;
		case O_REMOTE:
			if (a->n_only == ARRAY_SIZE(a->only)) {
				cli_error("config check: at most 64 --remote");
				return EXIT_USAGE;
			}
			a->only[a->n_only++] = optarg;
			break;
		case O_JSON:
			a->json = true;
			break;
		case O_OFFLINE:
			a->offline = true;
			break;
		case 'h':
		case O_HELP:
			config_usage(stdout);
			return -1;
		default:
			cli_error("config check: unknown or incomplete option '%s'",
				  argv[optind - 1]);
			config_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("config check takes no arguments ('%s')", argv[optind]);
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

static int check_main(const struct config_args *a)
{
	struct check c = {a->json, json_array()};
	json_t *remotes = json_array();
	struct config *cfg = NULL;
	struct dth_err err;
	err_clear(&err);
	int n = config_check(a->config, on_problem, &c, &cfg, &err);
	int rc = EXIT_DONE;
	size_t n_tasks = 0;
	if (n < 0) {
		on_problem(&c, err.message);
		rc = EXIT_USAGE;
	} else {
		cli_agent_config_problems(cfg, on_problem, &c);
		check_tasks(&c, cfg, &n_tasks);
		for (size_t i = 0; i < a->n_only; i++)
			if (!config_remote(cfg, a->only[i])) {
				struct buf m = BUF_INIT;
				buf_addf(&m, "--remote %s: no such remote", a->only[i]);
				on_problem(&c, m.data);
				buf_release(&m);
			}
		rc = json_array_size(c.problems) ? EXIT_USAGE : EXIT_DONE;
		const char *path = config_path(cfg);
		if (!a->json)
			printf("config %s: %s (%zu remotes, %zu tasks)\n", path ? path : "(none)",
			       rc ? "problems above" : "ok", config_remote_count(cfg), n_tasks);
		if (!rc && !a->offline) /* remotes only from a sound file */
			rc = probe_all(&c, cfg, (char **)a->only, a->n_only, remotes);
	}
	if (a->json) {
		json_t *doc =
		    json_pack("{s:s?, s:O, s:O, s:i}", "config", cfg ? config_path(cfg) : a->config,
			      "problems", c.problems, "remotes", remotes, "exit", rc);
		char *s = json_dumps(doc, JSON_COMPACT);
		puts(s);
		free(s);
		json_decref(doc);
	}
	json_decref(c.problems);
	json_decref(remotes);
	config_free(cfg);
	return rc;
}

int cmd_config(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			config_usage(stdout);
			return EXIT_DONE;
		}
		cli_error("config: expected 'check'");
		config_usage(stderr);
		return EXIT_USAGE;
	}
	struct config_args a;
	memset(&a, 0, sizeof(a));
	int rc = parse_args(argc - 1, argv + 1, &a);
	if (rc)
		return rc < 0 ? EXIT_DONE : rc;
	return check_main(&a);
}
