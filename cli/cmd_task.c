/* dth task: the agent's tasks through its HTTP API (list, show, create,
 * update, start, stop, run, delete, retry, history, failures, objects,
 * images). The agent is found from --agent, $DTH_AGENT, the [agent] section
 * of the config file, or 127.0.0.1:8391; the token from --token-file,
 * $DTH_AGENT_TOKEN_FILE, or STATE_DIR/agent.token (never from the command
 * line). On a terminal the answers are tables; otherwise, or with --json,
 * the API's JSON as it came (paged lists are joined into one document). */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/token.h"
#include "cli/agentc.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/secret.h"
#include "common/uri.h"
#include "common/util.h"
#include "remote/http.h"

#define PAGE	      500
#define HISTORY_LIMIT 20
#define TABLE_ROWS    5000
#define TASK_FILE_MAX (1024u * 1024)
#define ANSWER_MAX    (256u * 1024 * 1024)

struct topts {
	const char *agent;
	const char *token_file;
	const char *state;
	const char *config;
	const char *from;
	const char *status;
	const char *ca_file;
	uint64_t limit;
	bool limit_set;
	bool json;
	bool purge;
};

struct client {
	struct agentc_addr addr;
	struct http_engine *http;
	struct token *token;
	char *auth; /* "Bearer ..." in secret memory */
	bool table; /* print tables (a terminal and no --json) */
};

static void task_usage(FILE *f)
{
	fputs(
	    "usage: dth task [OPTIONS] COMMAND [ARGS]\n"
	    "\n"
	    "commands (the agent must be running):\n"
	    "  list                         every task: state, progress, last and next run\n"
	    "  show NAME                    one task: its state, counts and settings\n"
	    "  create NAME KEY=VALUE...     a new task (type, source, destination, schedule,\n"
	    "                               and any setting of dth sync / dth image sync)\n"
	    "  create --from FILE [NAME]    the same from a task file ([task NAME] section)\n"
	    "  update NAME KEY=VALUE...     change those settings, keep the others\n"
	    "                               (--from FILE: replace the whole definition)\n"
	    "  start NAME | stop NAME       let it run on its schedule / stop it (in-flight\n"
	    "                               parts finish or are checkpointed)\n"
	    "  run NAME                     run it now\n"
	    "  retry NAME                   run again only the objects that failed\n"
	    "  delete NAME [--purge]        remove it (--purge: its manifest records too)\n"
	    "  history NAME [--limit N]     its last runs (default 20)\n"
	    "  failures NAME [--limit N]    its failed objects and why\n"
	    "  objects NAME --status S [--limit N]\n"
	    "                               its objects in status S (pending, copying, done,\n"
	    "                               failed, skipped, deleted)\n"
	    "  images NAME [--limit N]      an image task's tags\n"
	    "  webhook NAME                 the URL, with the task's secret, that S3 event or\n"
	    "                               registry notifications are POSTed to (events=webhook;\n"
	    "                               or sign the body: X-Dth-Signature: sha256=HMAC)\n"
	    "  notify-secret NAME           the secret its notifications are signed with\n"
	    "                               (X-Dth-Signature: sha256=HMAC-SHA256 of the body)\n"
	    "\n"
	    "options:\n"
	    "  --agent ADDR        where the agent listens: HOST:PORT, https://HOST:PORT or\n"
	    "                      unix:/PATH (default: $DTH_AGENT, else listen of the\n"
	    "                      config's [agent] section, else 127.0.0.1:8391)\n"
	    "  --token-file FILE   the agent's token (default: $DTH_AGENT_TOKEN_FILE, else\n"
	    "                      STATE_DIR/agent.token)\n"
	    "  --state DIR         the agent's state directory (for its token)\n"
	    "  --config FILE       the config file to find the agent in\n"
	    "  --ca-file FILE      trust this CA for an https agent\n"
	    "  --json              print the API's JSON (the default when not on a terminal)\n"
	    "  --limit N           at most N entries (history, failures, objects, images)\n"
	    "\n"
	    "exit status: 0 done, 1 the agent could not do it, 2 bad usage or a request the\n"
	    "agent refused (no such task, a bad setting), 3 the agent is unreachable or\n"
	    "refused the token\n",
	    f);
}

/* ---- talking to the agent ---- */

