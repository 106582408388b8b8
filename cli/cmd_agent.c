/* dth agent: the long-running mirroring service in the foreground (as a
 * service runs under systemd): the tasks of the config file, of tasks.d and
 * of the API on their schedules, the HTTP API and /metrics. SIGHUP reloads
 * the configuration; SIGTERM and SIGINT stop it: no new work, runs stopped
 * (in-flight transfers finish or are checkpointed), the manifest committed,
 * exit 0 within --stop-timeout. */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/httpd.h"
#include "agent/mounts.h"
#include "agent/service.h"
#include "agent/tasklist.h"
#include "agent/token.h"
#include "cli/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"

#define DEFAULT_LISTEN	     "127.0.0.1:8391"
#define DEFAULT_STOP_TIMEOUT 30

enum {
	O_CONFIG = 256,
	O_STATE,
	O_LISTEN,
	O_WORKERS,
	O_STOP_TIMEOUT,
	O_TLS_CERT,
	O_TLS_KEY,
	O_HELP
};

static const struct cli_setting settings[] = {
    {"config", 1, O_CONFIG, "FILE",
     "config file (default $DTH_CONFIG, ~/.config/dth/dth.conf, /etc/dth/dth.conf)", NULL},
    {"state", 1, O_STATE, "DIR",
     "state directory (default $DTH_STATE_DIR, /var/lib/dth as root, ~/.local/state/dth)", NULL},
    {"listen", 1, O_LISTEN, "ADDR",
     "API address: HOST:PORT, [V6]:PORT or unix:PATH (default 127.0.0.1:8391; [agent] listen)",
     NULL},
    {"workers", 1, O_WORKERS, "N",
     "transfers at once, all tasks together, shared fairly (default 32; [agent] workers)", NULL},
    {"stop-timeout", 1, O_STOP_TIMEOUT, "SECONDS",
     "on SIGTERM, how long runs may take to stop (default 30; [agent] stop_timeout)", NULL},
    {"tls-cert", 1, O_TLS_CERT, "FILE", "serve HTTPS with this certificate ([agent] tls_cert)",
     NULL},
    {"tls-key", 1, O_TLS_KEY, "FILE", "... and this key ([agent] tls_key)", NULL},
    {"help", 0, O_HELP, NULL, "this help", NULL},
};

static void agent_usage(FILE *f)
{
	fputs("usage: dth agent [options]\n"
	      "  runs the tasks of the config file ([task NAME] sections), of the tasks.d\n"
	      "  directory next to it and of the API, each on its schedule, and serves the\n"
	      "  API (/api/v1/), /metrics, /healthz and the web console (/); the API's token\n"
	      "  is made on the first start in STATE_DIR/agent.token\n\noptions:\n",
	      f);
	cli_settings_help(f, settings, ARRAY_SIZE(settings));
	fputs("\nsignals: SIGHUP reloads the configuration, SIGTERM or SIGINT stops\n"
	      "exit status: 0 stopped, 2 bad usage or config, 1 another failure\n",
	      f);
}

struct agent_args {
	const char *config, *state, *listen, *tls_cert, *tls_key;
	uint64_t workers, stop_timeout;
	bool have_workers, have_timeout;
	bool console; /* serve the web console ([agent] console, default true) */
};

