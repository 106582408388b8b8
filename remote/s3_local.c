/* A directory tree read as a bucket (s3_local.h). Every read opens the file
 * beneath the root's descriptor, takes its identity with fstat before and
 * after reading, and refuses a file whose identity moved meanwhile. */
#include "common/compat.h"

#include "remote/s3_local.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "remote/dirlist.h"

#define READ_CHUNK (1u << 20) /* bytes a streamed read hands the sink at once */

struct s3_local {
	char *root;
	int fd; /* the root directory */
};

struct s3_local_lister {
	struct s3_local *l;
	char *prefix, *start_after, *end_before;
	struct dirlist *d;
	bool done;
	int failed;
	struct dth_err fail_err;
};

int s3_local_open(const char *root, struct s3_local **out, struct dth_err *err)
{
	*out = NULL;
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return err_set(err, -e, "%s: %s", root,
			       e == ENOTDIR ? "not a directory" : strerror(e));
	}
	struct s3_local *l = xcalloc(1, sizeof(*l));
	l->root = xstrdup(root);
	l->fd = fd;
	*out = l;
	return 0;
}

void s3_local_free(struct s3_local *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l->root);
	free(l);
}

const char *s3_local_root(const struct s3_local *l)
{
	return l->root;
}

int s3_local_check(struct s3_local *l, struct dth_err *err)
{
	struct stat st;
	if (fstat(l->fd, &st) || !S_ISDIR(st.st_mode) || st.st_nlink == 0)
		return err_set(err, -ENOENT, "%s: the directory is gone", l->root);
	if (faccessat(l->fd, ".", R_OK | X_OK, AT_EACCESS))
		return err_set(err, -EACCES, "%s: cannot read the directory: %s", l->root,
			       strerror(errno));
	return 0;
}

void s3_local_etag(int64_t mtime_sec, long mtime_nsec, uint64_t ino, char out[S3_ETAG_MAX])
{
	xsnprintf(out, S3_ETAG_MAX, "fs:%" PRId64 ".%09ld:%" PRIu64, mtime_sec, mtime_nsec, ino);
}

static void etag_of(const struct stat *st, char out[S3_ETAG_MAX])
{
	s3_local_etag((int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (uint64_t)st->st_ino, out);
}

/* Content-Type by extension, for the common kinds of files people mirror to
 * buckets that are served on the web. */
static const char *content_type_of(const char *key)
{
	static const char *const types[][2] = {
	    {"html", "text/html"},
	    {"htm", "text/html"},
	    {"css", "text/css"},
	    {"js", "text/javascript"},
	    {"mjs", "text/javascript"},
	    {"json", "application/json"},
	    {"txt", "text/plain"},
	    {"csv", "text/csv"},
	    {"xml", "application/xml"},
	    {"svg", "image/svg+xml"},
	    {"png", "image/png"},
	    {"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},
	    {"webp", "image/webp"},
	    {"ico", "image/vnd.microsoft.icon"},
	    {"pdf", "application/pdf"},
	    {"zip", "application/zip"},
	    {"gz", "application/gzip"},
	    {"tar", "application/x-tar"},
	    {"wasm", "application/wasm"},
	    {"mp4", "video/mp4"},
	    {"mp3", "audio/mpeg"},
	    {"woff2", "font/woff2"},
	    {"parquet", "application/vnd.apache.parquet"},
	};
	const char *slash = strrchr(key, '/');
	const char *dot = strrchr(slash ? slash + 1 : key, '.');
	if (!dot || !dot[1])
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++)
		if (!strcasecmp(dot + 1, types[i][0]))
			return types[i][1];
	return NULL;
}

static void head_of(const char *key, const struct stat *st, struct s3_object_head *h)
{
	memset(h, 0, sizeof(*h));
	h->size = h->total_size = (uint64_t)st->st_size;
	etag_of(st, h->etag);
	h->last_modified = (int64_t)st->st_mtim.tv_sec;
	const char *ct = content_type_of(key);
	if (ct)
		h->meta.content_type = xstrdup(ct);
}

/* Open key for reading beneath the root, never through a symbolic link. The
 * descriptor is returned (>= 0) with st filled, or a negative errno. */
static int open_key(struct s3_local *l, const char *key, struct stat *st, struct dth_err *err)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	int fd = (int)syscall(SYS_openat2, l->fd, key, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) {
		/* Kernels before 5.6: no key climbs out with "..", and the file
		 * itself is not a link. */
		if (!strcmp(key, "..") || !strncmp(key, "../", 3) || strstr(key, "/../") ||
		    (strlen(key) >= 3 && !strcmp(key + strlen(key) - 3, "/.."))) {
			errno = ENOENT;
		} else {
			fd = openat(l->fd, key, (int)how.flags);
		}
	}
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP || e == EXDEV || e == ENOTDIR || e == EISDIR)
			e = ENOENT; /* a link, outside the tree, or not a file: no object */
		return err_set(err, -e, "%s/%s: %s", l->root, key, strerror(e));
	}
	if (fstat(fd, st) || !S_ISREG(st->st_mode)) {
		close(fd);
		return err_set(err, -ENOENT, "%s/%s: not a regular file", l->root, key);
	}
	return fd;
}

