/* Shared pieces of the dth command line: exit codes, subcommands, helpers. */
#ifndef DTH_CLI_H
#define DTH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "common/err.h"

enum {
	EXIT_DONE = 0,	      /* everything done */
	EXIT_SOME_FAILED = 1, /* some objects failed after retries (or a run error) */
	EXIT_USAGE = 2,	      /* bad usage or config; nothing touched */
	EXIT_UNREACHABLE = 3, /* an endpoint cannot be reached or refuses the credentials */
};

int cmd_sync(int argc, char **argv);
int cmd_manifest(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_task(int argc, char **argv);
int cmd_agent(int argc, char **argv);
/* The problems of the config's [agent] section (unknown keys, bad values),
 * each given to problem with its file and line; their number. */
struct config;
unsigned cli_agent_config_problems(const struct config *cfg,
				   void (*problem)(void *ctx, const char *msg), void *ctx);
/* dth config check ... */
int cmd_config(int argc, char **argv);
/* dth version [--json] */
int cmd_version(int argc, char **argv);
/* dth __complete remotes|tasks|path WORD ...: for the shell completions */
int cmd_complete(int argc, char **argv);

/* One subcommand's settings, in one table used for getopt_long, --help and
 * (dth mount) the -o keys. */
struct cli_setting {
	const char *name; /* long option */
	int has_arg;
	int id;		 /* getopt value, >= 256 */
	const char *arg; /* placeholder for --help; NULL for a flag */
	const char *help;
	const char *okey; /* dth mount: the -o key; NULL for none */
};
struct option;
/* out holds n + 1 entries (the last is zeroed). */
void cli_settings_longopts(const struct cli_setting *s, size_t n, struct option *out);
/* One "  --name ARG   help" line per setting. */
void cli_settings_help(FILE *f, const struct cli_setting *s, size_t n);
/* The long name of the setting with getopt value id, "?" if none. */
const char *cli_setting_name(const struct cli_setting *s, size_t n, int id);

/* Print "dth: error: msg" (and the remote detail) on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exit status for an error from reaching a remote. */
int cli_exit_for_remote(int rc);

/* Live progress line on a terminal (stderr); no-op when stderr is not a tty. */
struct progress;
struct progress *progress_start(bool enabled);
void progress_stop(struct progress *p);
/* Same with a line of one's own: draw_fn(ctx, seconds since the start) prints
 * it on stderr (no newline, the line is cleared before) from the progress
 * thread a few times a second; progress_stop then clears the line (no final
 * line is left). */
struct progress *progress_start_with(bool enabled, void (*draw_fn)(void *ctx, double elapsed),
				     void *ctx);
/* Around a message printed on stderr while p runs (p may be NULL): suspend
 * clears the line and holds off redraws until resume. */
void progress_suspend(struct progress *p);
void progress_resume(struct progress *p);
/* "1.5 GiB" style; out holds 32 bytes. */
void progress_fmt_bytes(uint64_t n, char out[32]);

#endif

/* The two ends of an S3 task, opened from the config file (loaded here) and
 * "REMOTE:BUCKET[/PREFIX]" specs (agent/ends.h). */
#include "agent/ends.h"
struct config;
struct cli_ends {
	struct config *cfg;
	struct s3_ends s;
};
/* Returns EXIT_DONE, or EXIT_USAGE after printing why (config, spec or remote
 * errors). dst may be NULL (then only the source is opened). */
int cli_ends_open(struct cli_ends *e, const char *config_path, const char *src, const char *dst);
void cli_ends_close(struct cli_ends *e);
/* Fill o for a run of task (id, rec) between the ends, with the defaults of
 * dth sync (16 workers, 16 MiB threshold, 8 MiB parts, metadata copied). */
struct sync_opts;
struct manifest;
struct task_record;
void cli_sync_opts_init(struct sync_opts *o, const struct cli_ends *e, struct manifest *m,
			uint32_t id, const struct task_record *rec);
/* Retries for every remote opened after this call (-1: each remote's own). */
void cli_set_retries(int retries);
/* Open just the config (for commands that need no remote); EXIT_USAGE on error. */
int cli_config_load(const char *config_path, struct config **out);
/* The state directory to use: opt if given, else the default. malloc'd. */
char *cli_state_dir(const char *opt);