static void client_release(struct client *c)
{
	agentc_addr_release(&c->addr);
	http_engine_free(c->http);
	token_free(c->token);
	if (c->auth)
		secret_free(c->auth);
	memset(c, 0, sizeof(*c));
}

static char *token_file_path(const struct topts *o, const struct agentc_config *cfg)
{
	if (o->token_file)
		return xstrdup(o->token_file);
	const char *env = getenv("DTH_AGENT_TOKEN_FILE");
	if (env && *env)
		return xstrdup(env);
	char *dir = cli_state_dir(o->state ? o->state : cfg->state_dir);
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s/%s", dir, TOKEN_FILE);
	free(dir);
	return buf_detach(&b, NULL);
}

static int client_open(struct client *c, const struct topts *o)
{
	memset(c, 0, sizeof(*c));
	struct dth_err err;
	err_clear(&err);
	/* TODO(lead): once remote/remotes.c reads [agent], take listen,
	 * tls_cert and state_dir from the loaded config instead of
	 * agentc_config_read's own reading of that one section. */
	struct agentc_config cfg;
	if (agentc_config_read(o->config, &cfg, &err) != 0) {
		cli_error("%s", err.message);
		return EXIT_USAGE;
	}
	const char *env = getenv("DTH_AGENT");
	const char *addr = o->agent		       ? o->agent
			   : env && *env	       ? env
			   : cfg.listen && *cfg.listen ? cfg.listen
						       : AGENTC_DEFAULT_ADDR;
	int rc = EXIT_USAGE;
	char *tpath = NULL;
	if (agentc_addr_parse(addr, &c->addr, &err) != 0) {
		cli_error("%s", err.message);
		goto out;
	}
	/* The config's agent speaks https when it has a certificate. */
	bool from_config = addr == cfg.listen;
	if (from_config && cfg.tls_cert && !c->addr.unix_socket &&
	    str_startswith(c->addr.base, "http://")) {
		struct buf b = BUF_INIT;
		buf_addf(&b, "https://%s", c->addr.base + 7);
		free(c->addr.base);
		c->addr.base = buf_detach(&b, NULL);
	}
	tpath = token_file_path(o, &cfg);
	rc = token_load(tpath, &c->token, &err);
	if (rc) {
		cli_error("cannot read the agent's token: %s%s", err.message,
			  rc == -ENOENT ? " (is the agent started? --token-file or --state say "
					  "where its token is)"
					: "");
		rc = EXIT_USAGE;
		goto out;
	}
	struct http_engine_opts ho = {
	    .tls_verify = true,
	    .unix_socket = c->addr.unix_socket,
	    .ca_file = o->ca_file ? o->ca_file : (from_config ? cfg.tls_cert : NULL),
	    .connect_timeout_ms = 5000,
	    .stall_timeout_s = 60,
	};
	c->http = http_engine_new(&ho);
	if (!c->http) {
		cli_error("cannot initialise libcurl");
		rc = EXIT_SOME_FAILED;
		goto out;
	}
	const char *tok = token_value(c->token);
	size_t n = strlen("Bearer ") + strlen(tok) + 1;
	c->auth = secret_alloc(n);
	xsnprintf(c->auth, n, "Bearer %s", tok);
	c->table = !o->json && isatty(STDOUT_FILENO);
	rc = EXIT_DONE;
out:
	free(tpath);
	agentc_config_release(&cfg);
	if (rc)
		client_release(c);
	return rc;
}

/* One API call. On 2xx *out holds the answer's JSON (NULL for an empty one)
 * and EXIT_DONE is returned; otherwise the error is printed and the exit
 * status returned. */
