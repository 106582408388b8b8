/* dth: subcommand dispatch. */
#include "common/compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <errno.h>

#include "cli/cli.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "remote/exec.h"
#include "remote/http.h"

void cli_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "dth: error: %s\n", msg);
}

int cli_exit_for_remote(int rc)
{
	/* A remote's first answer: "not there" (no such bucket or repository)
	 * counts as unreachable too. */
	return exec_unreachable(rc) || rc == -ENOENT ? EXIT_UNREACHABLE : EXIT_SOME_FAILED;
}

static void usage(FILE *f)
{
	fputs(
	    "usage: dth [--log-level LEVEL] COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  sync SRC DST        copy new and changed objects from SRC to DST, incrementally\n"
	    "                      (SRC and DST are REMOTE:BUCKET[/PREFIX]; see dth sync --help)\n"
	    "  manifest SUBCOMMAND inspect what was moved: tasks, ls, stat, stats, diff, verify,\n"
	    "                      export (see dth manifest --help)\n"
	    "  mount SRC DIR       browse SRC as a read-only filesystem (see dth mount --help)\n"
	    "  image SUBCOMMAND    look at container registries: inspect, tags, repos\n"
	    "                      (see dth image --help)\n"
	    "  agent               the mirroring service: runs tasks on their schedules, serves\n"
	    "                      the API and /metrics (see dth agent --help)\n"
	    "  task SUBCOMMAND     the running agent's tasks: list, show, create, update, start,\n"
	    "                      stop, run, retry, delete, history, failures, objects\n"
	    "                      (see dth task --help)\n"
	    "  config check        the configuration's problems, with file and line, and\n"
	    "                      whether each remote answers and accepts its credentials\n"
	    "  version [--json]    the version, the git revision and the libraries' versions\n"
	    "\n"
	    "options (before the command):\n"
	    "  --log-level LEVEL   messages of LEVEL and worse on stderr: error, warn (the\n"
	    "                      default), info, debug\n"
	    "  -v, --verbose       the same as --log-level info\n"
	    "  --version           print \"dth VERSION\" and exit (dth version tells more)\n"
	    "  -h, --help          this help; every command takes --help too\n",
	    f);
}

int main(int argc, char **argv)
{
	struct dth_err ferr;
	err_clear(&ferr);
	if (failpoint_init(&ferr)) {
		cli_error("%s", ferr.message);
		return EXIT_USAGE;
	}
	int i = 1;
	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--log-level") && i + 1 < argc) {
			int l = log_parse_level(argv[i + 1]);
			if (l < 0) {
				cli_error("unknown log level '%s' (error, warn, info, debug)",
					  argv[i + 1]);
				return EXIT_USAGE;
			}
			log_set_level(l);
			i += 2;
		} else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			log_set_level(LOG_INFO);
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("dth %s\n", DTH_VERSION);
			return 0;
		} else {
			cli_error("unknown option '%s'", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[i];
	if (http_global_init()) {
		cli_error("could not initialise libcurl");
		return EXIT_SOME_FAILED;
	}
	if (!strcmp(cmd, "sync"))
		return cmd_sync(argc - i, argv + i);
	if (!strcmp(cmd, "manifest"))
		return cmd_manifest(argc - i, argv + i);
	if (!strcmp(cmd, "mount"))
		return cmd_mount(argc - i, argv + i);
	if (!strcmp(cmd, "image"))
		return cmd_image(argc - i, argv + i);
	if (!strcmp(cmd, "task"))
		return cmd_task(argc - i, argv + i);
	if (!strcmp(cmd, "agent"))
		return cmd_agent(argc - i, argv + i);
	/* mount.fuse3 (fstab type fuse.dth) runs "dth SRC MOUNTPOINT -o OPTS". */
	if (strchr(cmd, ':') && i + 1 < argc)
		return cmd_mount(argc - i + 1, argv + i - 1);
	if (!strcmp(cmd, "config"))
		return cmd_config(argc - i, argv + i);
	if (!strcmp(cmd, "version"))
		return cmd_version(argc - i, argv + i);
	if (!strcmp(cmd, "__complete")) /* hidden: the shell completions' helper */
		return cmd_complete(argc - i, argv + i);
	cli_error("unknown command '%s'", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
