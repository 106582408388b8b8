#include "common/compat.h"

#include "agent/complete.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "manifest/manifest.h"
#include "remote/creds.h"
#include "remote/http.h"
#include "remote/remotes.h"
#include "remote/s3.h"

#define CACHE_MAGIC "dth-complete 1"

/* ---- names ---------------------------------------------------------------- */

void complete_remotes(const struct config *cfg, const char *word, const char *type,
		      const char *suffix, complete_emit_fn emit, void *ctx)
{
	for (size_t i = 0; cfg && i < config_remote_count(cfg); i++) {
		const struct remote_def *r = config_remote_at(cfg, i);
		const char *t = r->type ? r->type : "s3";
		if ((type && strcmp(t, type) != 0) || !str_startswith(r->name, word))
			continue;
		struct buf b = BUF_INIT;
		buf_addf(&b, "%s%s", r->name, suffix ? suffix : "");
		emit(ctx, buf_str(&b));
		buf_release(&b);
	}
}

struct names {
	char **v;
	size_t n, cap;
};

static bool names_has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return true;
	return false;
}

static void names_add(struct names *s, const char *name)
{
	if (names_has(s, name))
		return;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = xstrdup(name);
}

static void names_release(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int task_cb(void *ctx, uint32_t id, const struct task_record *rec)
{
	(void)id;
	if (strcmp(rec->state, MANIFEST_TASK_PURGING) != 0)
		names_add(ctx, rec->name);
	return 0;
}

int complete_tasks(const struct config *cfg, const char *state_dir, const char *word,
		   complete_emit_fn emit, void *ctx)
{
	struct names all = {0};
	size_t n = 0;
	const struct config_section *const *secs = cfg ? config_sections(cfg, "task", &n) : NULL;
	for (size_t i = 0; i < n; i++)
		names_add(&all, secs[i]->name);
	int rc = 0;
	if (state_dir) {
		struct dth_err err;
		err_clear(&err);
		struct stat st;
		if (stat(state_dir, &st) != 0) {
			rc = -errno;
		} else {
			struct manifest *m = manifest_open(state_dir, MANIFEST_RDONLY, &err);
			if (!m) {
				rc = err.code ? err.code : -EIO;
			} else {
				rc = manifest_task_each(m, task_cb, &all);
				manifest_free(m);
			}
		}
	}
	for (size_t i = 0; i < all.n; i++)
		if (str_startswith(all.v[i], word))
			emit(ctx, all.v[i]);
	names_release(&all);
	return rc;
}

/* ---- cache ---------------------------------------------------------------- */

char *complete_cache_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME");
	struct buf b = BUF_INIT;
	if (x && x[0] == '/')
		buf_addf(&b, "%s/dth/complete", x);
	else if ((x = getenv("HOME")) && x[0] == '/')
		buf_addf(&b, "%s/.cache/dth/complete", x);
	else
		return NULL;
	return buf_detach(&b, NULL);
}

static void cache_file(const char *dir, const char *key, struct buf *out)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65];
	EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 16, hex);
	buf_addf(out, "%s/%s", dir, hex);
}

/* 0 when st is ours and private (no group or other bits). */
static int private_to_us(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & 077) ? 0 : -EPERM;
}

