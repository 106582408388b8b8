/* dth __complete remotes|tasks|path WORD [--config FILE] [--state DIR]
 * [--type TYPE]: the candidates the shell completions (completions/) offer
 * for WORD, one per line (complete.h says which). Hidden from --help. It
 * never prints an error (stderr goes to /dev/null: a completion must not
 * write into the user's prompt), gives up after COMPLETE_TIMEOUT_S seconds
 * whatever it was doing, and exits 0 unless the usage is wrong (2). */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "agent/complete.h"
#include "remote/remotes.h"

#define COMPLETE_TIMEOUT_S   3
#define COMPLETE_CONNECT_MS  2000
#define COMPLETE_CACHE_TTL_S 60

enum { O_CONFIG = 256, O_STATE, O_TYPE };

static void on_alarm(int sig)
{
	(void)sig;
	_exit(EXIT_DONE);
}

static void emit_line(void *ctx, const char *cand)
{
	(void)ctx;
	printf("%s\n", cand);
}

int cmd_complete(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"config", required_argument, NULL, O_CONFIG},
	    {"state", required_argument, NULL, O_STATE},
	    {"type", required_argument, NULL, O_TYPE},
	    {NULL, 0, NULL, 0},
	};
	const char *config = NULL, *state = NULL, *type = NULL;
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDERR_FILENO);
		close(devnull);
	}
	signal(SIGALRM, on_alarm);
	alarm(COMPLETE_TIMEOUT_S);

	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			config = optarg;
			break;
		case O_STATE:
			state = optarg;
			break;
		case O_TYPE:
			type = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		return EXIT_USAGE;
	const char *what = argv[optind];
	const char *word = argc - optind == 2 ? argv[optind + 1] : "";
	if (strcmp(what, "remotes") && strcmp(what, "tasks") && strcmp(what, "path"))
		return EXIT_USAGE;

	struct dth_err err;
	err_clear(&err);
	struct config *cfg = config_load(config, &err);
	if (!strcmp(what, "remotes")) {
		complete_remotes(cfg, word, type, NULL, emit_line, NULL);
	} else if (!strcmp(what, "tasks")) {
		char *dir = cli_state_dir(state);
		if (complete_tasks(cfg, dir, word, emit_line, NULL) != 0) {
			/* no manifest yet: the config's tasks only */
		}
		free(dir);
	} else if (cfg) {
		char *cache = complete_cache_dir();
		if (complete_path(cfg, word, cache, COMPLETE_CACHE_TTL_S, COMPLETE_CONNECT_MS,
				  emit_line, NULL) != 0) {
			/* fewer candidates, no message */
		}
		free(cache);
	}
	config_free(cfg);
	fflush(stdout);
	alarm(0);
	return EXIT_DONE;
}
