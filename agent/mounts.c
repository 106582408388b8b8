/* The agent's mounts: supervised `dth mount -f` children (see mounts.h).
 *
 * Locking: ms->lock guards every mount's fields, the array itself (a reload
 * replaces it) and the retired children; the supervisor thread spawns and
 * reaps, the API reads. Invariants: pid > 0 exactly while a child runs that
 * has not been reaped; a child is in v or in old, never both; no mount
 * starts on a mountpoint a retired child may still hold. */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/mounts.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "remote/remotes.h"

#define BACKOFF_MIN	1
#define BACKOFF_MAX	300
#define EXIT_USAGE_CODE 2

extern char **environ;

struct mount {
	char *name, *source, *mountpoint;
	char **argv; /* the child's command line (owned) */
	char *error; /* a section that cannot be served, or the last failure */
	pid_t pid;
	bool mounted, given_up;
	int last_exit; /* -1 none; 128+N for a signal */
	unsigned restarts;
	unsigned backoff;
	double next_start; /* now_mono() when to start again */
};

/* A child whose section went away in a reload: told to unmount, killed at
 * kill_at if it has not, reaped by the supervisor. */
struct retired {
	pid_t pid;
	char *name, *mountpoint;
	double kill_at;
};

struct mounts {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct mount *v;
	size_t n;
	struct retired *old;
	size_t n_old;
	char *exe, *config_path, *state_dir; /* for the children of a reload */
	bool stopping, started;
	pthread_t thread;
};

#define RETIRE_TIMEOUT_S 10

static void add_arg(char ***argv, size_t *n, const char *s)
{
	*argv = xrealloc(*argv, (*n + 2) * sizeof(char *));
	(*argv)[(*n)++] = xstrdup(s);
	(*argv)[*n] = NULL;
}

/* The command line of one section; false with m->error set when unusable. */
static bool build_argv(struct mount *m, const struct config_section *sec, const char *exe,
		       const char *config_path, const char *state_dir)
{
	size_t n = 0;
	add_arg(&m->argv, &n, exe);
	add_arg(&m->argv, &n, "mount");
	add_arg(&m->argv, &n, "-f");
	if (config_path) {
		add_arg(&m->argv, &n, "--config");
		add_arg(&m->argv, &n, config_path);
	}
	if (state_dir) {
		add_arg(&m->argv, &n, "--state");
		add_arg(&m->argv, &n, state_dir);
	}
	for (size_t i = 0; i < sec->n; i++) {
		const struct config_pair *p = &sec->pairs[i];
		if (!strcmp(p->key, "source")) {
			free(m->source);
			m->source = xstrdup(p->value);
			continue;
		}
		if (!strcmp(p->key, "mountpoint")) {
			free(m->mountpoint);
			m->mountpoint = xstrdup(p->value);
			continue;
		}
		struct buf flag = BUF_INIT;
		buf_adds(&flag, "--");
		for (const char *c = p->key; *c; c++)
			buf_addch(&flag, *c == '_' ? '-' : *c);
		bool yes;
		if (!strcmp(p->key, "options")) {
			add_arg(&m->argv, &n, "-o");
			add_arg(&m->argv, &n, p->value);
		} else if (!strcmp(p->key, "manifest") || !strcmp(p->key, "foreground")) {
			if (!parse_bool(p->value, &yes) && yes)
				add_arg(&m->argv, &n, flag.data);
		} else {
			add_arg(&m->argv, &n, flag.data);
			add_arg(&m->argv, &n, p->value);
		}
		buf_release(&flag);
	}
	if (!m->mountpoint || m->mountpoint[0] != '/') {
		m->error = xstrdup("a mount needs mountpoint = an absolute path");
		return false;
	}
	if (m->source)
		add_arg(&m->argv, &n, m->source);
	add_arg(&m->argv, &n, m->mountpoint);
	return true;
}

/* The mounts of cfg's sections (nothing started); *n says how many. */
static struct mount *build_mounts(const struct config *cfg, const char *exe,
				  const char *config_path, const char *state_dir, size_t *n)
{
	const struct config_section *const *secs = config_sections(cfg, "mount", n);
	struct mount *v = *n ? xcalloc(*n, sizeof(*v)) : NULL;
	for (size_t i = 0; i < *n; i++) {
		struct mount *m = &v[i];
		m->name = xstrdup(secs[i]->name);
		m->last_exit = -1;
		m->backoff = BACKOFF_MIN;
		if (!build_argv(m, secs[i], exe, config_path, state_dir)) {
			m->given_up = true;
			log_error("%s:%u: mount %s: %s", secs[i]->origin, secs[i]->line, m->name,
				  m->error);
		}
	}
	return v;
}

static void mount_release(struct mount *m)
{
	for (char **a = m->argv; a && *a; a++)
		free(*a);
	free(m->argv);
	free(m->name);
	free(m->source);
	free(m->mountpoint);
	free(m->error);
}

