/* Image mirroring: see image.h. */
#include "common/compat.h"

#include "agent/image.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "agent/fairshare.h"
#include "common/buf.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "manifest/manifest.h"
#include "remote/exec.h"
#include "remote/oci.h"
#include "remote/registry.h"

#define IMAGE_CHUNK	   (8u << 20) /* blobs larger than this go up in PATCHes of ~8 MiB */
#define IMAGE_MAX_DEPTH	   2	      /* an index of indexes at most */
#define IMAGE_DEFAULT_CONC 8
#define IMAGE_TAG_WORKERS  4 /* tags copied at once: min(this, concurrency) */

/* Add n to counter f of the run's live progress counters, if any. */
#define PG_ADD(o, f, n)                                                                            \
	do {                                                                                       \
		if ((o)->progress)                                                                 \
			__atomic_add_fetch(&(o)->progress->f, (uint64_t)(n), __ATOMIC_RELAXED);    \
	} while (0)

struct blob_desc {
	char digest[REGISTRY_DIGEST_MAX];
	uint64_t size;
};

struct tag_job {
	struct tag_job *next;
	char *repo, *tag, *dst_repo;
};

/* Blobs known present at the destination during a run, as 64-bit hashes of
 * "REPO@DIGEST" in a fixed open-addressing table: constant memory however
 * many blobs a run sees. It is only a shortcut: when half full it is emptied,
 * and a blob no longer in it is found again through the blobs database or a
 * HEAD. */
#define SEEN_SLOTS ((size_t)1 << 16)
struct seen_set {
	uint64_t *slot; /* 0: empty */
	size_t used;
};

static uint64_t seen_hash(const char *repo, const char *digest)
{
	struct buf k = BUF_INIT;
	buf_addf(&k, "%s@%s", repo, digest);
	uint64_t h = XXH3_64bits(k.data, k.len);
	buf_release(&k);
	return h ? h : 1;
}

static bool seen_has(const struct seen_set *s, uint64_t h)
{
	for (size_t i = h & (SEEN_SLOTS - 1);; i = (i + 1) & (SEEN_SLOTS - 1)) {
		if (s->slot[i] == h)
			return true;
		if (s->slot[i] == 0)
			return false;
	}
}

/* Remove h (linear probing: the entries after it that would no longer be
 * found move back into the hole). */