int s3_local_head(struct s3_local *l, const char *key, struct s3_object_head *out,
		  struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	struct stat st;
	int fd = open_key(l, key, &st, err);
	if (fd < 0)
		return fd;
	close(fd);
	head_of(key, &st, out);
	return 0;
}

/* The identity a read started from is still the file's. */
static int still_same(struct s3_local *l, const char *key, int fd, const struct stat *before,
		      struct dth_err *err)
{
	struct stat now;
	if (fstat(fd, &now))
		return err_set(err, -errno, "%s/%s: %s", l->root, key, strerror(errno));
	if (now.st_size != before->st_size || now.st_ino != before->st_ino ||
	    now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != before->st_mtim.tv_nsec)
		return err_set(err, -ESTALE, "%s/%s: the file changed while it was read", l->root,
			       key);
	return 0;
}

/* Open key for a read of [offset, offset+*length): checks if_match and the
 * range (length 0 becomes the rest of the file). */
static int open_range(struct s3_local *l, const char *key, uint64_t offset, uint64_t *length,
		      const char *if_match, struct stat *st, struct dth_err *err)
{
	int fd = open_key(l, key, st, err);
	if (fd < 0)
		return fd;
	char tag[S3_ETAG_MAX];
	etag_of(st, tag);
	uint64_t size = (uint64_t)st->st_size;
	int rc = 0;
	if (if_match && strcmp(if_match, tag) != 0)
		rc = err_set(err, -ESTALE, "%s/%s: the file changed since it was listed", l->root,
			     key);
	else if (*length == 0 && offset <= size)
		*length = size - offset;
	else if (offset + *length < offset || offset + *length > size)
		rc = err_set(err, -ERANGE,
			     "%s/%s: bytes %" PRIu64 "+%" PRIu64 " beyond its %" PRIu64, l->root,
			     key, offset, *length, size);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Read exactly n bytes at off into dst. */
static int read_at(struct s3_local *l, const char *key, int fd, void *dst, size_t n, uint64_t off,
		   struct dth_err *err)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)dst + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(err, -EIO, "%s/%s: reading: %s", l->root, key,
				       strerror(errno));
		if (r == 0)
			return err_set(err, -ESTALE, "%s/%s: the file shrank while it was read",
				       l->root, key);
		got += (size_t)r;
	}
	return 0;
}

int s3_local_get(struct s3_local *l, const char *key, uint64_t offset, uint64_t length,
		 const char *if_match, struct buf *out, struct s3_object_head *head_out,
		 struct dth_err *err)
{
	if (head_out)
		memset(head_out, 0, sizeof(*head_out));
	struct stat st;
	int fd = open_range(l, key, offset, &length, if_match, &st, err);
	if (fd < 0)
		return fd;
	if (length > SIZE_MAX / 2) {
		close(fd);
		return err_set(err, -EFBIG, "%s/%s: too large to read at once", l->root, key);
	}
	size_t start = out->len;
	buf_grow(out, (size_t)length);
	int rc = read_at(l, key, fd, out->data + start, (size_t)length, offset, err);
	if (!rc)
		rc = still_same(l, key, fd, &st, err);
	close(fd);
	if (rc) {
		buf_setlen(out, start);
		return rc;
	}
	out->len = start + (size_t)length;
	out->data[out->len] = '\0';
	if (head_out) {
		head_of(key, &st, head_out);
		head_out->size = length;
	}
	return 0;
}

