/* The inotify watcher of a local source (dirwatch.h).
 *
 * Design: one thread owns everything here but `stop` (set by dirwatch_signal,
 * which also writes to the wake pipe). Watch descriptors index `dirs`, the
 * relative path of each watched directory ("" for the root, else "a/b/");
 * inotify_add_watch on a directory already watched returns its descriptor,
 * so re-watching a moved subtree renames its entries in place. Changed keys
 * wait in `pending`, a hash set, until the quiet period ends; then they are
 * kept in the journal in one transaction and the service is told. */
#include "common/compat.h"

#include "agent/dirwatch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "agent/evring.h"
#include "agent/intake.h"
#include "common/buf.h"
#include "common/log.h"
#include "manifest/manifest.h"

#define DIR_MASK                                                                                   \
	(IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_CREATE | IN_ATTRIB |        \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define DEPTH_MAX 256
#define READ_BUF  (64u << 10)

struct pending {
	char **keys; /* open addressing; NULL empty */
	size_t cap, n;
};

struct dirwatch {
	char *name, *root;
	struct manifest *m;
	uint32_t task;
	void (*kick)(void *ctx, const struct intake_counts *c, unsigned refused);
	void *ctx;
	int fd;
	int wake[2];
	pthread_t thread;
	bool started;
	int stop;    /* atomic: set by dirwatch_signal */
	char **dirs; /* by watch descriptor; NULL: not watched */
	size_t n_dirs;
	uint64_t watches;
	struct pending pending;
	bool rescan;	     /* to be asked for with the next keeping */
	bool told_limit;     /* the watch limit was logged */
	double first, last;  /* monotonic times of the first and last pending change */
	struct evring *seen; /* the changes noted since the last kick */
};

/* ---- the pending set ---- */

static size_t slot_of(const struct pending *p, const char *key)
{
	size_t i = (size_t)XXH3_64bits(key, strlen(key)) & (p->cap - 1);
	while (p->keys[i] && strcmp(p->keys[i], key) != 0)
		i = (i + 1) & (p->cap - 1);
	return i;
}

static void pending_add(struct dirwatch *w, const char *key)
{
	struct pending *p = &w->pending;
	if (p->n >= DIRWATCH_PENDING_MAX) {
		w->rescan = true; /* too many at once: a rescan finds them all */
		return;
	}
	if (2 * (p->n + 1) > p->cap) {
		struct pending q = {xcalloc(p->cap ? 2 * p->cap : 256, sizeof(char *)),
				    p->cap ? 2 * p->cap : 256, p->n};
		for (size_t i = 0; i < p->cap; i++)
			if (p->keys[i])
				q.keys[slot_of(&q, p->keys[i])] = p->keys[i];
		free(p->keys);
		*p = q;
	}
	size_t i = slot_of(p, key);
	if (!p->keys[i]) {
		p->keys[i] = xstrdup(key);
		p->n++;
	}
}

static void pending_clear(struct pending *p)
{
	for (size_t i = 0; i < p->cap; i++) {
		free(p->keys[i]);
		p->keys[i] = NULL;
	}
	p->n = 0;
}

/* Keep the pending keys (and a rescan request) in the journal. */
static void keep_pending(struct dirwatch *w)
{
	struct pending *p = &w->pending;
	if (!p->n && !w->rescan)
		return;
	struct manifest_event *ev = xcalloc(p->n ? p->n : 1, sizeof(*ev));
	size_t n = 0;
	for (size_t i = 0; i < p->cap; i++) {
		if (!p->keys[i])
			continue;
		size_t len = strlen(p->keys[i]);
		if (len > MANIFEST_EVENT_KEY_MAX) {
			w->rescan = true;
			continue;
		}
		ev[n].key = p->keys[i];
		ev[n].key_len = len;
		n++;
	}
	struct manifest_events_state st = {0};
	int rc = manifest_events_add(w->m, w->task, ev, n, w->rescan, &st);
	if (rc) {
		log_warn("task %s: cannot keep %zu changed files in the journal: %s; the next "
			 "rescan finds them",
			 w->name, n, strerror(-rc));
	} else {
		if (w->rescan)
			log_info("task %s: a full rescan was asked for (see above)", w->name);
		struct intake_counts c = {.accepted = (unsigned)n,
					  .backlog = st.count,
					  .rescan = w->rescan,
					  .seen = w->seen};
		w->kick(w->ctx, &c, 0);
	}
	evring_clear(w->seen); /* not kept: a rescan finds them */
	free(ev);
	pending_clear(p);
	w->rescan = false;
	w->first = 0;
}

static void changed(struct dirwatch *w, const char *key, const char *kind)
{
	evring_add(w->seen, "inotify", kind, key, strlen(key), "accepted", NULL);
	pending_add(w, key);
	double now = now_mono();
	if (!w->first)
		w->first = now;
	w->last = now;
}

/* A rescan covers every pending key: they are dropped. */
static void want_rescan(struct dirwatch *w, const char *why)
{
	log_info("task %s: %s", w->name, why);
	evring_add(w->seen, "inotify", "rescan", "", 0, "accepted", why);
	pending_clear(&w->pending);
	w->rescan = true;
	double now = now_mono();
	if (!w->first)
		w->first = now;
	w->last = now;
}

/* ---- watches ---- */

static void set_dir(struct dirwatch *w, int wd, const char *rel)
{
	if ((size_t)wd >= w->n_dirs) {
		size_t n = (size_t)wd + 64;
		w->dirs = xrealloc(w->dirs, n * sizeof(*w->dirs));
		memset(w->dirs + w->n_dirs, 0, (n - w->n_dirs) * sizeof(*w->dirs));
		w->n_dirs = n;
	}
	if (!w->dirs[wd])
		w->watches++;
	free(w->dirs[wd]);
	w->dirs[wd] = xstrdup(rel);
}

/* Watch the directory rel ("" or "a/b/") and everything under it; with
 * files, take the files in it as changed. */
static void watch_tree(struct dirwatch *w, const char *rel, bool files, int depth)
{
	if (depth > DEPTH_MAX) {
		want_rescan(w, "a directory is nested too deep to watch");
		return;
	}
	struct buf path = BUF_INIT;
	buf_addf(&path, "%s/%s", w->root, rel);
	int wd = inotify_add_watch(w->fd, path.data, DIR_MASK);
	if (wd < 0) {
		if (errno == ENOSPC && !w->told_limit) {
			w->told_limit = true;
			log_warn(
			    "task %s: cannot watch %s: the inotify watch limit is reached "
			    "(raise fs.inotify.max_user_watches); its changes wait for rescans",
			    w->name, path.data);
		}
		if (errno != ENOENT && errno != ENOTDIR)
			w->rescan = true;
		buf_release(&path);
		return;
	}
	set_dir(w, wd, rel);
	int dfd = open(path.data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		buf_release(&path);
		return;
	}
	struct dirent *de;
	struct buf key = BUF_INIT;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		buf_reset(&key);
		buf_addf(&key, "%s%s", rel, de->d_name);
		if (S_ISDIR(st.st_mode)) {
			buf_addch(&key, '/');
			watch_tree(w, key.data, files, depth + 1);
		} else if (files && S_ISREG(st.st_mode)) {
			changed(w, key.data, "put");
		}
	}
	closedir(d);
	buf_release(&key);
	buf_release(&path);
}