static int api(struct client *c, const char *method, const char *path, json_t *body, json_t **out)
{
	*out = NULL;
	struct buf url = BUF_INIT;
	buf_addf(&url, "%s%s", c->addr.base, path);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct http_header hdrs[] = {
	    {"Authorization", c->auth},
	    {"Accept", "application/json"},
	    {"Content-Type", "application/json"},
	};
	struct http_req req = {
	    .method = method,
	    .url = url.data,
	    .headers = hdrs,
	    .n_headers = text ? 3 : 2,
	    .body = text,
	    .body_len = text ? strlen(text) : 0,
	    .max_body = ANSWER_MAX,
	};
	struct http_resp resp;
	http_resp_init(&resp);
	struct dth_err err;
	err_clear(&err);
	int rc = http_perform(c->http, &req, &resp, &err);
	if (rc) {
		cli_error("cannot reach the agent at %s: %s", c->addr.shown, err.message);
		rc = rc == -EFBIG ? EXIT_SOME_FAILED : EXIT_UNREACHABLE;
		goto out;
	}
	if (resp.status >= 200 && resp.status <= 299) {
		if (resp.body.len) {
			json_error_t je;
			*out = json_loadb(resp.body.data, resp.body.len, 0, &je);
			if (!*out) {
				cli_error("the agent at %s answered %s %s with malformed JSON: %s",
					  c->addr.shown, method, path, je.text);
				rc = EXIT_SOME_FAILED;
			}
		}
		goto out;
	}
	struct buf msg = BUF_INIT;
	rc = agentc_error(resp.status, resp.body.data, resp.body.len, &msg);
	if (resp.status == 401)
		cli_error("the agent refused the token (%s)", token_path(c->token));
	else
		cli_error("%s", msg.data);
	buf_release(&msg);
out:
	http_resp_release(&resp);
	free(text);
	buf_release(&url);
	return rc;
}

static void task_path(struct buf *b, const char *name, const char *suffix)
{
	buf_adds(b, "/api/v1/tasks/");
	uri_encode(b, name, strlen(name), false);
	buf_adds(b, suffix);
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s) {
		puts(s);
		free(s);
	}
}

static int64_t now_unix(void)
{
	return (int64_t)time(NULL);
}

/* ---- commands ---- */

static int do_list(struct client *c)
{
	json_t *j;
	int rc = api(c, "GET", "/api/v1/tasks", NULL, &j);
	if (rc)
		return rc;
	if (c->table)
		agentc_print_tasks(stdout, json_object_get(j, "tasks"), now_unix());
	else
		print_json(j);
	json_decref(j);
	return EXIT_DONE;
}

static int do_show(struct client *c, const char *name)
{
	struct buf p = BUF_INIT;
	task_path(&p, name, "");
	json_t *j;
	int rc = api(c, "GET", p.data, NULL, &j);
	buf_release(&p);
	if (rc)
		return rc;
	if (c->table)
		agentc_print_task(stdout, j, now_unix());
	else
		print_json(j);
	json_decref(j);
	return EXIT_DONE;
}

/* The URL a sender POSTs a task's events to, with the task's own secret
 * (derived from the agent's token: it changes when the token does). */
static int do_webhook(struct client *c, const char *name, bool notify)
{
	struct buf p = BUF_INIT;
	task_path(&p, name, "");
	json_t *j;
	int rc = api(c, "GET", p.data, NULL, &j);
	if (rc) {
		buf_release(&p);
		return rc;
	}
	const char *ev =
	    json_string_value(json_object_get(json_object_get(j, "definition"), "events"));
	if (!notify && (!ev || strcmp(ev, "webhook"))) {
		cli_error("task %s does not take webhook events (events = %s): set events=webhook",
			  name, ev ? ev : "none");
		json_decref(j);
		buf_release(&p);
		return EXIT_USAGE;
	}
	json_decref(j);
	struct buf purpose = BUF_INIT;
	buf_addf(&purpose, "%s:%s", notify ? "notify" : "events", name);
	char secret[TOKEN_HEX_LEN + 1];
	token_derive(c->token, purpose.data, secret);
	if (notify)
		printf("%s\n", secret);
	else
		printf("%s%s/events?secret=%s\n", c->addr.base, p.data, secret);
	secret_wipe(secret, sizeof(secret));
	buf_release(&purpose);
	buf_release(&p);
	return EXIT_DONE;
}

/* The settings of create / update: --from FILE, then KEY=VALUE arguments
 * (which win). *name_io: the task's name (from the arguments, or the
 * file's only section when NULL). */