static int parse_args(int argc, char **argv, struct agent_args *a)
{
	struct option lopts[ARRAY_SIZE(settings) + 1];
	cli_settings_longopts(settings, ARRAY_SIZE(settings), lopts);
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case O_CONFIG:
			a->config = optarg;
			break;
		case O_STATE:
			a->state = optarg;
			break;
		case O_LISTEN:
			a->listen = optarg;
			break;
		case O_TLS_CERT:
			a->tls_cert = optarg;
			break;
		case O_TLS_KEY:
			a->tls_key = optarg;
			break;
		case O_WORKERS:
			rc = parse_u64(optarg, &a->workers);
			rc = rc ? rc : a->workers < 1 || a->workers > 4096 ? -ERANGE : 0;
			a->have_workers = true;
			break;
		case O_STOP_TIMEOUT:
			rc = parse_u64(optarg, &a->stop_timeout);
			rc = rc ? rc : a->stop_timeout > 3600 ? -ERANGE : 0;
			a->have_timeout = true;
			break;
		case 'h':
		case O_HELP:
			agent_usage(stdout);
			return -1;
		default:
			cli_error("agent: unknown or incomplete option '%s'", argv[optind - 1]);
			agent_usage(stderr);
			return EXIT_USAGE;
		}
		if (rc) {
			cli_error("agent: bad value '%s' for --%s", optarg,
				  cli_setting_name(settings, ARRAY_SIZE(settings), c));
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("agent takes no arguments ('%s')", argv[optind]);
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

/* The [agent] section fills what the command line left out; each problem
 * (file and line) goes to problem. Returns the number of problems. */
static unsigned agent_section(const struct config *cfg, struct agent_args *a,
			      void (*problem)(void *ctx, const char *msg), void *pctx)
{
	unsigned n_bad = 0;
	size_t n;
	const struct config_section *const *secs = config_sections(cfg, "agent", &n);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < secs[i]->n; j++) {
			const struct config_pair *p = &secs[i]->pairs[j];
			uint64_t v;
			int rc = 0;
			if (!strcmp(p->key, "listen")) {
				if (!a->listen)
					a->listen = p->value;
			} else if (!strcmp(p->key, "tls_cert")) {
				if (!a->tls_cert)
					a->tls_cert = p->value;
			} else if (!strcmp(p->key, "tls_key")) {
				if (!a->tls_key)
					a->tls_key = p->value;
			} else if (!strcmp(p->key, "workers")) {
				rc = parse_u64(p->value, &v) || v < 1 || v > 4096 ? -EINVAL : 0;
				if (!rc && !a->have_workers)
					a->workers = v;
			} else if (!strcmp(p->key, "stop_timeout")) {
				rc = parse_u64(p->value, &v) || v > 3600 ? -EINVAL : 0;
				if (!rc && !a->have_timeout)
					a->stop_timeout = v, a->have_timeout = true;
			} else if (!strcmp(p->key, "log_level")) {
				int l = log_parse_level(p->value);
				rc = l < 0 ? -EINVAL : 0;
				if (!rc && !problem)
					log_set_level(l);
			} else if (!strcmp(p->key, "local_sources")) {
				/* read by the service when the API makes a task */
			} else if (!strcmp(p->key, "console")) {
				bool on;
				rc = parse_bool(p->value, &on) ? -EINVAL : 0;
				if (!rc)
					a->console = on;
			} else {
				rc = -ENOENT;
			}
			if (!rc)
				continue;
			struct buf m = BUF_INIT;
			if (rc == -ENOENT)
				buf_addf(&m,
					 "%s:%u: unknown key '%.64s' in [agent] (known: listen, "
					 "workers, stop_timeout, tls_cert, tls_key, log_level, "
					 "local_sources, console)",
					 secs[i]->origin, p->line, p->key);
			else
				buf_addf(&m, "%s:%u: bad value for %s in [agent]", secs[i]->origin,
					 p->line, p->key);
			if (problem)
				problem(pctx, m.data);
			else
				cli_error("%s", m.data);
			buf_release(&m);
			n_bad++;
			if (!problem)
				return n_bad;
		}
	}
	return n_bad;
}

unsigned cli_agent_config_problems(const struct config *cfg,
				   void (*problem)(void *ctx, const char *msg), void *ctx)
{
	struct agent_args a;
	memset(&a, 0, sizeof(a));
	return agent_section(cfg, &a, problem, ctx);
}

/* Wait for a signal, waking for the watchdog; systemd hears of it all. */
static void serve(struct service *s, struct mounts *ms)
{
	uint64_t wd_usec = 0;
	bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	struct timespec tick = {5, 0};
	if (watchdog && wd_usec / 2 < 5000000ULL) {
		tick.tv_sec = (time_t)(wd_usec / 2 / 1000000ULL);
		tick.tv_nsec = (long)(wd_usec / 2 % 1000000ULL) * 1000;
	}
	char status[160];
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("signal %d: stopping", sig);
			return;
		}
		if (sig == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			struct dth_err err;
			err_clear(&err);
			if (service_reload(s, &err))
				log_error("reload: %s (the configuration in use is kept)",
					  err.message);
			else
				mounts_reload(ms, service_config(s));
			sd_notify(0, "READY=1");
		}
		if (watchdog)
			sd_notify(0, "WATCHDOG=1");
		service_status_line(s, status, sizeof(status));
		sd_notifyf(0, "STATUS=%s", status);
	}
}