/* Stop watching the directory rel ("a/b/") and those under it: it was moved
 * away, maybe out of the tree (a move within it watches it again under its
 * new name). Their IN_IGNORED events free the entries. */
static void unwatch_tree(struct dirwatch *w, const char *rel)
{
	size_t n = strlen(rel);
	for (size_t wd = 0; wd < w->n_dirs; wd++)
		if (w->dirs[wd] && !strncmp(w->dirs[wd], rel, n))
			inotify_rm_watch(w->fd, (int)wd);
}

/* One event. */
static void on_event(struct dirwatch *w, const struct inotify_event *e)
{
	if (e->mask & IN_Q_OVERFLOW) {
		want_rescan(w, "the kernel dropped change events (IN_Q_OVERFLOW)");
		return;
	}
	if (e->wd < 0 || (size_t)e->wd >= w->n_dirs || !w->dirs[e->wd])
		return;
	const char *dir = w->dirs[e->wd];
	if (e->mask & IN_IGNORED) { /* the directory is gone, or moved out */
		free(w->dirs[e->wd]);
		w->dirs[e->wd] = NULL;
		w->watches--;
		return;
	}
	if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (!dir[0])
			want_rescan(w, "the source directory itself was removed or moved");
		return;
	}
	if (!e->len)
		return;
	struct buf key = BUF_INIT;
	buf_addf(&key, "%s%s", dir, e->name);
	if (e->mask & IN_ISDIR) {
		if (e->mask & (IN_CREATE | IN_MOVED_TO)) {
			buf_addch(&key, '/');
			watch_tree(w, key.data, true, 1);
		}
		if (e->mask & IN_MOVED_FROM) {
			buf_addch(&key, '/');
			unwatch_tree(w, key.data);
			want_rescan(w, "a directory was moved: its old keys are found by a rescan");
		}
	} else if (e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
		changed(w, key.data, "put");
	} else if (e->mask & (IN_MOVED_FROM | IN_DELETE)) {
		changed(w, key.data, "delete");
	} else if (e->mask & IN_ATTRIB) {
		changed(w, key.data, "attrib");
	}
	buf_release(&key);
}