static void seen_del(struct seen_set *s, uint64_t h)
{
	const size_t mask = SEEN_SLOTS - 1;
	size_t i = h & mask;
	while (s->slot[i] != h) {
		if (s->slot[i] == 0)
			return;
		i = (i + 1) & mask;
	}
	s->slot[i] = 0;
	s->used--;
	for (size_t j = (i + 1) & mask; s->slot[j]; j = (j + 1) & mask) {
		size_t home = s->slot[j] & mask;
		/* j's entry stays when its home lies cyclically in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		s->slot[i] = s->slot[j];
		s->slot[j] = 0;
		i = j;
	}
}

static void seen_add(struct seen_set *s, uint64_t h)
{
	if (seen_has(s, h))
		return;
	if (s->used >= SEEN_SLOTS / 2) {
		memset(s->slot, 0, SEEN_SLOTS * sizeof(*s->slot));
		s->used = 0;
	}
	size_t i = h & (SEEN_SLOTS - 1);
	while (s->slot[i])
		i = (i + 1) & (SEEN_SLOTS - 1);
	s->slot[i] = h;
	s->used++;
}

struct run {
	const struct image_sync_opts *o;
	struct manifest_writer *w;
	const char *dst_reg; /* the destination's base URL: the blobs db key */
	struct image_sync_result *res;
	pthread_mutex_t mu;	/* res counters, seen and inflight */
	pthread_cond_t blob_cv; /* an inflight entry went away */
	struct seen_set seen;	/* blobs known present during this run (a cache) */
	struct buf inflight;	/* same format: blobs being copied by some thread */
	/* "\nREPO\n" entries: destination repositories probed (their tags list),
	 * and of those the ones that did not exist (404) at the probe */
	pthread_mutex_t probe_mu;
	struct buf probed, fresh;
	pthread_mutex_t cb_mu; /* the hooks of the options: one call at a time */
	uint64_t unreachable_failures;
	bool catalog_unreachable; /* all: the catalog was refused or unreachable */
	/* tag queue: the calling thread queues, tag workers copy */
	pthread_mutex_t qmu;
	pthread_cond_t qcv;
	struct tag_job *qhead, *qtail;
	bool qclosed;
	unsigned active; /* tag workers inside sync_tag */
	unsigned conc;	 /* blob copies in parallel, all tags together */
	int wrc;	 /* first run-level (writer) failure of a tag worker */
};

/* Whether "\nKEY\n" (k) is an entry of set (r->mu held). */
static const char *set_find(const struct buf *set, const struct buf *k)
{
	return set->len ? memmem(set->data, set->len, k->data, k->len) : NULL;
}

static void set_add(struct buf *set, const char *repo, const char *digest)
{
	if (!set->len)
		buf_addch(set, '\n');
	buf_addf(set, "%s@%s\n", repo, digest);
}

/* Remember digest as present in repo and record it in the blobs db. */
static int blob_known(struct run *r, const char *repo, const char *digest, uint64_t size)
{
	uint64_t h = seen_hash(repo, digest);
	pthread_mutex_lock(&r->mu);
	seen_add(&r->seen, h);
	pthread_mutex_unlock(&r->mu);
	struct blob_record br;
	memset(&br, 0, sizeof(br));
	br.size = size;
	br.seen_at = (int64_t)time(NULL);
	return manifest_writer_put_blob(r->w, r->dst_reg, repo, digest, &br);
}

struct mount_pick {
	const char *repo;
	char from[CODEC_REPO_MAX];
};

static int pick_from(void *ctx, const struct blob_record *br)
{
	struct mount_pick *p = ctx;
	if (!strcmp(br->repo, p->repo))
		return 0;
	str_copy_fit(p->from, br->repo, sizeof(p->from));
	return 1;
}

struct stream {
	const struct image_sync_opts *o;
	struct registry_client *dst;
	struct registry_upload *up;
	bool chunked;
	struct buf pending;
	struct dth_err err;
	int rc;
};

static int stream_sink(void *ctx, const void *data, size_t len)
{
	struct stream *s = ctx;
	PG_ADD(s->o, bytes, len);
	buf_add(&s->pending, data, len);
	if (s->chunked && s->pending.len >= IMAGE_CHUNK) {
		s->rc =
		    registry_upload_chunk(s->dst, s->up, s->pending.data, s->pending.len, &s->err);
		if (s->rc)
			return s->rc;
		buf_reset(&s->pending);
	}
	return 0;
}

static void count_present(struct run *r)
{
	pthread_mutex_lock(&r->mu);
	r->res->blobs_present++;
	pthread_mutex_unlock(&r->mu);
}

static int count_tag(void *ctx, const char *name)
{
	(void)name;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* Whether dst_repo did not exist at the destination when first probed in this
 * run (its tags list answered 404): its blobs are then absent unless copied
 * in this run (the seen set), and need no HEAD. Any other answer: false.
 * Never after a crash: a repository the crashed run uploaded blobs into, but
 * pushed no tag to, answers 404 too, and what it holds may not be recorded. */
static bool repo_fresh(struct run *r, const char *dst_repo)
{
	if (r->o->after_crash)
		return false;
	struct buf k = BUF_INIT;
	buf_addf(&k, "\n%s\n", dst_repo);
	pthread_mutex_lock(&r->probe_mu);
	bool fresh;
	if (set_find(&r->probed, &k)) {
		fresh = set_find(&r->fresh, &k) != NULL;
	} else {
		struct dth_err e;
		err_clear(&e);
		uint64_t n = 0;
		int rc = registry_tags_list(r->o->dst, dst_repo, count_tag, &n, &e);
		fresh = rc == -ENOENT;
		if (!r->probed.len)
			buf_addch(&r->probed, '\n');
		buf_addf(&r->probed, "%s\n", dst_repo);
		if (fresh) {
			if (!r->fresh.len)
				buf_addch(&r->fresh, '\n');
			buf_addf(&r->fresh, "%s\n", dst_repo);
		}
	}
	pthread_mutex_unlock(&r->probe_mu);
	buf_release(&k);
	return fresh;
}

/* copy_blob for a blob this thread holds in r->inflight. recheck: the
 * destination is asked (HEAD) whatever the blobs db and the run know, and a
 * blob found there is not counted again. */
static int copy_blob_claimed(struct run *r, const char *src_repo, const char *dst_repo,
			     const struct blob_desc *b, bool recheck, struct dth_err *err)
{
	const struct image_sync_opts *o = r->o;
	struct blob_record br;
	if (!recheck && manifest_blob_get(o->manifest, r->dst_reg, dst_repo, b->digest, &br) == 0) {
		int wrc = blob_known(r, dst_repo, b->digest, br.size);
		if (wrc)
			return err_set(err, wrc, "manifest writer: %s", strerror(-wrc));
		goto present;
	}
	uint64_t size = 0;
	int rc = !recheck && repo_fresh(r, dst_repo)
		     ? -ENOENT
		     : registry_blob_head(o->dst, dst_repo, b->digest, &size, err);
	if (rc == 0) {
		rc = blob_known(r, dst_repo, b->digest, size);
		if (rc)
			return err_set(err, rc, "manifest writer: %s", strerror(-rc));
		if (recheck)
			return 0;
		goto present;
	}
	if (rc != -ENOENT)
		return rc;
	err_clear(err);

	struct registry_upload *up = NULL;
	struct mount_pick mp;
	memset(&mp, 0, sizeof(mp));
	mp.repo = dst_repo;
	if (manifest_blob_repos(o->manifest, r->dst_reg, b->digest, pick_from, &mp) < 0)
		mp.from[0] = '\0';
	if (mp.from[0]) {
		bool mounted = false;
		rc = registry_blob_mount(o->dst, dst_repo, b->digest, mp.from, &mounted, &up, err);
		if (rc == 0 && mounted) {
			failpoint_hit(FAILPOINT_BLOB_UPLOADED);
			rc = blob_known(r, dst_repo, b->digest, b->size);
			if (rc)
				return err_set(err, rc, "manifest writer: %s", strerror(-rc));
			pthread_mutex_lock(&r->mu);
			r->res->blobs++;
			r->res->blobs_mounted++;
			pthread_mutex_unlock(&r->mu);
			PG_ADD(o, blobs, 1);
			return 0;
		}
		if (rc) {
			log_debug("mount of %s from %s into %s failed: %s; uploading", b->digest,
				  mp.from, dst_repo, err->message);
			up = NULL;
			err_clear(err);
		}
	}
	if (!up) {
		rc = registry_upload_start(o->dst, dst_repo, &up, err);
		if (rc)
			return rc;
	}
	struct stream st;
	memset(&st, 0, sizeof(st));
	st.o = o;
	st.dst = o->dst;
	st.up = up;
	st.chunked = b->size > IMAGE_CHUNK;
	buf_init(&st.pending);
	err_clear(&st.err);
	uint64_t got = 0;
	rc = registry_blob_get(o->src, src_repo, b->digest, b->size, stream_sink, &st, &got, err);
	if (rc) {
		if (st.rc && rc == st.rc)
			*err = st.err;
		goto fail;
	}
	rc = registry_upload_finish(o->dst, up, b->digest, st.pending.data, st.pending.len, err);
	if (rc)
		goto fail;
	failpoint_hit(FAILPOINT_BLOB_UPLOADED);
	registry_upload_free(up);
	buf_release(&st.pending);
	rc = blob_known(r, dst_repo, b->digest, got);
	if (rc)
		return err_set(err, rc, "manifest writer: %s", strerror(-rc));
	pthread_mutex_lock(&r->mu);
	r->res->blobs++;
	r->res->bytes += got;
	pthread_mutex_unlock(&r->mu);
	PG_ADD(o, blobs, 1);
	return 0;
fail:
	registry_upload_cancel(o->dst, up);
	registry_upload_free(up);
	buf_release(&st.pending);
	return rc;

present:
	count_present(r);
	return 0;
}

/* Make one blob present in dst_repo: known, found, mounted or copied. A blob
 * another thread is copying into dst_repo is waited for, not copied twice
 * (copied again only when that copy failed). recheck: see copy_blob_claimed
 * (the run's set of blobs known present is not trusted either). */
static int copy_blob(struct run *r, const char *src_repo, const char *dst_repo,
		     const struct blob_desc *b, bool recheck, struct dth_err *err)
{
	struct buf k = BUF_INIT;
	buf_addf(&k, "\n%s@%s\n", dst_repo, b->digest);
	bool present = false;
	uint64_t h = seen_hash(dst_repo, b->digest);
	pthread_mutex_lock(&r->mu);
	for (;;) {
		if (!recheck && seen_has(&r->seen, h)) {
			present = true;
			break;
		}
		if (!set_find(&r->inflight, &k)) {
			set_add(&r->inflight, dst_repo, b->digest);
			break;
		}
		pthread_cond_wait(&r->blob_cv, &r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	int rc = 0;
	if (present) {
		count_present(r);
		goto out;
	}
	if (r->o->fair)
		fairshare_acquire(r->o->fair);
	rc = copy_blob_claimed(r, src_repo, dst_repo, b, recheck, err);
	if (r->o->fair)
		fairshare_release(r->o->fair);
	pthread_mutex_lock(&r->mu);
	const char *at = set_find(&r->inflight, &k);
	if (at) {
		size_t off = (size_t)(at - r->inflight.data) + 1, n = k.len - 1;
		memmove(r->inflight.data + off, r->inflight.data + off + n,
			r->inflight.len - off - n);
		buf_setlen(&r->inflight, r->inflight.len - n);
	}
	pthread_cond_broadcast(&r->blob_cv);
	pthread_mutex_unlock(&r->mu);
out:
	buf_release(&k);
	return rc;
}

struct blob_pool {
	struct run *r;
	const char *src_repo, *dst_repo;
	const struct blob_desc *blobs;
	size_t n, next;
	bool recheck;
	pthread_mutex_t mu;
	int rc; /* first failure */
	struct dth_err err;
};

static void *blob_worker(void *arg)
{
	struct blob_pool *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		if (p->rc || p->next >= p->n) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		const struct blob_desc *b = &p->blobs[p->next++];
		pthread_mutex_unlock(&p->mu);
		struct dth_err e;
		err_clear(&e);
		int rc = copy_blob(p->r, p->src_repo, p->dst_repo, b, p->recheck, &e);
		if (rc) {
			pthread_mutex_lock(&p->mu);
			if (!p->rc) {
				p->rc = rc;
				p->err = e;
				if (!p->err.message[0])
					err_set(&p->err, rc, "%s", strerror(-rc));
				err_prefix(&p->err, "blob %s", b->digest);
			}
			pthread_mutex_unlock(&p->mu);
		}
	}
}

static int copy_blobs(struct run *r, const char *src_repo, const char *dst_repo,
		      const struct blob_desc *blobs, size_t n, bool recheck, struct dth_err *err)
{
	struct blob_pool p;
	memset(&p, 0, sizeof(p));
	p.recheck = recheck;
	p.r = r;
	p.src_repo = src_repo;
	p.dst_repo = dst_repo;
	p.blobs = blobs;
	p.n = n;
	pthread_mutex_init(&p.mu, NULL);
	err_clear(&p.err);
	/* the blob concurrency is shared by the tags being copied */
	pthread_mutex_lock(&r->qmu);
	unsigned active = r->active ? r->active : 1;
	pthread_mutex_unlock(&r->qmu);
	size_t nt = r->conc / active;
	if (nt < 1)
		nt = 1;
	if (nt > n)
		nt = n;
	pthread_t *th = nt > 1 ? xcalloc(nt - 1, sizeof(*th)) : NULL;
	size_t started = 0;
	for (size_t i = 0; i + 1 < nt; i++) {
		if (pthread_create(&th[i], NULL, blob_worker, &p) != 0)
			break;
		started++;
	}
	blob_worker(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
	pthread_mutex_destroy(&p.mu);
	if (p.rc)
		*err = p.err;
	return p.rc;
}

/* The destination refused m's PUT for a blob it does not have although the
 * blobs db or this run recorded it as present (garbage-collected, deleted):
 * forget what is recorded of the image's blobs in dst_repo, copy them again
 * (HEAD each, upload what is missing) and retry the PUT once. */
static int recopy_and_put(struct run *r, const char *src_repo, const char *dst_repo,
			  const struct registry_manifest *m, const char *put_ref, char *dst_digest,
			  const struct blob_desc *blobs, size_t n, struct dth_err *err)
{
	log_warn("image %s:%s: the destination has lost a blob recorded as present (%s); "
		 "copying the image's %zu blobs again",
		 dst_repo, put_ref, err->message, n);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t h = seen_hash(dst_repo, blobs[i].digest);
		pthread_mutex_lock(&r->mu);
		seen_del(&r->seen, h);
		pthread_mutex_unlock(&r->mu);
		rc = manifest_writer_del_blob(r->w, r->dst_reg, dst_repo, blobs[i].digest);
		if (rc)
			return err_set(err, rc, "manifest writer: %s", strerror(-rc));
	}
	err_clear(err);
	rc = copy_blobs(r, src_repo, dst_repo, blobs, n, true, err);
	if (rc)
		return rc;
	return registry_manifest_put(r->o->dst, dst_repo, put_ref, m->media_type, m->body.data,
				     m->body.len, dst_digest, err);
}

/* Add d to the n blobs of v (room for one more) unless its digest is there. */
static void add_blob(struct blob_desc *v, size_t *n, const struct oci_desc *d)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(v[i].digest, d->digest))
			return;
	memcpy(v[*n].digest, d->digest, sizeof(v[*n].digest));
	v[*n].size = d->size;
	(*n)++;
}

/* The blobs of image manifest om to copy: its config, then its layers, each
 * digest once, foreign layers left out. *v is the caller's to free. */
static void image_blobs(const struct oci_manifest *om, struct blob_desc **v, size_t *n)
{
	*v = xcalloc(om->n_items + 1, sizeof(**v));
	*n = 0;
	add_blob(*v, n, &om->config);
	for (size_t i = 0; i < om->n_items; i++)
		if (!om->items[i].foreign)
			add_blob(*v, n, &om->items[i]);
}

int image_parse_platforms(const char *s, struct image_platform **out, size_t *n,
			  struct dth_err *err)
{
	*out = NULL;
	*n = 0;
	const char *p = s;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char ent[128];
		if (len == 0 || len >= sizeof(ent))
			goto bad;
		memcpy(ent, p, len);
		ent[len] = '\0';
		char *f[3] = {NULL, NULL, NULL};
		size_t nf = 0;
		char *q = ent;
		for (;;) {
			char *sl = strchr(q, '/');
			if (nf == 3)
				goto bad;
			f[nf++] = q;
			if (!sl)
				break;
			*sl = '\0';
			q = sl + 1;
		}
		if (nf < 2)
			goto bad;
		struct image_platform pl;
		memset(&pl, 0, sizeof(pl));
		for (size_t i = 0; i < nf; i++) {
			size_t fl = strlen(f[i]);
			if (!fl || fl >= sizeof(pl.os))
				goto bad;
			for (const char *c = f[i]; *c; c++)
				if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
				      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
				      *c == '.'))
					goto bad;
		}
		str_copy_fit(pl.os, f[0], sizeof(pl.os));
		str_copy_fit(pl.arch, f[1], sizeof(pl.arch));
		if (f[2])
			str_copy_fit(pl.variant, f[2], sizeof(pl.variant));
		*out = realloc(*out, (*n + 1) * sizeof(**out));
		if (!*out)
			abort();
		(*out)[(*n)++] = pl;
		if (!e)
			return 0;
		p = e + 1;
		continue;
	bad:
		free(*out);
		*out = NULL;
		*n = 0;
		return err_set(err, -EINVAL,
			       "bad --platform entry '%.*s': expected os/arch[/variant] "
			       "(e.g. linux/amd64, linux/arm64/v8), comma-separated",
			       (int)(len > 100 ? 100 : len), p);
	}
}

