/* Directory trees in key order (dirlist.h). A stack of frames, one per
 * directory on the current path, each holding that directory's entries
 * sorted (subdirectories as "name/") and the index of the next one. Entries
 * are read with openat/fstatat relative to their directory's descriptor, so
 * a path is never resolved twice and a rename during the walk cannot send it
 * elsewhere. */
#include "common/compat.h"

#include "remote/dirlist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"

#define DEPTH_MAX 256

struct ent {
	char *name;
	size_t len;
	bool dir;
	struct stat st;
};

struct frame {
	int fd;
	struct ent *ents;
	size_t n, next;
	size_t key_len; /* of the key prefix ("" or "a/b/") for this directory */
};

struct dirlist {
	char *root;
	struct frame stack[DEPTH_MAX];
	int depth;
	struct buf key;
	uint64_t skipped;
};

/* Byte order of the names as keys: a directory's name ends with '/'. */
static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	if (c)
		return c;
	unsigned cx = x->len > n ? (unsigned char)x->name[n] : x->dir ? '/' : 0;
	unsigned cy = y->len > n ? (unsigned char)y->name[n] : y->dir ? '/' : 0;
	if (cx != cy)
		return cx < cy ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

static void frame_release(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->ents[i].name);
	free(f->ents);
	if (f->fd >= 0)
		close(f->fd);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

/* Read directory fd (owned by the frame from now on) into f, sorted. */
static int frame_fill(struct dirlist *d, struct frame *f, int fd, struct dth_err *err)
{
	f->fd = fd;
	int dup_fd = dup(fd);
	DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!dir) {
		int e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return err_set(err, -e, "%s/%s: cannot read the directory: %s", d->root,
			       d->key.data ? d->key.data : "", strerror(e));
	}
	size_t cap = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue; /* gone since it was read */
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			d->skipped++;
			continue;
		}
		if (f->n == cap) {
			cap = cap ? 2 * cap : 64;
			f->ents = xrealloc(f->ents, cap * sizeof(*f->ents));
		}
		struct ent *en = &f->ents[f->n++];
		en->len = strlen(de->d_name);
		en->name = xstrndup(de->d_name, en->len);
		en->dir = S_ISDIR(st.st_mode);
		en->st = st;
		errno = 0;
	}
	int e = errno;
	closedir(dir);
	if (e)
		return err_set(err, -e, "%s/%s: reading the directory: %s", d->root,
			       d->key.data ? d->key.data : "", strerror(e));
	if (f->n > 1)
		qsort(f->ents, f->n, sizeof(*f->ents), ent_cmp);
	f->key_len = d->key.len;
	return 0;
}

int dirlist_open(const char *root, struct dirlist **out, struct dth_err *err)
{
	*out = NULL;
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, "%s: %s", root, strerror(errno));
	struct dirlist *d = xcalloc(1, sizeof(*d));
	d->root = xstrdup(root);
	buf_init(&d->key);
	for (int i = 0; i < DEPTH_MAX; i++)
		d->stack[i].fd = -1;
	int rc = frame_fill(d, &d->stack[0], fd, err);
	if (rc) {
		dirlist_free(d);
		return rc;
	}
	d->depth = 1;
	*out = d;
	return 0;
}

/* Enter subdirectory en of the top frame. */
static int descend(struct dirlist *d, const struct ent *en, struct dth_err *err)
{
	struct frame *top = &d->stack[d->depth - 1];
	if (d->depth >= DEPTH_MAX)
		return err_set(err, -ELOOP, "%s/%s%s: deeper than %d levels", d->root,
			       d->key.data ? d->key.data : "", en->name, DEPTH_MAX);
	int fd = openat(top->fd, en->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* removed since its parent was read: nothing under it now */
	buf_add(&d->key, en->name, en->len);
	buf_addch(&d->key, '/');
	if (fd < 0)
		return err_set(err, -errno, "%s/%s: cannot open the directory: %s", d->root,
			       d->key.data, strerror(errno));
	int rc = frame_fill(d, &d->stack[d->depth], fd, err);
	if (!rc)
		d->depth++;
	return rc;
}

int dirlist_next(struct dirlist *d, struct dirlist_entry *e, struct dth_err *err)
{
	while (d->depth > 0) {
		struct frame *top = &d->stack[d->depth - 1];
		if (top->next == top->n) {
			frame_release(top);
			d->depth--;
			if (d->depth > 0)
				buf_setlen(&d->key, d->stack[d->depth - 1].key_len);
			continue;
		}
		const struct ent *en = &top->ents[top->next++];
		buf_setlen(&d->key, top->key_len);
		if (en->dir) {
			int rc = descend(d, en, err);
			if (rc)
				return rc;
			continue;
		}
		buf_add(&d->key, en->name, en->len);
		e->key = d->key.data;
		e->key_len = d->key.len;
		e->size = (uint64_t)en->st.st_size;
		e->mtime_ns = (int64_t)en->st.st_mtim.tv_sec * 1000000000 + en->st.st_mtim.tv_nsec;
		e->ino = (uint64_t)en->st.st_ino;
		e->dev = (uint64_t)en->st.st_dev;
		return 1;
	}
	return 0;
}

uint64_t dirlist_skipped(const struct dirlist *d)
{
	return d->skipped;
}

void dirlist_free(struct dirlist *d)
{
	if (!d)
		return;
	for (int i = 0; i < DEPTH_MAX; i++)
		if (d->stack[i].ents || d->stack[i].fd >= 0)
			frame_release(&d->stack[i]);
	buf_release(&d->key);
	free(d->root);
	free(d);
}