struct mounts *mounts_new(const struct config *cfg, const char *exe, const char *config_path,
			  const char *state_dir)
{
	struct mounts *ms = xcalloc(1, sizeof(*ms));
	pthread_mutex_init(&ms->lock, NULL);
	pthread_cond_init(&ms->wake, NULL);
	ms->exe = xstrdup(exe);
	ms->config_path = config_path ? xstrdup(config_path) : NULL;
	ms->state_dir = state_dir ? xstrdup(state_dir) : NULL;
	ms->v = build_mounts(cfg, exe, config_path, state_dir, &ms->n);
	return ms;
}

/* Whether path is a mount point now (/proc/self/mountinfo, field 5, with
 * spaces and the like escaped as \ooo). */
static bool is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	struct buf want = BUF_INIT;
	for (const char *p = path; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			buf_addf(&want, "\\%03o", (unsigned char)*p);
		else
			buf_addch(&want, *p);
	}
	while (!found && fgets(line, sizeof(line), f)) {
		char *save = NULL, *field = strtok_r(line, " ", &save);
		for (int i = 1; field && i < 5; i++)
			field = strtok_r(NULL, " ", &save);
		found = field && !strcmp(field, want.data);
	}
	fclose(f);
	buf_release(&want);
	return found;
}

/* With ms->lock held: start m's child. */
static void spawn_locked(struct mount *m)
{
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	sigset_t none, dflt;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGHUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int rc = posix_spawn(&pid, m->argv[0], NULL, &attr, m->argv, environ);
	posix_spawnattr_destroy(&attr);
	if (rc) {
		free(m->error);
		struct buf e = BUF_INIT;
		buf_addf(&e, "cannot start dth mount: %s", strerror(rc));
		m->error = buf_detach(&e, NULL);
		m->next_start = now_mono() + m->backoff;
		return;
	}
	m->pid = pid;
	m->mounted = false;
	log_info("mount %s: dth mount started (pid %d) on %s", m->name, (int)pid, m->mountpoint);
}

/* With ms->lock held: m's child ended with status st. */
static void ended_locked(struct mounts *ms, struct mount *m, int st)
{
	m->pid = 0;
	m->mounted = false;
	m->last_exit = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (ms->stopping)
		return;
	free(m->error);
	struct buf e = BUF_INIT;
	buf_addf(&e, "dth mount exited with status %d; see the agent's log", m->last_exit);
	m->error = buf_detach(&e, NULL);
	if (m->last_exit == EXIT_USAGE_CODE) {
		m->given_up = true;
		log_error("mount %s: %s (bad usage or config: not started again)", m->name,
			  m->error);
		return;
	}
	m->restarts++;
	m->next_start = now_mono() + m->backoff;
	log_warn("mount %s: %s; starting again in %u s", m->name, m->error, m->backoff);
	m->backoff = m->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : m->backoff * 2;
}

/* With ms->lock held: whether a retired child may still hold path. */
static bool retiring_on_locked(const struct mounts *ms, const char *path)
{
	for (size_t i = 0; i < ms->n_old; i++)
		if (!strcmp(ms->old[i].mountpoint, path))
			return true;
	return false;
}

/* With ms->lock held: reap the retired children that ended, kill the ones
 * past their time. */
static void reap_retired_locked(struct mounts *ms, double now)
{
	for (size_t i = 0; i < ms->n_old;) {
		struct retired *r = &ms->old[i];
		int st;
		pid_t got = waitpid(r->pid, &st, WNOHANG);
		if (got == r->pid || (got < 0 && errno == ECHILD)) {
			log_info("mount %s: unmounted (removed from the config)", r->name);
			free(r->name);
			free(r->mountpoint);
			ms->old[i] = ms->old[--ms->n_old];
			continue;
		}
		if (now >= r->kill_at) {
			kill(r->pid, SIGKILL);
			r->kill_at = now + RETIRE_TIMEOUT_S;
		}
		i++;
	}
}

static void *supervise(void *arg)
{
	struct mounts *ms = arg;
	pthread_mutex_lock(&ms->lock);
	while (!ms->stopping) {
		double now = now_mono();
		reap_retired_locked(ms, now);
		for (size_t i = 0; i < ms->n; i++) {
			struct mount *m = &ms->v[i];
			int st;
			if (m->pid > 0 && waitpid(m->pid, &st, WNOHANG) == m->pid)
				ended_locked(ms, m, st);
			else if (m->pid > 0 && !m->mounted && is_mounted(m->mountpoint))
				m->mounted = true, m->backoff = BACKOFF_MIN;
			if (m->pid == 0 && !m->given_up && now >= m->next_start &&
			    !retiring_on_locked(ms, m->mountpoint))
				spawn_locked(m);
		}
		/* Children to watch: every second; none: until a reload. */
		struct timespec ts;
		deadline_in_ms(&ts, ms->n || ms->n_old ? 1000 : 3600 * 1000);
		pthread_cond_timedwait(&ms->wake, &ms->lock, &ts);
	}
	pthread_mutex_unlock(&ms->lock);
	return NULL;
}

static bool same_argv(char *const *a, char *const *b)
{
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b))
			return false;
	return !*a && !*b;
}

/* With ms->lock held: carry o's child over to f (same name and command
 * line), unless o gave up (a reload is a new chance). */