int s3_local_get_to(struct s3_local *l, const char *key, uint64_t offset, uint64_t length,
		    const char *if_match, http_sink_fn sink, void *sink_ctx, struct dth_err *err)
{
	if (length == 0)
		return err_set(err, -EINVAL, "GetObject: empty range");
	struct stat st;
	int fd = open_range(l, key, offset, &length, if_match, &st, err);
	if (fd < 0)
		return fd;
	size_t cap = length < READ_CHUNK ? (size_t)length : READ_CHUNK;
	char *chunk = xmalloc(cap);
	int rc = 0;
	for (uint64_t done = 0; done < length && !rc;) {
		size_t n = length - done < cap ? (size_t)(length - done) : cap;
		rc = read_at(l, key, fd, chunk, n, offset + done, err);
		if (!rc && (rc = sink(sink_ctx, chunk, n)))
			err_set(err, rc, "%s/%s: the reader stopped: %s", l->root, key,
				strerror(-rc));
		done += n;
	}
	if (!rc)
		rc = still_same(l, key, fd, &st, err);
	free(chunk);
	close(fd);
	return rc;
}

/* ---- listing ---- */

static char *dup_opt(const char *s)
{
	return s && *s ? xstrdup(s) : NULL;
}

struct s3_local_lister *s3_local_lister_new(struct s3_local *l, const struct s3_list_opts *opts)
{
	struct s3_local_lister *ll = xcalloc(1, sizeof(*ll));
	ll->l = l;
	if (opts) {
		ll->prefix = dup_opt(opts->prefix);
		ll->start_after = dup_opt(opts->start_after);
		ll->end_before = dup_opt(opts->end_before);
	}
	return ll;
}

void s3_local_lister_free(struct s3_local_lister *ll)
{
	if (!ll)
		return;
	dirlist_free(ll->d);
	free(ll->prefix);
	free(ll->start_after);
	free(ll->end_before);
	free(ll);
}

static int cmp_key(const char *a, size_t al, const char *b)
{
	size_t bl = strlen(b), n = al < bl ? al : bl;
	int c = memcmp(a, b, n);
	return c ? c : (al > bl) - (al < bl);
}

int s3_local_lister_next(struct s3_local_lister *ll, struct s3_list_entry *e, struct dth_err *err)
{
	memset(e, 0, sizeof(*e));
	if (ll->failed) {
		*err = ll->fail_err;
		return ll->failed;
	}
	if (ll->done)
		return 0;
	int rc = 0;
	if (!ll->d && (rc = dirlist_open(ll->l->root, &ll->d, err)))
		goto fail;
	struct dirlist_entry de;
	while ((rc = dirlist_next(ll->d, &de, err)) == 1) {
		if (ll->prefix && strncmp(de.key, ll->prefix, strlen(ll->prefix)) != 0)
			continue;
		if (ll->start_after && cmp_key(de.key, de.key_len, ll->start_after) <= 0)
			continue;
		if (ll->end_before && cmp_key(de.key, de.key_len, ll->end_before) >= 0)
			break;
		e->key = de.key;
		e->key_len = de.key_len;
		e->size = de.size;
		int64_t sec = de.mtime_ns / 1000000000;
		long nsec = (long)(de.mtime_ns % 1000000000);
		if (nsec < 0) { /* before 1970: as struct stat has it */
			nsec += 1000000000;
			sec--;
		}
		s3_local_etag(sec, nsec, de.ino, e->etag);
		e->last_modified = sec;
		return 1;
	}
	if (rc == 0 || rc == 1) {
		ll->done = true;
		return 0;
	}
fail:
	ll->failed = rc;
	ll->fail_err = *err;
	return rc;
}