bool image_tag_matches(const regex_t *re, const char *tag)
{
	regmatch_t pm[1];
	if (regexec(re, tag, 1, pm, 0) != 0)
		return false;
	/* "^(...)$" already anchors; the span check guards against a regex
	 * whose parentheses escape the wrapping */
	return pm[0].rm_so == 0 && (size_t)pm[0].rm_eo == strlen(tag);
}

static bool platform_matches(const struct image_sync_opts *o, const char *os, const char *arch,
			     const char *variant)
{
	if (!os || !arch)
		return false;
	for (size_t i = 0; i < o->n_platforms; i++) {
		const struct image_platform *p = &o->platforms[i];
		if (strcmp(p->os, os) || strcmp(p->arch, arch))
			continue;
		if (p->variant[0] && (!variant || strcmp(p->variant, variant)))
			continue;
		return true;
	}
	return false;
}

static bool platform_desc_matches(const struct image_sync_opts *o, const struct oci_desc *d)
{
	if (!d->has_platform)
		return false;
	return platform_matches(o, d->platform.os, d->platform.arch,
				d->platform.variant[0] ? d->platform.variant : NULL);
}

static void platforms_str(const struct image_sync_opts *o, struct buf *out)
{
	for (size_t i = 0; i < o->n_platforms; i++) {
		const struct image_platform *p = &o->platforms[i];
		buf_addf(out, "%s%s/%s%s%s", i ? "," : "", p->os, p->arch, p->variant[0] ? "/" : "",
			 p->variant);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A hash of the --platform selection, the same for any order of the list;
 * 0 when none is given (every platform). A tag copied under another
 * selection is copied again even when its source is unchanged. */
static uint64_t platforms_fp(const struct image_sync_opts *o)
{
	if (!o->n_platforms)
		return 0;
	char **v = xcalloc(o->n_platforms, sizeof(*v));
	for (size_t i = 0; i < o->n_platforms; i++) {
		const struct image_platform *p = &o->platforms[i];
		struct buf b = BUF_INIT;
		buf_addf(&b, "%s/%s/%s", p->os, p->arch, p->variant);
		v[i] = buf_detach(&b, NULL);
	}
	qsort(v, o->n_platforms, sizeof(*v), cmp_str);
	struct buf all = BUF_INIT;
	for (size_t i = 0; i < o->n_platforms; i++)
		if (i == 0 || strcmp(v[i], v[i - 1]))
			buf_addf(&all, "%s,", v[i]);
	for (size_t i = 0; i < o->n_platforms; i++)
		free(v[i]);
	free(v);
	uint64_t h = XXH3_64bits(all.data, all.len);
	buf_release(&all);
	return h ? h : 1;
}

static int sink_buf(void *ctx, const void *data, size_t len)
{
	struct buf *b = ctx;
	if (b->len + len > REGISTRY_MANIFEST_MAX)
		return -EFBIG;
	buf_add(b, data, len);
	return 0;
}

static int get_and_copy(struct run *r, const char *repo, const char *dst_repo,
			const struct oci_desc *d, const char *put_ref, char *dst_digest,
			char *put_mt, int depth, struct dth_err *err);

/* Parse m (a manifest of src_repo) with oci_manifest_parse. */
static int parse_manifest(const char *src_repo, const struct registry_manifest *m,
			  struct oci_manifest *om, struct dth_err *err)
{
	struct buf name = BUF_INIT;
	buf_addf(&name, "%s@%s", src_repo, m->digest);
	int rc = oci_manifest_parse(m->body.data, m->body.len, m->media_type, name.data, om, err);
	buf_release(&name);
	return rc;
}

/* Copy what m references (children or blobs), then m itself to put_ref. */
static int copy_manifest(struct run *r, const char *src_repo, const char *dst_repo,
			 const struct registry_manifest *m, const char *put_ref, char *dst_digest,
			 int depth, struct dth_err *err)
{
	struct oci_manifest om;
	int rc = parse_manifest(src_repo, m, &om, err);
	if (rc)
		return rc;
	struct blob_desc *blobs = NULL;
	size_t n = 0;
	if (om.kind == REGISTRY_KIND_INDEX) {
		if (depth >= IMAGE_MAX_DEPTH) {
			rc = err_set(err, -ENOTSUP, "manifest %s: indexes nested too deep",
				     m->digest);
			goto cleanup;
		}
		for (size_t i = 0; i < om.n_items && !rc; i++) {
			bool again = false; /* the same child for another platform */
			for (size_t k = 0; k < i && !again; k++)
				again = !strcmp(om.items[k].digest, om.items[i].digest);
			if (!again)
				rc = get_and_copy(r, src_repo, dst_repo, &om.items[i], NULL, NULL,
						  NULL, depth + 1, err);
			if (rc)
				err_prefix(err, "index %s@%s: manifests[%zu]", src_repo, m->digest,
					   i);
		}
	} else {
		image_blobs(&om, &blobs, &n);
		rc = copy_blobs(r, src_repo, dst_repo, blobs, n, false, err);
		if (rc)
			err_prefix(err, "manifest %s@%s", src_repo, m->digest);
	}
	if (rc)
		goto cleanup;
	rc = registry_manifest_put(r->o->dst, dst_repo, put_ref, m->media_type, m->body.data,
				   m->body.len, dst_digest, err);
	if (rc && om.kind == REGISTRY_KIND_IMAGE && registry_err_blob_unknown(err))
		rc = recopy_and_put(r, src_repo, dst_repo, m, put_ref, dst_digest, blobs, n, err);
	if (!rc)
		failpoint_hit(FAILPOINT_MANIFEST_PUT);
cleanup:
	free(blobs);
	oci_manifest_release(&om);
	return rc;
}

/* GET the child manifest d of an index (by digest: the bytes are checked),
 * check its size against d, and copy it to put_ref (NULL: its digest). */
static int get_and_copy(struct run *r, const char *repo, const char *dst_repo,
			const struct oci_desc *d, const char *put_ref, char *dst_digest,
			char *put_mt, int depth, struct dth_err *err)
{
	struct registry_manifest cm;
	registry_manifest_init(&cm);
	int rc = registry_manifest_get(r->o->src, repo, d->digest, &cm, err);
	if (!rc && cm.size != d->size)
		rc = err_set(err, -EBADMSG, "manifest %s@%s: %llu bytes, but its index says %llu",
			     repo, d->digest, (unsigned long long)cm.size,
			     (unsigned long long)d->size);
	if (!rc)
		rc = copy_manifest(r, repo, dst_repo, &cm, put_ref ? put_ref : cm.digest,
				   dst_digest, depth, err);
	if (!rc && put_mt)
		str_copy_fit(put_mt, cm.media_type, REGISTRY_MEDIA_TYPE_MAX);
	registry_manifest_release(&cm);
	return rc;
}

/* --platform for an image manifest: its config says its platform. */
static int select_image(struct run *r, const char *repo, const char *dst_repo,
			const struct registry_manifest *gm, const struct oci_manifest *om,
			const char *tag, char *dd, bool *filtered, struct buf *note,
			const char *want, struct dth_err *err)
{
	const struct image_sync_opts *o = r->o;
	const struct oci_desc *cd = &om->config;
	if (cd->size > REGISTRY_MANIFEST_MAX) /* not a config to read: copied as it is */
		return copy_manifest(r, repo, dst_repo, gm, tag, dd, 0, err);
	struct buf cb = BUF_INIT;
	int rc = registry_blob_get(o->src, repo, cd->digest, cd->size, sink_buf, &cb, NULL, err);
	if (rc) {
		buf_release(&cb);
		err_prefix(err, "config %s (for --platform)", cd->digest);
		return rc;
	}
	json_t *c = json_loadb(cb.data ? cb.data : "", cb.len, 0, NULL);
	buf_release(&cb);
	const char *os = json_string_value(json_object_get(c, "os"));
	const char *arch = json_string_value(json_object_get(c, "architecture"));
	const char *var = json_string_value(json_object_get(c, "variant"));
	if (!platform_matches(o, os, arch, var)) {
		*filtered = true;
		buf_addf(note, "skipped: the image is for %.64s/%.64s%s%.64s, not --platform %s",
			 os ? os : "?", arch ? arch : "?", var ? "/" : "", var ? var : "", want);
	} else {
		rc = copy_manifest(r, repo, dst_repo, gm, tag, dd, 0, err);
	}
	json_decref(c);
	return rc;
}

/* gm (an index) with only the children whose keep[] is set, as compact JSON
 * (the other members kept in order). NULL when it cannot be written. */
static char *filtered_index(const struct registry_manifest *gm, const bool *keep)
{
	json_t *doc = json_loadb(gm->body.data, gm->body.len, JSON_REJECT_DUPLICATES, NULL);
	json_t *ms = json_object_get(doc, "manifests");
	if (!json_is_array(ms)) {
		json_decref(doc);
		return NULL;
	}
	json_t *sel = json_array();
	for (size_t i = 0; i < json_array_size(ms); i++)
		if (keep[i])
			json_array_append(sel, json_array_get(ms, i));
	json_object_set_new(doc, "manifests", sel);
	char *body = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return body;
}

/* --platform for an index: the children of the selected platforms. */
static int select_index(struct run *r, const char *repo, const char *dst_repo,
			const struct registry_manifest *gm, const struct oci_manifest *om,
			const char *tag, char *dd, char *put_mt, bool *filtered, struct buf *note,
			const char *want, struct dth_err *err)
{
	bool *keep = xcalloc(om->n_items + 1, sizeof(*keep));
	size_t nk = 0, first = 0;
	for (size_t i = 0; i < om->n_items; i++) {
		keep[i] = platform_desc_matches(r->o, &om->items[i]);
		if (keep[i] && nk++ == 0)
			first = i;
	}
	int rc = 0;
	if (nk == 0) {
		*filtered = true;
		buf_addf(note, "skipped: no manifest of the index is for --platform %s", want);
	} else if (nk == om->n_items) {
		rc = copy_manifest(r, repo, dst_repo, gm, tag, dd, 0, err);
	} else if (nk == 1) {
		/* the tag becomes that platform's manifest itself (digest kept) */
		rc = get_and_copy(r, repo, dst_repo, &om->items[first], tag, dd, put_mt, 1, err);
		if (rc)
			err_prefix(err, "index %s@%s: manifests[%zu]", repo, gm->digest, first);
	} else {
		/* a new index of the selected children: children first, then it */
		for (size_t i = 0; i < om->n_items && !rc; i++) {
			if (keep[i])
				rc = get_and_copy(r, repo, dst_repo, &om->items[i], NULL, NULL,
						  NULL, 1, err);
			if (rc)
				err_prefix(err, "index %s@%s: manifests[%zu]", repo, gm->digest, i);
		}
		char *body = rc ? NULL : filtered_index(gm, keep);
		if (!rc && !body)
			rc = err_set(err, -ENOMEM, "cannot write the filtered index");
		if (!rc)
			rc = registry_manifest_put(r->o->dst, dst_repo, tag, gm->media_type, body,
						   strlen(body), dd, err);
		if (!rc)
			failpoint_hit(FAILPOINT_MANIFEST_PUT);
		free(body);
	}
	free(keep);
	return rc;
}

/* Copy the top-level manifest gm of a tag, applying --platform (image.h).
 * *filtered (with note set) when nothing matched: nothing was copied. put_mt
 * (REGISTRY_MEDIA_TYPE_MAX) gets the media type of what went to the tag. */
static int copy_selected(struct run *r, const char *repo, const char *dst_repo,
			 const struct registry_manifest *gm, const char *tag, char *dd,
			 char *put_mt, bool *filtered, struct buf *note, struct dth_err *err)
{
	const struct image_sync_opts *o = r->o;
	*filtered = false;
	str_copy_fit(put_mt, gm->media_type, REGISTRY_MEDIA_TYPE_MAX);
	if (!o->n_platforms)
		return copy_manifest(r, repo, dst_repo, gm, tag, dd, 0, err);
	struct oci_manifest om;
	int rc = parse_manifest(repo, gm, &om, err);
	if (rc)
		return rc;
	struct buf want = BUF_INIT;
	platforms_str(o, &want);
	if (om.kind == REGISTRY_KIND_IMAGE)
		rc = select_image(r, repo, dst_repo, gm, &om, tag, dd, filtered, note, want.data,
				  err);
	else
		rc = select_index(r, repo, dst_repo, gm, &om, tag, dd, put_mt, filtered, note,
				  want.data, err);
	buf_release(&want);
	oci_manifest_release(&om);
	return rc;
}

/* (A missing repository fails alone: -ENOENT is not unreachable here.) */
static bool unreachable_rc(int rc)
{
	return exec_unreachable(rc);
}

static void fail_image(struct run *r, const char *ref, int rc, struct dth_err *err)
{
	if (!err->message[0])
		err_set(err, rc, "%s", strerror(-rc));
	pthread_mutex_lock(&r->mu);
	r->res->failed++;
	PG_ADD(r->o, failed, 1);
	if (unreachable_rc(rc))
		r->unreachable_failures++;
	pthread_mutex_unlock(&r->mu);
	log_debug("image %s failed: %s", ref, err->message);
	if (r->o->on_failure) {
		pthread_mutex_lock(&r->cb_mu);
		r->o->on_failure(r->o->on_failure_ctx, ref, rc, err->message);
		pthread_mutex_unlock(&r->cb_mu);
	}
}

/* The prepare hook for one side (see image.h): 1 renewed, 0, or negative
 * with err set. */
static int prepare_side(struct run *r, bool dst, const char *repo, bool refresh,
			struct dth_err *err)
{
	if (!r->o->prepare)
		return 0;
	pthread_mutex_lock(&r->cb_mu);
	int rc = r->o->prepare(r->o->prepare_ctx, dst, repo, refresh, err);
	pthread_mutex_unlock(&r->cb_mu);
	if (rc < 0 && !err->message[0])
		err_set(err, rc, "%s", strerror(-rc));
	return rc;
}

/* After a refusal (-EACCES): renew the credentials of the source (and of the
 * destination when dst_repo is given). 1 when something was renewed (retry
 * the refused step once), 0 when nothing could be, or negative with err set. */
static int renew_after_refusal(struct run *r, const char *repo, const char *dst_repo,
			       struct dth_err *err)
{
	if (!r->o->prepare)
		return 0;
	struct dth_err e;
	err_clear(&e);
	int a = prepare_side(r, false, repo, true, &e);
	int b = 0;
	if (a >= 0 && dst_repo)
		b = prepare_side(r, true, dst_repo, true, &e);
	if (a < 0 || b < 0) {
		*err = e;
		return a < 0 ? a : b;
	}
	return a > 0 || b > 0;
}

/* One tag: skip when unchanged, else copy; the outcome is recorded. Returns
 * a run-level error only (writer failure). */
static int sync_tag(struct run *r, const char *repo, const char *tag, const char *dst_repo)
{
	const struct image_sync_opts *o = r->o;
	struct buf ref = BUF_INIT;
	buf_addf(&ref, "%s:%s", repo, tag);
	struct image_record rec;
	if (manifest_image_get(o->manifest, o->task_id, ref.data, ref.len, &rec) != 0)
		memset(&rec, 0, sizeof(rec));
	struct dth_err err;
	err_clear(&err);
	struct registry_manifest hm, gm;
	registry_manifest_init(&hm);
	registry_manifest_init(&gm);
	int wrc = 0;
	pthread_mutex_lock(&r->mu);
	r->res->images++;
	pthread_mutex_unlock(&r->mu);
	int rc = prepare_side(r, false, repo, false, &err);
	if (rc < 0)
		goto failed;
	/* Unchanged at the source. Without --platform the destination must hold
	 * the source manifest itself (not a platform selection of an earlier
	 * run); with it, a tag skipped for its platform stays skipped. A tag
	 * whose record cannot lead to a skip is fetched at once (GET by tag: the
	 * digest comes with it), without a HEAD first. */
	bool filtering = o->n_platforms > 0;
	uint64_t sel_fp = platforms_fp(o);
	bool may_skip = rec.src_digest[0] && rec.platforms_fp == sel_fp &&
			((rec.status == OBJ_DONE && (filtering || !rec.dst_digest[0] ||
						     !strcmp(rec.dst_digest, rec.src_digest))) ||
			 (rec.status == OBJ_SKIPPED && filtering));
	if (may_skip)
		rc = registry_manifest_head(o->src, repo, tag, &hm, &err);
	else
		rc = registry_manifest_get(o->src, repo, tag, &gm, &err);
	if (rc == -EACCES) {
		int nr = renew_after_refusal(r, repo, NULL, &err);
		if (nr > 0) {
			err_clear(&err);
			if (may_skip)
				rc = registry_manifest_head(o->src, repo, tag, &hm, &err);
			else
				rc = registry_manifest_get(o->src, repo, tag, &gm, &err);
		} else if (nr < 0) {
			rc = nr;
		}
	}
	if (rc)
		goto failed;
	if (may_skip) {
		if (hm.digest[0] && !strcmp(rec.src_digest, hm.digest)) {
			pthread_mutex_lock(&r->mu);
			r->res->skipped++;
			pthread_mutex_unlock(&r->mu);
			PG_ADD(r->o, skipped, 1);
			goto out;
		}
		rc = registry_manifest_get(o->src, repo, hm.digest[0] ? hm.digest : tag, &gm, &err);
		if (rc)
			goto failed;
	}
	char dd[REGISTRY_DIGEST_MAX] = "";
	char put_mt[REGISTRY_MEDIA_TYPE_MAX] = "";
	bool filtered = false;
	struct buf note = BUF_INIT;
	rc = prepare_side(r, true, dst_repo, false, &err);
	if (rc >= 0)
		rc = copy_selected(r, repo, dst_repo, &gm, tag, dd, put_mt, &filtered, &note, &err);
	if (rc == -EACCES) {
		int nr = renew_after_refusal(r, repo, dst_repo, &err);
		if (nr > 0) {
			err_clear(&err);
			buf_reset(&note);
			dd[0] = '\0';
			put_mt[0] = '\0';
			filtered = false;
			rc = copy_selected(r, repo, dst_repo, &gm, tag, dd, put_mt, &filtered,
					   &note, &err);
		} else if (nr < 0) {
			rc = nr;
		}
	}
	if (rc) {
		buf_release(&note);
		goto failed;
	}
	str_copy_fit(rec.src_digest, gm.digest, sizeof(rec.src_digest));
	str_copy_fit(rec.dst_digest, dd, sizeof(rec.dst_digest));
	str_copy_fit(rec.media_type, put_mt, sizeof(rec.media_type));
	rec.size = gm.size;
	rec.platforms_fp = sel_fp;
	rec.attempts++;
	rec.last_error[0] = '\0';
	if (filtered) {
		rec.status = OBJ_SKIPPED;
		str_copy_msg(rec.last_error, note.data, sizeof(rec.last_error));
		pthread_mutex_lock(&r->mu);
		r->res->filtered++;
		pthread_mutex_unlock(&r->mu);
		PG_ADD(r->o, filtered, 1);
		log_debug("image %s: %s", ref.data, note.data);
		if (o->on_note) {
			pthread_mutex_lock(&r->cb_mu);
			o->on_note(o->on_note_ctx, ref.data, note.data);
			pthread_mutex_unlock(&r->cb_mu);
		}
	} else {
		rec.status = OBJ_DONE;
		rec.copied_at = (int64_t)time(NULL);
		pthread_mutex_lock(&r->mu);
		r->res->copied++;
		pthread_mutex_unlock(&r->mu);
		PG_ADD(r->o, copied, 1);
	}
	buf_release(&note);
	wrc = manifest_writer_put_image(r->w, o->task_id, ref.data, ref.len, &rec);
	goto out;
failed:
	fail_image(r, ref.data, rc, &err);
	rec.status = OBJ_FAILED;
	rec.attempts++;
	str_copy_msg(rec.last_error, err.message, sizeof(rec.last_error));
	wrc = manifest_writer_put_image(r->w, o->task_id, ref.data, ref.len, &rec);
out:
	registry_manifest_release(&hm);
	registry_manifest_release(&gm);
	buf_release(&ref);
	return wrc;
}

/* Queue a tag for the tag workers. A run-level failure of a worker so far
 * is returned (nothing is queued then). */
static int queue_tag(struct run *r, const char *repo, const char *tag, const char *dst_repo)
{
	struct tag_job *j = xcalloc(1, sizeof(*j));
	j->repo = xstrdup(repo);
	j->tag = xstrdup(tag);
	j->dst_repo = xstrdup(dst_repo);
	pthread_mutex_lock(&r->qmu);
	int wrc = r->wrc;
	if (!wrc) {
		if (r->qtail)
			r->qtail->next = j;
		else
			r->qhead = j;
		r->qtail = j;
		PG_ADD(r->o, tags, 1);
		pthread_cond_signal(&r->qcv);
	}
	pthread_mutex_unlock(&r->qmu);
	if (wrc) {
		free(j->repo);
		free(j->tag);
		free(j->dst_repo);
		free(j);
	}
	return wrc;
}

static void *tag_worker(void *arg)
{
	struct run *r = arg;
	pthread_mutex_lock(&r->qmu);
	for (;;) {
		while (!r->qhead && !r->qclosed)
			pthread_cond_wait(&r->qcv, &r->qmu);
		struct tag_job *j = r->qhead;
		if (!j)
			break;
		r->qhead = j->next;
		if (!r->qhead)
			r->qtail = NULL;
		bool run = !r->wrc && !(r->o->stop && *r->o->stop);
		if (run) {
			r->active++;
			pthread_mutex_unlock(&r->qmu);
			int wrc = sync_tag(r, j->repo, j->tag, j->dst_repo);
			pthread_mutex_lock(&r->qmu);
			r->active--;
			if (wrc && !r->wrc)
				r->wrc = wrc;
		}
		free(j->repo);
		free(j->tag);
		free(j->dst_repo);
		free(j);
	}
	pthread_mutex_unlock(&r->qmu);
	return NULL;
}

static int collect_tag(void *ctx, const char *name)
{
	struct buf *b = ctx;
	buf_add(b, name, strlen(name) + 1);
	return 0;
}

static int sync_spec(struct run *r, const char *spec, struct dth_err *run_err)
{
	const struct image_sync_opts *o = r->o;
	char *repo = NULL, *tag = NULL, *digest = NULL;
	struct dth_err err;
	err_clear(&err);
	struct buf dst_repo = BUF_INIT, tags = BUF_INIT;
	int wrc = 0;
	int rc = registry_parse_reference(spec, &repo, &tag, &digest, &err);
	if (!rc && digest)
		rc = err_set(&err, -EINVAL, "%s: digest references are not supported (give a tag)",
			     spec);
	if (rc) {
		pthread_mutex_lock(&r->mu);
		r->res->images++;
		pthread_mutex_unlock(&r->mu);
		PG_ADD(o, tags, 1);
		fail_image(r, spec, rc, &err);
		goto out;
	}
	if (o->dst_prefix && o->dst_prefix[0]) {
		size_t pl = strlen(o->dst_prefix);
		while (pl && o->dst_prefix[pl - 1] == '/')
			pl--;
		buf_add(&dst_repo, o->dst_prefix, pl);
		buf_addch(&dst_repo, '/');
	}
	buf_adds(&dst_repo, repo);
	if (tag) {
		wrc = queue_tag(r, repo, tag, dst_repo.data);
		goto out;
	}
	rc = prepare_side(r, false, repo, false, &err);
	if (rc >= 0)
		rc = registry_tags_list(o->src, repo, collect_tag, &tags, &err);
	if (rc == -EACCES) {
		int nr = renew_after_refusal(r, repo, NULL, &err);
		if (nr > 0) {
			err_clear(&err);
			buf_reset(&tags);
			rc = registry_tags_list(o->src, repo, collect_tag, &tags, &err);
		} else if (nr < 0) {
			rc = nr;
		}
	}
	if (rc) {
		pthread_mutex_lock(&r->mu);
		r->res->images++;
		pthread_mutex_unlock(&r->mu);
		PG_ADD(o, tags, 1);
		fail_image(r, repo, rc, &err);
		goto out;
	}
	for (size_t off = 0; off < tags.len && !wrc; off += strlen(tags.data + off) + 1) {
		if (o->stop && *o->stop)
			break;
		if (o->tags_re && !image_tag_matches(o->tags_re, tags.data + off))
			continue;
		wrc = queue_tag(r, repo, tags.data + off, dst_repo.data);
	}
out:
	if (wrc)
		err_set(run_err, wrc, "manifest writer: %s", strerror(-wrc));
	buf_release(&dst_repo);
	buf_release(&tags);
	free(repo);
	free(tag);
	free(digest);
	return wrc;
}

int image_sync_run(const struct image_sync_opts *o, struct image_sync_result *res,
		   struct dth_err *err)
{
	memset(res, 0, sizeof(*res));
	if (!o->src || !o->dst || !o->manifest)
		return err_set(err, -EINVAL,
			       "image sync needs a source, a destination and a manifest");
	double t0 = now_mono();
	struct run r;
	memset(&r, 0, sizeof(r));
	r.o = o;
	r.res = res;
	r.dst_reg = registry_client_url(o->dst);
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.blob_cv, NULL);
	pthread_mutex_init(&r.cb_mu, NULL);
	pthread_mutex_init(&r.probe_mu, NULL);
	buf_init(&r.probed);
	buf_init(&r.fresh);
	pthread_mutex_init(&r.qmu, NULL);
	pthread_cond_init(&r.qcv, NULL);
	r.seen.slot = xcalloc(SEEN_SLOTS, sizeof(*r.seen.slot));
	buf_init(&r.inflight);
	r.conc = o->concurrency ? o->concurrency : IMAGE_DEFAULT_CONC;
	size_t ntw = r.conc < IMAGE_TAG_WORKERS ? r.conc : IMAGE_TAG_WORKERS;
	pthread_t tw[IMAGE_TAG_WORKERS];
	size_t started = 0;
	r.w = manifest_writer_new(o->manifest, 256, 200, err);
	int rc = 0;
	if (!r.w) {
		rc = err->code ? err->code : -EIO;
		goto out;
	}
	for (size_t i = 0; i < ntw; i++) {
		if (pthread_create(&tw[i], NULL, tag_worker, &r) != 0)
			break;
		started++;
	}
	if (!started) {
		rc = err_set(err, -EAGAIN, "cannot start a thread");
		goto writer;
	}
	for (size_t i = 0; i < o->n_images && !rc; i++) {
		if (o->stop && *o->stop) {
			rc = err_set(err, -EINTR, "interrupted");
			break;
		}
		rc = sync_spec(&r, o->images[i], err);
	}
	if (!rc && o->all && !(o->stop && *o->stop)) {
		struct buf repos = BUF_INIT;
		if (o->list_repos)
			rc = o->list_repos(o->list_repos_ctx, collect_tag, &repos, err);
		else
			rc = registry_catalog(o->src, collect_tag, &repos, err);
		if (rc) {
			if (!err->message[0])
				err_set(err, rc, "%s", strerror(-rc));
			err_prefix(err, "--all: cannot list the repositories of %s (%s)",
				   registry_client_name(o->src),
				   o->list_repos ? "repository listing" : "catalog");
			r.catalog_unreachable = unreachable_rc(rc);
		}
		for (size_t off = 0; !rc && off < repos.len; off += strlen(repos.data + off) + 1) {
			if (o->stop && *o->stop)
				break;
			rc = sync_spec(&r, repos.data + off, err);
		}
		buf_release(&repos);
	}
	if (o->progress)
		__atomic_store_n(&o->progress->listing_done, true, __ATOMIC_RELAXED);
	pthread_mutex_lock(&r.qmu);
	r.qclosed = true;
	pthread_cond_broadcast(&r.qcv);
	pthread_mutex_unlock(&r.qmu);
	for (size_t i = 0; i < started; i++)
		pthread_join(tw[i], NULL);
	if (!rc && r.wrc)
		rc = err_set(err, r.wrc, "manifest writer: %s", strerror(-r.wrc));
writer:;
	int frc = manifest_writer_free(r.w);
	if (frc && !rc)
		rc = err_set(err, frc, "manifest writer: %s", strerror(-frc));
	if (!rc && o->stop && *o->stop)
		rc = err_set(err, -EINTR, "interrupted");
out:
	res->unreachable = r.catalog_unreachable || (res->failed && !res->copied && !res->skipped &&
						     r.unreachable_failures == res->failed);
	res->seconds = now_mono() - t0;
	free(r.seen.slot);
	buf_release(&r.inflight);
	buf_release(&r.probed);
	buf_release(&r.fresh);
	pthread_mutex_destroy(&r.probe_mu);
	pthread_cond_destroy(&r.qcv);
	pthread_mutex_destroy(&r.qmu);
	pthread_mutex_destroy(&r.cb_mu);
	pthread_cond_destroy(&r.blob_cv);
	pthread_mutex_destroy(&r.mu);
	return rc;
}