static bool carry_locked(struct mount *f, struct mount *o)
{
	if (!o->argv || !f->argv || strcmp(o->name, f->name) || !same_argv(o->argv, f->argv) ||
	    o->given_up)
		return false;
	f->pid = o->pid;
	f->mounted = o->mounted;
	f->last_exit = o->last_exit;
	f->restarts = o->restarts;
	f->backoff = o->backoff;
	f->next_start = o->next_start;
	free(f->error);
	f->error = o->error;
	o->error = NULL;
	o->pid = 0;
	return true;
}

/* With ms->lock held: o's section is gone; its child unmounts. */
static void retire_locked(struct mounts *ms, struct mount *o)
{
	if (o->pid <= 0)
		return;
	kill(o->pid, SIGTERM);
	ms->old = xrealloc(ms->old, (ms->n_old + 1) * sizeof(*ms->old));
	ms->old[ms->n_old++] = (struct retired){o->pid, xstrdup(o->name), xstrdup(o->mountpoint),
						now_mono() + RETIRE_TIMEOUT_S};
	o->pid = 0;
}

void mounts_reload(struct mounts *ms, const struct config *cfg)
{
	size_t n;
	struct mount *v = build_mounts(cfg, ms->exe, ms->config_path, ms->state_dir, &n);
	unsigned kept = 0, retired = 0;
	pthread_mutex_lock(&ms->lock);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ms->n; j++)
			if (carry_locked(&v[i], &ms->v[j])) {
				kept++;
				break;
			}
	for (size_t j = 0; j < ms->n; j++) {
		retired += ms->v[j].pid > 0;
		retire_locked(ms, &ms->v[j]);
	}
	struct mount *old = ms->v;
	size_t n_was = ms->n;
	ms->v = v;
	ms->n = n;
	pthread_cond_broadcast(&ms->wake);
	pthread_mutex_unlock(&ms->lock);
	for (size_t j = 0; j < n_was; j++)
		mount_release(&old[j]);
	free(old);
	log_info("mounts reloaded: %zu in the config, %u kept as they were, %u unmounting", n, kept,
		 retired);
}

int mounts_start(struct mounts *ms, struct dth_err *err)
{
	if (pthread_create(&ms->thread, NULL, supervise, ms))
		return err_set(err, -EAGAIN, "cannot start the mounts' supervisor");
	ms->started = true;
	return 0;
}

void mounts_stop(struct mounts *ms, unsigned timeout_s)
{
	pthread_mutex_lock(&ms->lock);
	ms->stopping = true;
	pthread_cond_broadcast(&ms->wake);
	pthread_mutex_unlock(&ms->lock);
	if (ms->started)
		pthread_join(ms->thread, NULL);
	ms->started = false;
	/* The supervisor is gone: no lock needed from here. */
	for (size_t i = 0; i < ms->n; i++)
		retire_locked(ms, &ms->v[i]);
	double until = now_mono() + timeout_s;
	for (size_t i = 0; i < ms->n_old; i++)
		ms->old[i].kill_at = until;
	while (ms->n_old) {
		reap_retired_locked(ms, now_mono());
		if (ms->n_old)
			usleep(50000);
	}
}

void mounts_free(struct mounts *ms)
{
	if (!ms)
		return;
	if (ms->started)
		mounts_stop(ms, 10);
	for (size_t i = 0; i < ms->n; i++)
		mount_release(&ms->v[i]);
	free(ms->v);
	for (size_t i = 0; i < ms->n_old; i++) {
		free(ms->old[i].name);
		free(ms->old[i].mountpoint);
	}
	free(ms->old);
	free(ms->exe);
	free(ms->config_path);
	free(ms->state_dir);
	pthread_mutex_destroy(&ms->lock);
	pthread_cond_destroy(&ms->wake);
	free(ms);
}

size_t mounts_count(struct mounts *ms)
{
	if (!ms)
		return 0;
	pthread_mutex_lock(&ms->lock);
	size_t n = ms->n;
	pthread_mutex_unlock(&ms->lock);
	return n;
}

json_t *mounts_json(struct mounts *ms)
{
	json_t *a = json_array();
	if (!ms)
		return a;
	pthread_mutex_lock(&ms->lock);
	for (size_t i = 0; i < ms->n; i++) {
		const struct mount *m = &ms->v[i];
		const char *state = m->pid > 0	   ? (m->mounted ? "mounted" : "starting")
				    : ms->stopping ? "stopped"
						   : "failed";
		json_array_append_new(
		    a, json_pack("{s:s, s:s?, s:s?, s:s, s:o, s:I, s:o, s:s?}", "name", m->name,
				 "source", m->source, "mountpoint", m->mountpoint, "state", state,
				 "pid", m->pid > 0 ? json_integer(m->pid) : json_null(), "restarts",
				 (json_int_t)m->restarts, "last_exit",
				 m->last_exit >= 0 ? json_integer(m->last_exit) : json_null(),
				 "error", m->pid > 0 && m->mounted ? NULL : m->error));
	}
	pthread_mutex_unlock(&ms->lock);
	return a;
}