/* Everything is up: the signals are blocked (the threads inherit that). */
static int run_agent(struct agent_args *a, struct manifest *m, const char *state_dir)
{
	struct dth_err err;
	err_clear(&err);
	int exitc = EXIT_USAGE;
	struct token *tok = NULL;
	struct httpd *h = NULL;
	struct mounts *ms = NULL;
	struct tasklist *list = NULL;
	struct service_opts so = {.config_path = a->config,
				  .manifest = m,
				  .workers = (unsigned)a->workers,
				  .listen = a->listen};
	struct service *s = service_new(&so, &err);
	if (!s) {
		cli_error("%s", err.message);
		return EXIT_USAGE;
	}
	bool created;
	if (token_load_or_create(state_dir, &tok, &created, &err)) {
		cli_error("%s", err.message);
		goto out;
	}
	if (created)
		log_info("api token made in %s", token_path(tok));
	service_set_token(s, tok);
	char exe[4096];
	ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (el <= 0 || (size_t)el >= sizeof(exe) - 1) {
		cli_error("cannot find the dth binary (/proc/self/exe)");
		goto out;
	}
	exe[el] = '\0';
	ms = mounts_new(service_config(s), exe, a->config, state_dir);
	list = tasklist_new(s);
	struct api api = {s, m, tok, ms, list, a->console};
	struct httpd_opts ho = {.listen = a->listen,
				.tls_cert = a->tls_cert,
				.tls_key = a->tls_key,
				.early = api_early,
				.threads = 4};
	h = httpd_new(&ho, api_handle, &api, &err);
	if (!h) {
		cli_error("api: %s", err.message);
		goto out;
	}
	exitc = EXIT_SOME_FAILED;
	if (service_start(s, &err)) {
		cli_error("%s", err.message);
		goto out;
	}
	if (mounts_start(ms, &err))
		log_error("%s: the mounts are not served", err.message);
	log_info("agent ready: api on %s, state in %s, %zu tasks, %zu mounts", httpd_bound(h),
		 state_dir, service_task_count(s), mounts_count(ms));
	sd_notifyf(0, "READY=1\nSTATUS=api on %s", httpd_bound(h));
	serve(s, ms);
	sd_notify(0, "STOPPING=1");
	httpd_free(h);
	h = NULL;
	mounts_stop(ms, 10);
	unsigned left = service_shutdown(s, (unsigned)a->stop_timeout);
	if (left)
		log_warn("%u runs did not stop within %llu s; they resume at the next start", left,
			 (unsigned long long)a->stop_timeout);
	exitc = EXIT_DONE;
out:
	httpd_free(h);
	mounts_free(ms);
	tasklist_free(list);
	service_free(s);
	token_free(tok);
	return exitc;
}

int cmd_agent(int argc, char **argv)
{
	struct agent_args a = {0};
	a.stop_timeout = DEFAULT_STOP_TIMEOUT;
	a.console = true;
	int exitc = parse_args(argc, argv, &a);
	if (exitc)
		return exitc < 0 ? EXIT_DONE : exitc;
	struct config *cfg = NULL;
	if ((exitc = cli_config_load(a.config, &cfg)))
		return exitc;
	exitc = agent_section(cfg, &a, NULL, NULL) ? EXIT_USAGE : EXIT_DONE;
	if (!a.listen)
		a.listen = DEFAULT_LISTEN;
	struct manifest *m = NULL;
	char *state_dir = cli_state_dir(a.state);
	struct dth_err err;
	err_clear(&err);
	if (exitc)
		goto out;
	m = manifest_open(state_dir, MANIFEST_RDWR, &err);
	if (!m) {
		cli_error("state directory %s: %s", state_dir, err.message);
		exitc = EXIT_USAGE;
		goto out;
	}
	/* Block the signals before any thread starts: serve() takes them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!a.config)
		a.config = config_path(cfg);
	exitc = run_agent(&a, m, state_dir);
out:
	if (m)
		manifest_free(m);
	free(state_dir);
	config_free(cfg);
	return exitc;
}
