/* The pieces of `dth task` (the agent's API client) that need no agent:
 * where the agent is, what its errors mean for the user and the exit status,
 * how its answers are shown on a terminal, and how a task's settings are
 * read from KEY=VALUE arguments and from a task file. cmd_task.c does the
 * talking. */
#ifndef DTH_AGENTC_H
#define DTH_AGENTC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#define AGENTC_DEFAULT_ADDR "127.0.0.1:8391"

/* How to reach the agent. All strings malloc'd, released by
 * agentc_addr_release. */
struct agentc_addr {
	char *base;	   /* URL prefix without a trailing '/': "http://127.0.0.1:8391" */
	char *unix_socket; /* the socket to connect to (base is then "http://localhost"), or NULL */
	char *shown;	   /* the address as given, for messages */
};

/* Parse an agent address: "HOST:PORT", "[V6]:PORT", "http://HOST:PORT",
 * "https://HOST:PORT" or "unix:/PATH". A listen address on every interface
 * (0.0.0.0, [::]) is reached on the loopback address. 0 or -EINVAL (err
 * says why). */
int agentc_addr_parse(const char *s, struct agentc_addr *out, struct dth_err *err) WUR;
void agentc_addr_release(struct agentc_addr *a);

/* The [agent] keys of the config file the client uses (malloc'd or NULL). */
struct agentc_config {
	char *listen;	 /* listen = ADDR */
	char *tls_cert;	 /* tls_cert = FILE: the agent speaks https; the client trusts it */
	char *state_dir; /* state_dir = DIR: where agent.token is */
};
/* Read them from the config file: path when given (must exist), else
 * $DTH_CONFIG (must exist), else ~/.config/dth/dth.conf, else
 * /etc/dth/dth.conf (either may be absent, or unreadable: then nothing is
 * read). Other sections are not looked at. 0, or an errno with err set. */
int agentc_config_read(const char *path, struct agentc_config *out, struct dth_err *err) WUR;
void agentc_config_release(struct agentc_config *c);

/* An answer of the API that is not 2xx. Appends the message to show (the
 * API's error as "FIELD: MESSAGE" or "MESSAGE"; "the agent answered HTTP
 * STATUS" when the body is not an API error) and returns the exit status:
 * EXIT_UNREACHABLE for 401 (the caller says the token was refused),
 * EXIT_USAGE for a request the agent found wrong (400, 404, 405, 413, 415,
 * and 409 read_only: a task of the config file), EXIT_SOME_FAILED for the
 * rest (409 conflict, 5xx). */
int agentc_error(long status, const char *body, size_t len, struct buf *msg);

/* KEY=VALUE into obj as a JSON string (the agent parses it with its settings
 * table). 0 or -EINVAL (no '=', an empty key, or not UTF-8). */
int agentc_kv(const char *arg, json_t *obj, struct dth_err *err) WUR;
/* The keys of a task file's [task NAME] section into obj as JSON strings.
 * With name NULL the file must hold exactly one [task ...] section; *name_out
 * (malloc'd, may be NULL) gets the name of the section used. Keys outside a
 * [task ...] section, or another section kind, are -EINVAL. origin names the
 * file in messages. */
int agentc_task_file(const char *text, size_t len, const char *origin, const char *name,
		     json_t *obj, char **name_out, struct dth_err *err) WUR;

/* Human formats. now is the current UNIX time (a parameter for tests). */
/* "45s", "3m12s", "2h05m", "3d04h". */
void agentc_fmt_duration(int64_t seconds, char out[32]);
/* "2024-05-01 12:00:00" (UTC); "-" for 0. */
void agentc_fmt_time(int64_t t, char out[32]);
/* "1.5 GiB", "512 B". */
void agentc_fmt_bytes(uint64_t n, char out[32]);

/* Aligned tables of API answers, for a terminal:
 * tasks: NAME TYPE STATE SOURCE → DESTINATION PROGRESS LAST-RUN NEXT-RUN
 * runs: SEQ START DURATION RESULT COPIED BYTES FAILED
 * objects: STATUS SIZE ATTEMPTS KEY ERROR
 * images: STATUS REF SRC-DIGEST ERROR
 * header: print the header line. Missing members print as "-". */
void agentc_print_tasks(FILE *f, const json_t *tasks, int64_t now);
void agentc_print_runs(FILE *f, const json_t *runs, int64_t now);
void agentc_print_objects(FILE *f, const json_t *objects, bool header);
void agentc_print_images(FILE *f, const json_t *images, bool header);
/* One task, one "label: value" line each, then its settings. */
void agentc_print_task(FILE *f, const json_t *task, int64_t now);

#endif