static int settings(const struct topts *o, const char **name_io, char **name_alloc, char **kv,
		    int nkv, json_t *obj)
{
	struct dth_err err;
	err_clear(&err);
	*name_alloc = NULL;
	if (o->from) {
		struct buf text = BUF_INIT;
		FILE *f = fopen(o->from, "re");
		if (!f) {
			cli_error("%s: %s", o->from, strerror(errno));
			return EXIT_USAGE;
		}
		char chunk[8192];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= TASK_FILE_MAX)
			buf_add(&text, chunk, n);
		bool bad = ferror(f) || text.len > TASK_FILE_MAX;
		fclose(f);
		if (bad) {
			cli_error("%s: %s", o->from,
				  text.len > TASK_FILE_MAX ? "too large for a task file"
							   : "read error");
			buf_release(&text);
			return EXIT_USAGE;
		}
		int rc = agentc_task_file(buf_str(&text), text.len, o->from, *name_io, obj,
					  name_alloc, &err);
		buf_release(&text);
		if (rc) {
			cli_error("%s", err.message);
			return EXIT_USAGE;
		}
		if (!*name_io)
			*name_io = *name_alloc;
	}
	if (!*name_io) {
		cli_error("name the task (or give --from FILE)");
		return EXIT_USAGE;
	}
	for (int i = 0; i < nkv; i++) {
		if (agentc_kv(kv[i], obj, &err) != 0) {
			cli_error("%s", err.message);
			return EXIT_USAGE;
		}
	}
	if (!json_object_size(obj)) {
		cli_error("no settings given (KEY=VALUE... or --from FILE)");
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

/* update NAME KEY=VALUE...: those settings over the task's definition as
 * the agent has it now (the API's PUT replaces the whole definition; --from
 * FILE does too). *obj: the given settings in, the whole definition out. */
static int merge_current(struct client *c, const char *path, json_t **obj)
{
	json_t *cur = NULL;
	int rc = api(c, "GET", path, NULL, &cur);
	if (rc)
		return rc;
	json_t *def = json_object_get(cur, "definition");
	if (!json_is_object(def)) {
		cli_error("the agent's answer for %s has no definition", path);
		json_decref(cur);
		return EXIT_SOME_FAILED;
	}
	json_t *whole = json_deep_copy(def);
	json_decref(cur);
	if (!whole || json_object_update(whole, *obj)) {
		json_decref(whole);
		cli_error("out of memory");
		return EXIT_SOME_FAILED;
	}
	json_decref(*obj);
	*obj = whole;
	return 0;
}

static int do_create_update(struct client *c, const struct topts *o, bool create, char **args,
			    int nargs)
{
	/* create [NAME] KEY=VALUE...: the name is the first argument without
	 * '=' (with --from it may be left out). */
	const char *name = NULL;
	if (nargs > 0 && !strchr(args[0], '=')) {
		name = args[0];
		args++;
		nargs--;
	}
	json_t *obj = json_object();
	char *name_alloc = NULL;
	int rc = settings(o, &name, &name_alloc, args, nargs, obj);
	if (rc)
		goto out;
	struct buf p = BUF_INIT;
	json_t *j = NULL;
	if (create) {
		json_object_set_new(obj, "name", json_string(name));
		rc = api(c, "POST", "/api/v1/tasks", obj, &j);
	} else {
		task_path(&p, name, "");
		if (!o->from)
			rc = merge_current(c, p.data, &obj);
		if (!rc)
			rc = api(c, "PUT", p.data, obj, &j);
	}
	buf_release(&p);
	if (!rc) {
		if (c->table)
			printf("%s task %s\n", create ? "created" : "updated", name);
		else
			print_json(j);
	}
	json_decref(j);
out:
	free(name_alloc);
	json_decref(obj);
	return rc;
}

static int do_action(struct client *c, const char *name, const char *action)
{
	struct buf p = BUF_INIT;
	buf_addf(&p, "/actions/%s", action);
	struct buf path = BUF_INIT;
	task_path(&path, name, p.data);
	json_t *j;
	int rc = api(c, "POST", path.data, NULL, &j);
	buf_release(&p);
	buf_release(&path);
	if (rc)
		return rc;
	if (c->table) {
		const char *st = json_string_value(json_object_get(j, "state"));
		printf("task %s: %s requested (now %s)\n", name, action, st ? st : "?");
	} else {
		print_json(j);
	}
	json_decref(j);
	return EXIT_DONE;
}

static int do_delete(struct client *c, const struct topts *o, const char *name)
{
	struct buf p = BUF_INIT;
	task_path(&p, name, o->purge ? "?purge=true" : "");
	json_t *j;
	int rc = api(c, "DELETE", p.data, NULL, &j);
	buf_release(&p);
	if (rc)
		return rc;
	if (c->table)
		printf("deleted task %s%s\n", name, o->purge ? " and its records" : "");
	else
		print_json(j);
	json_decref(j);
	return EXIT_DONE;
}

static int do_history(struct client *c, const struct topts *o, const char *name)
{
	uint64_t limit = o->limit_set ? o->limit : HISTORY_LIMIT;
	json_t *all = json_array();
	json_t *next = json_null();
	int rc = EXIT_DONE;
	for (;;) {
		uint64_t want = limit - json_array_size(all);
		struct buf p = BUF_INIT;
		task_path(&p, name, "/runs");
		buf_addf(&p, "?limit=%llu", (unsigned long long)(want < PAGE ? want : PAGE));
		if (json_is_integer(next))
			buf_addf(&p, "&before=%lld", (long long)json_integer_value(next));
		json_t *j;
		rc = api(c, "GET", p.data, NULL, &j);
		buf_release(&p);
		if (rc)
			break;
		json_t *runs = json_object_get(j, "runs");
		size_t i;
		json_t *r;
		json_array_foreach(runs, i, r)
		{
			if (json_array_size(all) < limit)
				json_array_append(all, r);
		}
		json_decref(next);
		next = json_incref(json_object_get(j, "next"));
		if (!next)
			next = json_null();
		bool more = json_is_integer(next) && json_array_size(runs) > 0 &&
			    json_array_size(all) < limit;
		json_decref(j);
		if (!more)
			break;
	}
	if (!rc) {
		if (c->table) {
			agentc_print_runs(stdout, all, now_unix());
		} else {
			json_t *doc = json_object();
			json_object_set(doc, "runs", all);
			json_object_set(doc, "next", next);
			print_json(doc);
			json_decref(doc);
		}
	}
	json_decref(next);
	json_decref(all);
	return rc;
}

/* Print rows as a table (aligned over the rows given) and empty the array. */
static void print_rows(const char *list, json_t *rows, bool header)
{
	if (!strcmp(list, "images"))
		agentc_print_images(stdout, rows, header);
	else
		agentc_print_objects(stdout, rows, header);
	json_array_clear(rows);
}

/* failures, objects, images: every page after the other, printed as they
 * come: as JSON, one document {"LIST":[...],"next":null}; as tables, aligned
 * over TABLE_ROWS rows at a time. */
static int do_pages(struct client *c, const struct topts *o, const char *name, const char *what,
		    const char *list, const char *status)
{
	uint64_t limit = o->limit_set ? o->limit : UINT64_MAX;
	uint64_t shown = 0;
	char *after = NULL;
	bool first = true;
	json_t *rows = json_array(); /* table rows not printed yet */
	int rc = EXIT_DONE;
	if (!c->table)
		printf("{\"%s\":[", list);
	while (shown < limit) {
		struct buf p = BUF_INIT;
		task_path(&p, name, what);
		uint64_t want = limit - shown;
		buf_addf(&p, "?limit=%llu", (unsigned long long)(want < PAGE ? want : PAGE));
		if (status) {
			buf_adds(&p, "&status=");
			uri_encode(&p, status, strlen(status), false);
		}
		if (after) {
			buf_adds(&p, "&after=");
			uri_encode(&p, after, strlen(after), false);
		}
		json_t *j;
		rc = api(c, "GET", p.data, NULL, &j);
		buf_release(&p);
		if (rc)
			break;
		json_t *items = json_object_get(j, list);
		size_t n = json_array_size(items);
		if (n > limit - shown) {
			json_t *cut = json_array();
			for (size_t i = 0; i < limit - shown; i++)
				json_array_append(cut, json_array_get(items, i));
			json_object_set_new(j, list, cut);
			items = cut;
			n = json_array_size(items);
		}
		if (c->table) {
			json_array_extend(rows, items);
			if (json_array_size(rows) >= TABLE_ROWS) {
				print_rows(list, rows, first);
				first = false;
			}
		} else {
			size_t i;
			json_t *it;
			json_array_foreach(items, i, it)
			{
				char *s = json_dumps(it, JSON_COMPACT);
				printf("%s%s", shown + i ? "," : "", s ? s : "null");
				free(s);
			}
		}
		shown += n;
		json_t *nx = json_object_get(j, "next");
		free(after);
		after = NULL;
		if (json_is_string(nx))
			after = xstrdup(json_string_value(nx));
		else if (json_is_integer(nx)) {
			char s[32];
			xsnprintf(s, sizeof(s), "%lld", (long long)json_integer_value(nx));
			after = xstrdup(s);
		}
		json_decref(j);
		if (!after || n == 0)
			break;
	}
	if (!c->table)
		printf("],\"next\":null}\n");
	else if (json_array_size(rows) || first)
		print_rows(list, rows, first);
	json_decref(rows);
	free(after);
	return rc;
}

/* ---- the command ---- */

static int parse_opts(int argc, char **argv, struct topts *o)
{
	static const struct option lopts[] = {
	    {"agent", required_argument, NULL, 'a'},   {"token-file", required_argument, NULL, 't'},
	    {"state", required_argument, NULL, 's'},   {"config", required_argument, NULL, 'c'},
	    {"from", required_argument, NULL, 'f'},    {"status", required_argument, NULL, 'S'},
	    {"ca-file", required_argument, NULL, 'C'}, {"limit", required_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},	       {"purge", no_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			o->agent = optarg;
			break;
		case 't':
			o->token_file = optarg;
			break;
		case 's':
			o->state = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->from = optarg;
			break;
		case 'S':
			o->status = optarg;
			break;
		case 'C':
			o->ca_file = optarg;
			break;
		case 'n':
			if (parse_u64(optarg, &o->limit) || o->limit < 1) {
				cli_error("--limit takes a number of at least 1");
				return EXIT_USAGE;
			}
			o->limit_set = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'p':
			o->purge = true;
			break;
		case 'h':
			task_usage(stdout);
			return -1;
		default:
			cli_error("task: unknown or incomplete option '%s'", argv[optind - 1]);
			task_usage(stderr);
			return EXIT_USAGE;
		}
	}
	return EXIT_DONE;
}

/* Which commands take which arguments: NAME only, or NAME and settings. */
static bool args_fit(const char *sub, int nargs, const struct topts *o)
{
	static const char *const one[] = {"show",    "start",  "stop",	  "run",
					  "retry",   "delete", "history", "failures",
					  "objects", "images", "webhook", "notify-secret"};
	if (!strcmp(sub, "list"))
		return nargs == 0;
	if (!strcmp(sub, "create") || !strcmp(sub, "update"))
		return nargs >= 1 || o->from;
	for (size_t i = 0; i < ARRAY_SIZE(one); i++)
		if (!strcmp(sub, one[i]))
			return nargs == 1;
	return false;
}

int cmd_task(int argc, char **argv)
{
	struct topts o;
	memset(&o, 0, sizeof(o));
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc < 0 ? EXIT_DONE : rc;
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs < 1) {
		task_usage(stderr);
		return EXIT_USAGE;
	}
	const char *sub = args[0];
	args++;
	nargs--;
	if (!args_fit(sub, nargs, &o)) {
		cli_error("task: unknown command or wrong arguments: %s", sub);
		task_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "objects") && !o.status) {
		cli_error("task objects: --status S is needed (pending, copying, done, failed, "
			  "skipped, deleted)");
		return EXIT_USAGE;
	}
	struct client c;
	rc = client_open(&c, &o);
	if (rc)
		return rc;
	if (!strcmp(sub, "list"))
		rc = do_list(&c);
	else if (!strcmp(sub, "show"))
		rc = do_show(&c, args[0]);
	else if (!strcmp(sub, "create") || !strcmp(sub, "update"))
		rc = do_create_update(&c, &o, !strcmp(sub, "create"), args, nargs);
	else if (!strcmp(sub, "delete"))
		rc = do_delete(&c, &o, args[0]);
	else if (!strcmp(sub, "history"))
		rc = do_history(&c, &o, args[0]);
	else if (!strcmp(sub, "failures"))
		rc = do_pages(&c, &o, args[0], "/failures", "objects", NULL);
	else if (!strcmp(sub, "objects"))
		rc = do_pages(&c, &o, args[0], "/objects", "objects", o.status);
	else if (!strcmp(sub, "images"))
		rc = do_pages(&c, &o, args[0], "/images", "images", NULL);
	else if (!strcmp(sub, "webhook"))
		rc = do_webhook(&c, args[0], false);
	else if (!strcmp(sub, "notify-secret"))
		rc = do_webhook(&c, args[0], true);
	else
		rc = do_action(&c, args[0], sub);
	client_release(&c);
	return rc;
}