static int check_dir(const char *dir)
{
	struct stat st;
	if (lstat(dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -EPERM;
	return private_to_us(&st);
}

int complete_cache_get(const char *dir, const char *key, unsigned ttl_s, struct buf *out,
		       bool *truncated)
{
	int rc = check_dir(dir);
	if (rc)
		return rc;
	struct buf path = BUF_INIT, data = BUF_INIT;
	cache_file(dir, key, &path);
	int fd = open(buf_str(&path), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	buf_release(&path);
	if (fd < 0)
		return errno == ELOOP ? -EPERM : -errno;
	struct stat st;
	time_t now = time(NULL);
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (rc = private_to_us(&st)))
		goto out;
	if (st.st_mtime > now || now - st.st_mtime >= (time_t)ttl_s) {
		rc = -ENOENT;
		goto out;
	}
	char chunk[65536];
	ssize_t got;
	while ((got = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&data, chunk, (size_t)got);
	if (got < 0) {
		rc = -errno;
		goto out;
	}
	/* "dth-complete 1 T\n" then the entries, each ending in '\n' */
	const char *s = data.data ? data.data : "";
	size_t hl = strlen(CACHE_MAGIC);
	if (data.len < hl + 3 || memcmp(s, CACHE_MAGIC " ", hl + 1) != 0 ||
	    (s[hl + 1] != '0' && s[hl + 1] != '1') || s[hl + 2] != '\n' ||
	    s[data.len - 1] != '\n' || memchr(s, '\0', data.len)) {
		rc = -ENOENT; /* not ours, or cut short: as if absent */
		goto out;
	}
	*truncated = s[hl + 1] == '1';
	buf_add(out, s + hl + 3, data.len - (hl + 3));
	rc = 0;
out:
	close(fd);
	buf_release(&data);
	return rc;
}

int complete_cache_put(const char *dir, const char *key, const char *entries, size_t len,
		       bool truncated)
{
	int rc = check_dir(dir);
	if (rc == -ENOENT && !(rc = mkdir_p(dir)))
		rc = check_dir(dir);
	if (rc)
		return rc;
	struct buf path = BUF_INIT, tmp = BUF_INIT;
	cache_file(dir, key, &path);
	buf_addf(&tmp, "%s.%ld.tmp", buf_str(&path), (long)getpid());
	int fd = open(buf_str(&tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s %c\n", CACHE_MAGIC, truncated ? '1' : '0');
	buf_add(&b, entries, len);
	size_t off = 0;
	while (off < b.len) {
		ssize_t w = write(fd, b.data + off, b.len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		off += (size_t)w;
	}
	buf_release(&b);
	if (close(fd) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(buf_str(&tmp), buf_str(&path)) != 0)
		rc = -errno;
	if (rc)
		unlink(buf_str(&tmp));
out:
	buf_release(&path);
	buf_release(&tmp);
	return rc;
}

/* ---- paths ---------------------------------------------------------------- */

struct collect {
	struct buf *out;
	size_t n;
};

static int bucket_cb(void *ctx, const char *name)
{
	struct collect *c = ctx;
	if (strchr(name, '\n'))
		return 0;
	buf_adds(c->out, name);
	buf_addch(c->out, '\n');
	c->n++;
	return 0;
}

/* One listing (ListBuckets when bucket is NULL) into out, entries ending in
 * '\n'; *truncated when COMPLETE_LIST_MAX entries came. */
static int list_once(const struct remote_def *r, long connect_timeout_ms, const char *bucket,
		     const char *prefix, struct buf *out, bool *truncated)
{
	struct http_engine_opts ho;
	memset(&ho, 0, sizeof(ho));
	ho.tls_verify = r->tls_verify;
	ho.ca_file = r->ca_file;
	ho.connect_timeout_ms = connect_timeout_ms;
	ho.stall_timeout_s = connect_timeout_ms / 1000 + 1;
	struct http_engine *http = http_engine_new(&ho);
	if (!http)
		return -ENOMEM;
	struct remote_def d = *r; /* shallow: strings stay the config's */
	d.retries = 0;
	struct creds_provider *creds = NULL;
	struct s3_client *c = NULL;
	struct dth_err err;
	err_clear(&err);
	int rc = remote_open_s3(&d, http, &creds, &c, &err);
	*truncated = false;
	if (!rc && !bucket) {
		struct collect col = {out, 0};
		rc = s3_list_buckets(c, bucket_cb, &col, &err);
	} else if (!rc) {
		struct s3_list_opts lo = {
		    .prefix = prefix, .delimiter = "/", .max_keys = COMPLETE_LIST_MAX};
		struct s3_lister *l = s3_lister_new(c, bucket, &lo);
		const struct s3_list_entry *e;
		size_t n = 0;
		/* one page: never ask for the next */
		while (n < COMPLETE_LIST_MAX && (rc = s3_lister_next(l, &e, &err)) == 1) {
			n++;
			if (memchr(e->key, '\n', e->key_len) || strlen(e->key) != e->key_len)
				continue;
			buf_add(out, e->key, e->key_len);
			buf_addch(out, '\n');
		}
		if (rc >= 0) {
			*truncated = n == COMPLETE_LIST_MAX;
			rc = 0;
		}
		s3_lister_free(l);
	}
	s3_client_free(c);
	creds_provider_free(creds);
	http_engine_free(http);
	return rc;
}

/* The answer of one listing, from the cache when fresh there. */
static int listing(const struct config *cfg, const struct remote_def *r, const char *bucket,
		   const char *prefix, const char *cache_dir, unsigned ttl_s,
		   long connect_timeout_ms, struct buf *out, bool *truncated)
{
	struct buf key = BUF_INIT;
	const char *cp = config_path(cfg);
	/* what the answer depends on; the access key id is no secret (the
	 * secret key never enters the key) */
	buf_addf(&key, "%s\n%s\n%s\n%s\n%s\n%s\n%s", cp ? cp : "", r->name,
		 r->endpoint ? r->endpoint : "", r->access_key_id ? r->access_key_id : "",
		 r->credentials ? r->credentials : "", bucket ? bucket : "", prefix ? prefix : "");
	int rc = -ENOENT;
	if (cache_dir)
		rc = complete_cache_get(cache_dir, buf_str(&key), ttl_s, out, truncated);
	if (rc) {
		buf_reset(out);
		rc = list_once(r, connect_timeout_ms, bucket, prefix, out, truncated);
		/* without a cache, the next completion lists again */
		if (!rc && cache_dir &&
		    complete_cache_put(cache_dir, buf_str(&key), out->data ? out->data : "",
				       out->len, *truncated) != 0)
			rc = 0;
	}
	buf_release(&key);
	return rc;
}

/* Emit head + each entry of list (lines) starting with want. */
static void emit_matching(const struct buf *list, const char *head, const char *want,
			  const char *tail, complete_emit_fn emit, void *ctx)
{
	const char *s = list->data ? list->data : "";
	const char *end = s + list->len;
	struct buf b = BUF_INIT;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			break;
		size_t len = (size_t)(nl - s);
		size_t wl = strlen(want);
		if (len >= wl && !memcmp(s, want, wl)) {
			buf_reset(&b);
			buf_adds(&b, head);
			buf_add(&b, s, len);
			buf_adds(&b, tail);
			emit(ctx, buf_str(&b));
		}
		s = nl + 1;
	}
	buf_release(&b);
}

int complete_path(const struct config *cfg, const char *word, const char *cache_dir, unsigned ttl_s,
		  long connect_timeout_ms, complete_emit_fn emit, void *ctx)
{
	const char *colon = strchr(word, ':');
	if (!colon) {
		complete_remotes(cfg, word, "s3", ":", emit, ctx);
		return 0;
	}
	char *name = xstrndup(word, (size_t)(colon - word));
	const struct remote_def *r = cfg ? config_remote(cfg, name) : NULL;
	const char *rest = colon + 1;
	const char *slash = strchr(rest, '/');
	struct buf list = BUF_INIT, head = BUF_INIT;
	bool truncated = false;
	int rc = 0;
	if (!r) {
		rc = -ENOENT;
	} else if (r->type && strcmp(r->type, "s3") != 0) {
		rc = -EINVAL;
	} else if (!slash) {
		rc = listing(cfg, r, NULL, NULL, cache_dir, ttl_s, connect_timeout_ms, &list,
			     &truncated);
		buf_addf(&head, "%s:", name);
		if (!rc)
			emit_matching(&list, buf_str(&head), rest, "/", emit, ctx);
	} else {
		char *bucket = xstrndup(rest, (size_t)(slash - rest));
		const char *pre = slash + 1;
		const char *last = strrchr(pre, '/');
		char *dir = xstrndup(pre, last ? (size_t)(last - pre) + 1 : 0);
		rc = listing(cfg, r, bucket, dir, cache_dir, ttl_s, connect_timeout_ms, &list,
			     &truncated);
		if (!rc && truncated && strlen(pre) > strlen(dir)) {
			/* the directory is larger than a page: list the prefix itself */
			buf_reset(&list);
			rc = listing(cfg, r, bucket, pre, cache_dir, ttl_s, connect_timeout_ms,
				     &list, &truncated);
		}
		buf_addf(&head, "%s:%s/", name, bucket);
		if (!rc)
			emit_matching(&list, buf_str(&head), pre, "", emit, ctx);
		free(bucket);
		free(dir);
	}
	buf_release(&list);
	buf_release(&head);
	free(name);
	return rc;
}