static void read_events(struct dirwatch *w, char *buf)
{
	for (;;) {
		ssize_t n = read(w->fd, buf, READ_BUF);
		if (n <= 0)
			return;
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *e = (const struct inotify_event *)(buf + off);
			on_event(w, e);
			off += (ssize_t)(sizeof(*e) + e->len);
		}
	}
}

/* Milliseconds until the pending keys are due, -1 when none are. */
static int due_in(const struct dirwatch *w)
{
	if (!w->first)
		return -1;
	double now = now_mono();
	double t1 = w->last + DIRWATCH_QUIET_MS / 1000.0, t2 = w->first + DIRWATCH_HOLD_MS / 1000.0;
	double due = t1 < t2 ? t1 : t2;
	return due <= now ? 0 : (int)((due - now) * 1000) + 1;
}

static void *watch_main(void *arg)
{
	struct dirwatch *w = arg;
	char *buf = xmalloc(READ_BUF);
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pf[2] = {{w->fd, POLLIN, 0}, {w->wake[0], POLLIN, 0}};
		int rc = poll(pf, 2, due_in(w));
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0 && (pf[0].revents & POLLIN))
			read_events(w, buf);
		if (due_in(w) == 0)
			keep_pending(w);
	}
	read_events(w, buf); /* what happened before the stop was asked for */
	keep_pending(w);
	free(buf);
	return NULL;
}

struct dirwatch *dirwatch_start(const struct dirwatch_opts *o, struct dth_err *err)
{
	struct dirwatch *w = xcalloc(1, sizeof(*w));
	w->name = xstrdup(o->name);
	w->root = xstrdup(o->root);
	w->m = o->m;
	w->task = o->task;
	w->kick = o->kick;
	w->ctx = o->ctx;
	w->seen = evring_new();
	w->wake[0] = w->wake[1] = -1;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0 || pipe2(w->wake, O_CLOEXEC | O_NONBLOCK)) {
		err_set(err, -errno, "inotify: %s", strerror(errno));
		goto fail;
	}
	struct stat st;
	if (stat(w->root, &st) || !S_ISDIR(st.st_mode)) {
		err_set(err, -ENOENT, "cannot watch %s: not a directory", w->root);
		goto fail;
	}
	watch_tree(w, "", false, 0);
	if (!w->watches) {
		err_set(err, -EIO, "cannot watch %s (the inotify limits?)", w->root);
		goto fail;
	}
	/* What changed while nothing watched (the agent down, the task
	 * stopped or just defined) only a rescan finds. */
	want_rescan(w, "watching begins: a rescan catches up with earlier changes");
	if (pthread_create(&w->thread, NULL, watch_main, w)) {
		err_set(err, -EAGAIN, "cannot start the watcher thread");
		goto fail;
	}
	w->started = true;
	return w;
fail:
	dirwatch_free(w);
	return NULL;
}

void dirwatch_signal(struct dirwatch *w)
{
	if (!w)
		return;
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	if (w->wake[1] >= 0)
		(void)!write(w->wake[1], "x", 1);
}

void dirwatch_free(struct dirwatch *w)
{
	if (!w)
		return;
	if (w->started) {
		dirwatch_signal(w);
		pthread_join(w->thread, NULL);
	}
	if (w->fd >= 0)
		close(w->fd);
	for (int i = 0; i < 2; i++)
		if (w->wake[i] >= 0)
			close(w->wake[i]);
	for (size_t i = 0; i < w->n_dirs; i++)
		free(w->dirs[i]);
	free(w->dirs);
	pending_clear(&w->pending);
	free(w->pending.keys);
	evring_free(w->seen);
	free(w->name);
	free(w->root);
	free(w);
}

uint64_t dirwatch_watches(const struct dirwatch *w)
{
	return w->watches;
}
