#include "common/compat.h"

#include "agent/transfer.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "common/buf.h"
#include "common/log.h"
#include "manifest/codec.h"
#include "manifest/manifest.h"
#include "remote/s3.h"

#define MAX_PARTS	10000
#define MIN_PART_SIZE	(5ULL << 20)
#define MD5_RETRIES	3
#define SAVE_EVERY_PART 16

enum job_kind { JOB_OBJECT, JOB_DELETE, JOB_PART };

struct upload;

struct job {
	enum job_kind kind;
	struct job *next;
	/* object and delete jobs */
	char *key; /* relative key (owned) */
	size_t key_len;
	uint64_t size;
	char etag[S3_ETAG_MAX];
	int64_t last_modified;
	enum sync_action action;
	bool has_rec;
	struct obj_record rec; /* previous record when has_rec */
	/* part jobs */
	struct upload *up;
	uint32_t part; /* index, 0-based */
};

/* A multipart copy in progress, shared by its part jobs. */
struct upload {
	pthread_mutex_t lock;
	struct job *obj;	  /* the object job (owned) */
	char *src_key;		  /* owned */
	char *dst_key;		  /* owned */
	struct upload_record rec; /* upload id, layout, finished parts (rec.parts) */
	uint64_t *psize;	  /* size of each part */
	uint64_t *poff;		  /* offset of each part */
	char (*petag)[S3_ETAG_MAX];
	bool *pdone;
	uint32_t nparts;
	uint32_t outstanding; /* part jobs not yet finished */
	uint32_t since_save;
	bool replicate; /* the source layout is repeated: dest ETag must equal source */
	/* When the source ignores HEAD ?partNumber (Ceph 16), the part size is
	 * inferred from the size and part count; other sizes that fit are tried
	 * server-side if the first guess gives another ETag. */
	uint64_t cand[8];
	unsigned ncand;
	struct s3_meta meta; /* headers of the copy, for a re-layout */
	char *tagging;
	struct s3_tags tags; /* set again after completion: not every server takes
				x-amz-tagging on CreateMultipartUpload (Ceph 16 drops it) */
	int err;	     /* first part error */
	char errmsg[CODEC_ERROR_MAX];
	/* Whole-object MD5 for a source whose ETag is an MD5 but that is copied
	 * in parts of our own: parts are hashed in order as they arrive (part i
	 * waits for part i-1, which is always further along), and the sum is
	 * checked against the source ETag before the upload is completed. */
	EVP_MD_CTX *whole;
	uint32_t next_hash;
	pthread_cond_t hash_cond;
};

struct queue {
	struct job *head, *tail;
	size_t n;
};

struct transfer {
	const struct sync_opts *o;
	struct manifest_writer *w;
	struct sync_progress *prog;
	pthread_mutex_t lock;
	pthread_cond_t cond_work;  /* a job is available or shutting down */
	pthread_cond_t cond_space; /* object queue has room */
	pthread_cond_t cond_idle;  /* nothing queued and nothing running */
	struct queue parts;
	struct queue objects;
	size_t max_objects;
	unsigned running;
	bool shutdown;
	pthread_t *threads;
	unsigned nthreads;
	int fatal;
	struct dth_err fatal_err;
};

struct worker {
	struct transfer *t;
	struct buf body;
};

static void q_push(struct queue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

static struct job *q_pop(struct queue *q)
{
	struct job *j = q->head;
	if (!j)
		return NULL;
	q->head = j->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	return j;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->key);
	free(j);
}

/* Formatted into a fixed buffer, cut short when too long. */
static void __attribute__((format(printf, 3, 4))) reasonf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

/* For calls whose failure changes nothing (best-effort cleanup). */
static inline void ignore_rc(int rc)
{
	(void)rc;
}

static void add64(uint64_t *p, uint64_t v)
{
	__atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

void transfer_layout(uint64_t size, uint64_t part_size, uint64_t *out_part_size,
		     uint32_t *out_count)
{
	if (part_size < MIN_PART_SIZE)
		part_size = MIN_PART_SIZE;
	while (size / part_size + (size % part_size != 0) > MAX_PARTS)
		part_size *= 2;
	uint64_t n = size / part_size + (size % part_size != 0);
	if (n == 0)
		n = 1;
	*out_part_size = part_size;
	*out_count = (uint32_t)n;
}

static void md5_of(const void *data, size_t len, unsigned char out[16])
{
	unsigned int n = 16;
	EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

static void md5_hex_b64(const unsigned char md[16], char hex[33], char b64[25])
{
	hex_encode(md, 16, hex);
	base64_encode(md, 16, b64);
}

static void set_fatal(struct transfer *t, int rc, const char *what)
{
	pthread_mutex_lock(&t->lock);
	if (!t->fatal) {
		t->fatal = rc;
		err_set(&t->fatal_err, rc, "writing the manifest (%s): %s", what, strerror(-rc));
	}
	pthread_mutex_unlock(&t->lock);
}

static bool stopping(const struct transfer *t)
{
	return (t->o->stop && *t->o->stop) || __atomic_load_n(&t->fatal, __ATOMIC_RELAXED);
}

static void dst_key_of(const struct transfer *t, const char *rel, size_t len, struct buf *out)
{
	buf_reset(out);
	buf_adds(out, t->o->dst_prefix);
	buf_add(out, rel, len);
}

static void src_key_of(const struct transfer *t, const char *rel, size_t len, struct buf *out)
{
	buf_reset(out);
	buf_adds(out, t->o->src_prefix);
	buf_add(out, rel, len);
}

/* XXH3 of the headers a copy carries, so a later check can tell metadata changes. */
static uint64_t meta_fingerprint(const struct s3_meta *m)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return 0;
	XXH3_64bits_reset(st);
	const char *fields[] = {m->content_type,	m->content_encoding, m->content_language,
				m->content_disposition, m->cache_control,    m->expires};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *f = fields[i] ? fields[i] : "";
		XXH3_64bits_update(st, f, strlen(f) + 1);
	}
	for (size_t i = 0; i < m->n_user; i++) {
		XXH3_64bits_update(st, m->user[i].name, strlen(m->user[i].name) + 1);
		XXH3_64bits_update(st, m->user[i].value, strlen(m->user[i].value) + 1);
	}
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h ? h : 1;
}

/* Write the object's record; a failure to write is fatal for the run. */
static void record(struct transfer *t, const struct job *j, int status, const char *dest_etag,
		   const char *error, uint64_t fp)
{
	struct obj_record r;
	memset(&r, 0, sizeof(r));
	r.size = j->size;
	r.last_modified = j->last_modified;
	strlcpy_s(r.etag, j->etag, sizeof(r.etag));
	r.meta_fp = fp;
	r.status = (uint8_t)status;
	r.attempts = (j->has_rec ? j->rec.attempts : 0) + 1;
	strlcpy_s(r.last_error, error ? error : "", sizeof(r.last_error));
	strlcpy_s(r.dest_etag, dest_etag ? dest_etag : "", sizeof(r.dest_etag));
	r.transferred_at = status == OBJ_DONE ? (int64_t)time(NULL) : 0;
	int rc = manifest_writer_put_obj(t->w, t->o->task_id, j->key, j->key_len, &r);
	if (rc == -ENAMETOOLONG)
		log_warn("cannot record a key of %zu bytes in the manifest", j->key_len);
	else if (rc)
		set_fatal(t, rc, "object record");
}

static void object_done(struct transfer *t, const struct job *j, const char *dest_etag, uint64_t fp)
{
	record(t, j, OBJ_DONE, dest_etag, NULL, fp);
	add64(&t->prog->transferred, 1);
	add64(&t->prog->bytes, j->size);
}

static void object_failed(struct transfer *t, const struct job *j, const char *reason)
{
	record(t, j, OBJ_FAILED, NULL, reason, 0);
	add64(&t->prog->failed, 1);
	if (t->o->on_failure)
		t->o->on_failure(t->o->on_failure_ctx, j->key, j->key_len, reason);
}

/* Put options from the sync options and (when copying metadata) the source's. */
static void put_opts_fill(const struct transfer *t, struct s3_put_opts *po,
			  const struct s3_meta *meta, const char *tagging)
{
	memset(po, 0, sizeof(*po));
	po->meta = t->o->metadata ? meta : NULL;
	po->tagging = t->o->metadata ? tagging : NULL;
	po->storage_class = t->o->storage_class;
	po->acl = t->o->acl;
	po->sse = t->o->sse;
	po->sse_kms_key_id = t->o->sse_kms_key_id;
}

/* An ETag we may compare with an MD5: not with SSE-KMS (AWS then returns no MD5). */
static bool dest_etag_is_md5(const struct transfer *t)
{
	return !(t->o->sse && strcasecmp(t->o->sse, "aws:kms") == 0);
}

/* Fetch the source's tags as an x-amz-tagging value (empty when none). */
static int fetch_tagging(struct transfer *t, const char *src_key, struct buf *out,
			 struct dth_err *err)
{
	struct s3_tags tags;
	int rc = s3_get_tagging(t->o->src, t->o->src_bucket, src_key, &tags, err);
	if (rc)
		return rc;
	s3_tags_to_query(&tags, out);
	s3_tags_release(&tags);
	return 0;
}

/* ---- small objects: one GET and one PUT, or one server-side copy ---- */

static int copy_small(struct worker *wk, struct job *j, struct buf *reason)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	err_clear(&err);
	struct buf skey = BUF_INIT, dkey = BUF_INIT, tagging = BUF_INIT;
	src_key_of(t, j->key, j->key_len, &skey);
	dst_key_of(t, j->key, j->key_len, &dkey);
	int rc = 0;
	char etag[S3_ETAG_MAX] = "";

	if (t->o->same_endpoint) {
		struct s3_put_opts po;
		struct s3_meta empty;
		memset(&empty, 0, sizeof(empty));
		put_opts_fill(t, &po, NULL, NULL);
		if (!t->o->metadata) {
			po.meta = &empty; /* REPLACE with nothing */
			po.tagging = "";
		}
		rc = s3_copy_object(t->o->dst, t->o->dst_bucket, dkey.data, t->o->src_bucket,
				    skey.data, j->etag, &po, etag, &err);
		if (rc == -ESTALE) {
			buf_adds(reason, "source changed during the copy; the next run copies it");
			goto out;
		}
		if (rc) {
			buf_adds(reason, err.message);
			goto out;
		}
		unsigned parts;
		if (s3_etag_parse(j->etag, &parts) && parts == 0 && dest_etag_is_md5(t) &&
		    strcasecmp(etag, j->etag) != 0)
			log_debug("%s: destination etag %s is not the source's %s (encrypted "
				  "bucket?)",
				  dkey.data, etag, j->etag);
		object_done(t, j, etag, 0);
		add64(&t->prog->bytes_moved, j->size);
		goto out;
	}

	for (int attempt = 1;; attempt++) {
		struct s3_object_head h;
		buf_reset(&wk->body);
		buf_grow(&wk->body, j->size);
		err_clear(&err);
		/* If-Match: an object replaced since the listing (maybe by a huge
		 * one) is looked at again instead of being read blindly into memory. */
		rc = s3_get_object(t->o->src, t->o->src_bucket, skey.data, 0, 0, j->etag, &wk->body,
				   &h, &err);
		if (rc == -ESTALE && attempt < MD5_RETRIES) {
			struct s3_object_head nh;
			err_clear(&err);
			rc = s3_head_object(t->o->src, t->o->src_bucket, skey.data, 0, &nh, &err);
			if (rc) {
				buf_adds(reason, err.message);
				goto out;
			}
			j->size = nh.size;
			strlcpy_s(j->etag, nh.etag, sizeof(j->etag));
			j->last_modified = nh.last_modified;
			s3_object_head_release(&nh);
			unsigned np;
			if (j->size >= t->o->multipart_threshold ||
			    (s3_etag_parse(j->etag, &np) && np > 0)) {
				rc = -EAGAIN; /* now a multipart copy */
				goto out;
			}
			continue;
		}
		if (rc == -ESTALE) {
			buf_adds(reason, "source keeps changing while it is copied; the next run "
					 "copies it");
			goto out;
		}
		if (rc) {
			buf_adds(reason, err.message);
			goto out;
		}
		/* Record what was really read, which may be newer than the listing. */
		j->size = wk->body.len;
		strlcpy_s(j->etag, h.etag, sizeof(j->etag));
		if (h.last_modified)
			j->last_modified = h.last_modified;
		unsigned char md[16];
		char hex[33], b64[25];
		md5_of(wk->body.data, wk->body.len, md);
		md5_hex_b64(md, hex, b64);
		unsigned parts;
		bool src_md5 = s3_etag_parse(h.etag, &parts) && parts == 0;
		if (src_md5 && strcasecmp(hex, h.etag) != 0) {
			s3_object_head_release(&h);
			if (attempt < MD5_RETRIES)
				continue;
			rc = -EIO;
			buf_addf(reason, "source body md5 %s does not match its etag %s", hex,
				 j->etag);
			goto out;
		}
		buf_reset(&tagging);
		if (t->o->metadata && h.tag_count > 0) {
			rc = fetch_tagging(t, skey.data, &tagging, &err);
			if (rc) {
				s3_object_head_release(&h);
				buf_adds(reason, err.message);
				goto out;
			}
		}
		struct s3_put_opts po;
		put_opts_fill(t, &po, &h.meta, tagging.len ? tagging.data : NULL);
		po.content_md5 = b64;
		uint64_t fp = t->o->metadata ? meta_fingerprint(&h.meta) : 0;
		rc = s3_put_object(t->o->dst, t->o->dst_bucket, dkey.data, wk->body.data,
				   wk->body.len, &po, etag, &err);
		s3_object_head_release(&h);
		if (rc) {
			buf_adds(reason, err.message);
			goto out;
		}
		/* Content-MD5 made the server check the body; an ETag that is not its
		 * MD5 (SSE-KMS, default bucket encryption) is no error. */
		if (dest_etag_is_md5(t) && s3_etag_parse(etag, &parts) && parts == 0 &&
		    strcasecmp(etag, hex) != 0)
			log_debug("%s: destination etag %s is not the body md5 %s", dkey.data, etag,
				  hex);
		add64(&t->prog->bytes_moved, wk->body.len);
		object_done(t, j, etag, fp);
		break;
	}
out:
	buf_release(&skey);
	buf_release(&dkey);
	buf_release(&tagging);
	return rc;
}

/* ---- multipart copies ---- */

static void upload_free(struct upload *up)
{
	if (!up)
		return;
	pthread_mutex_destroy(&up->lock);
	job_free(up->obj);
	free(up->src_key);
	free(up->dst_key);
	free(up->rec.parts);
	free(up->psize);
	free(up->poff);
	free(up->petag);
	free(up->pdone);
	if (up->whole) {
		EVP_MD_CTX_free(up->whole);
		pthread_cond_destroy(&up->hash_cond);
	}
	s3_meta_release(&up->meta);
	free(up->tagging);
	s3_tags_release(&up->tags);
	free(up);
}

/* Enqueue the upload's record with its finished parts (call with up->lock held). */
static void save_upload_locked(struct transfer *t, struct upload *up)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < up->nparts; i++) {
		if (!up->pdone[i])
			continue;
		struct upload_part *p = &up->rec.parts[n++];
		p->number = i + 1;
		p->size = up->psize[i];
		strlcpy_s(p->etag, up->petag[i], sizeof(p->etag));
	}
	up->rec.n_parts = n;
	int rc = manifest_writer_put_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len,
					    &up->rec);
	if (rc)
		set_fatal(t, rc, "upload record");
	up->since_save = 0;
}

/* Abort every unfinished upload of exactly dkey started at or after since
 * (a CreateMultipartUpload whose id was never recorded). */
struct stray_ctx {
	struct transfer *t;
	const char *dkey;
	int64_t since;
	struct buf ids; /* NUL-separated ids to abort */
};

static int stray_cb(void *ctx, const struct s3_upload *u)
{
	struct stray_ctx *s = ctx;
	if (strcmp(u->key, s->dkey) == 0 && u->initiated >= s->since) {
		buf_adds(&s->ids, u->upload_id);
		buf_addch(&s->ids, '\0');
	}
	return 0;
}

static void abort_strays(struct transfer *t, const char *dkey, int64_t since)
{
	struct stray_ctx s = {t, dkey, since, BUF_INIT};
	struct dth_err err;
	err_clear(&err);
	if (s3_mpu_list_uploads(t->o->dst, t->o->dst_bucket, dkey, stray_cb, &s, &err) == 0) {
		for (size_t off = 0; off < s.ids.len; off += strlen(s.ids.data + off) + 1) {
			struct dth_err e2;
			err_clear(&e2);
			if (s3_mpu_abort(t->o->dst, t->o->dst_bucket, dkey, s.ids.data + off,
					 &e2) == 0)
				log_info("aborted an unrecorded multipart upload of %s", dkey);
		}
	} else {
		log_warn("could not list multipart uploads of %s: %s", dkey, err.message);
	}
	buf_release(&s.ids);
}

unsigned transfer_guess_part_sizes(uint64_t size, unsigned nparts, uint64_t *out, unsigned max)
{
	static const unsigned pref_mib[] = {8, 5, 16, 64, 10, 15, 32, 50, 100, 128, 256, 512};
	const uint64_t MiB = 1ULL << 20;
	unsigned n = 0;
	if (nparts < 2 || max == 0 || size < nparts)
		return 0;
	/* ceil(size / p) == nparts  <=>  size / nparts <= p < size / (nparts - 1) */
	uint64_t lo = size / nparts + (size % nparts != 0);
	uint64_t hi = (size - 1) / (nparts - 1); /* largest p with (nparts-1)*p < size */
	if (lo > hi)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(pref_mib) && n < max; i++) {
		uint64_t p = pref_mib[i] * MiB;
		if (p >= lo && p <= hi)
			out[n++] = p;
	}
	for (uint64_t p = (lo + MiB - 1) / MiB * MiB; p <= hi && n < max; p += MiB) {
		bool seen = false;
		for (unsigned k = 0; k < n; k++)
			seen |= out[k] == p;
		if (!seen)
			out[n++] = p;
	}
	/* Round decimal megabytes, then the smallest size that fits. */
	for (uint64_t p = (lo + 999999) / 1000000 * 1000000; p <= hi && n < max; p += 1000000) {
		bool seen = false;
		for (unsigned k = 0; k < n; k++)
			seen |= out[k] == p;
		if (!seen)
			out[n++] = p;
	}
	if (n == 0)
		out[n++] = lo;
	return n;
}

static void set_uniform(struct upload *up, uint64_t size, uint64_t p)
{
	for (uint32_t i = 0; i < up->nparts; i++)
		up->psize[i] = (i + 1 < up->nparts) ? p : size - p * (up->nparts - 1);
	up->rec.part_size = p;
}

/* The source's part layout from HEAD ?partNumber=N. Fills psize; returns 0, or
 * -EAGAIN when the layout cannot be repeated (use our own). */
static int source_layout(struct transfer *t, const char *skey, uint64_t size, unsigned nsrc,
			 struct upload *up, struct dth_err *err)
{
	struct s3_object_head h1;
	int rc = s3_head_object(t->o->src, t->o->src_bucket, skey, 1, &h1, err);
	if (rc)
		return rc;
	uint64_t p1 = h1.size;
	/* A server that ignores partNumber answers with the whole object. */
	bool honoured = h1.parts_count > 0 || h1.size != size;
	if (h1.parts_count)
		nsrc = h1.parts_count;
	s3_object_head_release(&h1);
	if (nsrc == 0 || nsrc > MAX_PARTS || p1 == 0)
		return -EAGAIN;
	up->nparts = nsrc;
	up->psize = xcalloc(nsrc, sizeof(uint64_t));
	if (!honoured && nsrc > 1) {
		up->ncand = transfer_guess_part_sizes(size, nsrc, up->cand, ARRAY_SIZE(up->cand));
		if (!up->ncand)
			return -EAGAIN;
		set_uniform(up, size, up->cand[0]);
		return 0;
	}
	if (nsrc == 1 && p1 == size) {
		up->psize[0] = size;
		up->rec.part_size = size;
		return 0;
	}
	uint64_t n = size / p1 + (size % p1 != 0);
	if (n == nsrc) {
		/* Same count; check the last part too, so uneven layouts are caught. */
		bool even = true;
		if (nsrc > 1) {
			rc = s3_head_object(t->o->src, t->o->src_bucket, skey, nsrc, &h1, err);
			if (rc)
				return rc;
			even = h1.size == size - p1 * (nsrc - 1);
			s3_object_head_release(&h1);
		}
		if (even) {
			set_uniform(up, size, p1);
			return 0;
		}
	}
	/* Parts of different sizes: ask for each one. */
	uint64_t sum = p1;
	up->psize[0] = p1;
	for (uint32_t i = 1; i < nsrc; i++) {
		rc = s3_head_object(t->o->src, t->o->src_bucket, skey, i + 1, &h1, err);
		if (rc)
			return rc;
		up->psize[i] = h1.size;
		sum += h1.size;
		s3_object_head_release(&h1);
	}
	if (sum != size)
		return -EAGAIN;
	up->rec.part_size = 0; /* irregular */
	return 0;
}

struct listparts_ctx {
	struct upload *up;
	uint32_t found;
};

static int listparts_cb(void *ctx, const struct s3_part *p)
{
	struct listparts_ctx *c = ctx;
	struct upload *up = c->up;
	if (p->number >= 1 && p->number <= up->nparts && p->size == up->psize[p->number - 1] &&
	    !up->pdone[p->number - 1]) {
		up->pdone[p->number - 1] = true;
		strlcpy_s(up->petag[p->number - 1], p->etag, S3_ETAG_MAX);
		c->found++;
	}
	return 0;
}

static void finalize_upload(struct worker *wk, struct upload *up);

/* The destination already holds this exact copy (same size, the source's ETag). */
static bool dest_has_copy(struct transfer *t, const char *dkey, const struct upload *up)
{
	struct s3_object_head h;
	struct dth_err err;
	err_clear(&err);
	if (s3_head_object(t->o->dst, t->o->dst_bucket, dkey, 0, &h, &err))
		return false;
	bool same = h.size == up->rec.object_size && strcasecmp(h.etag, up->rec.src_etag) == 0;
	s3_object_head_release(&h);
	return same;
}

static int start_large(struct worker *wk, struct job *j, struct buf *reason)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	err_clear(&err);
	struct buf skey = BUF_INIT, dkey = BUF_INIT, tagging = BUF_INIT, uid = BUF_INIT;
	struct upload *up = NULL;
	struct upload_record old;
	bool have_old = false;
	struct s3_object_head h;
	bool have_h = false;
	bool keep = false; /* keep the upload record on failure */
	int rc;
	src_key_of(t, j->key, j->key_len, &skey);
	dst_key_of(t, j->key, j->key_len, &dkey);

	rc = s3_head_object(t->o->src, t->o->src_bucket, skey.data, 0, &h, &err);
	if (rc) {
		buf_adds(reason, err.message);
		goto fail;
	}
	have_h = true;
	j->size = h.size;
	strlcpy_s(j->etag, h.etag, sizeof(j->etag));
	if (h.last_modified)
		j->last_modified = h.last_modified;

	up = xcalloc(1, sizeof(*up));
	up->obj = j; /* borrowed until the parts are queued */
	pthread_mutex_init(&up->lock, NULL);

	up->src_key = xstrdup(skey.data);
	up->dst_key = xstrdup(dkey.data);
	strlcpy_s(up->rec.src_etag, h.etag, sizeof(up->rec.src_etag));
	up->rec.object_size = h.size;

	unsigned nsrc = 0;
	rc = -EAGAIN;
	if (s3_etag_parse(h.etag, &nsrc) && nsrc > 0) {
		rc = source_layout(t, skey.data, h.size, nsrc, up, &err);
		if (rc && rc != -EAGAIN) {
			buf_adds(reason, err.message);
			goto fail;
		}
		if (rc == 0)
			up->replicate = true;
		else
			log_info("%s: the source part layout cannot be repeated; the destination "
				 "etag will differ",
				 skey.data);
	}
	if (rc == -EAGAIN) {
		free(up->psize);
		uint64_t ps;
		uint32_t n;
		transfer_layout(h.size, t->o->part_size, &ps, &n);
		up->nparts = n;
		up->psize = xcalloc(n, sizeof(uint64_t));
		for (uint32_t i = 0; i < n; i++)
			up->psize[i] = (i + 1 < n) ? ps : h.size - ps * (n - 1);
		up->rec.part_size = ps;
	}
	up->rec.part_count = up->nparts;
	up->poff = xcalloc(up->nparts, sizeof(uint64_t));
	for (uint32_t i = 1; i < up->nparts; i++)
		up->poff[i] = up->poff[i - 1] + up->psize[i - 1];
	up->petag = xcalloc(up->nparts, S3_ETAG_MAX);
	up->pdone = xcalloc(up->nparts, sizeof(bool));
	up->rec.parts = xcalloc(up->nparts, sizeof(struct upload_part));

	/* HEAD does not always tell the tag count (Ceph 16 leaves it out), and
	 * one GetObjectTagging per large object costs little. */
	if (t->o->metadata) {
		rc = s3_get_tagging(t->o->src, t->o->src_bucket, skey.data, &up->tags, &err);
		if (!rc)
			s3_tags_to_query(&up->tags, &tagging);
		if (rc) {
			buf_adds(reason, err.message);
			goto fail;
		}
	}

	s3_meta_copy(&up->meta, &h.meta);
	up->tagging = tagging.len ? xstrdup(tagging.data) : NULL;

	/* An upload left by an earlier run: resume it when it copies the same
	 * version with the same layout, else abort it. */
	rc = manifest_upload_get(t->o->manifest, t->o->task_id, j->key, j->key_len, &old);
	if (rc == 0) {
		have_old = true;
		if (!old.upload_id[0]) {
			abort_strays(t, dkey.data, old.created - 300);
		} else if (strcmp(old.src_etag, up->rec.src_etag) == 0 &&
			   old.object_size == up->rec.object_size && old.part_count == up->nparts &&
			   old.part_size == up->rec.part_size) {
			struct listparts_ctx lc = {up, 0};
			err_clear(&err);
			rc = s3_mpu_list_parts(t->o->dst, t->o->dst_bucket, dkey.data,
					       old.upload_id, listparts_cb, &lc, &err);
			if (rc == -ENOENT && up->replicate && dest_has_copy(t, dkey.data, up)) {
				/* Completed just before a crash, not yet recorded. */
				log_info("%s was completed by an earlier run", dkey.data);
				if (manifest_writer_del_upload(t->w, t->o->task_id, j->key,
							       j->key_len))
					set_fatal(t, -EIO, "upload record");
				object_done(t, j, up->rec.src_etag,
					    t->o->metadata ? meta_fingerprint(&h.meta) : 0);
				rc = 1; /* done; the caller still owns the job */
				goto out;
			}
			if (rc != -ENOENT) {
				if (rc) {
					/* No ListParts here (s3rver): trust our record. */
					for (uint32_t k = 0; k < old.n_parts; k++) {
						uint32_t num = old.parts[k].number;
						if (num >= 1 && num <= up->nparts &&
						    old.parts[k].size == up->psize[num - 1]) {
							up->pdone[num - 1] = true;
							strlcpy_s(up->petag[num - 1],
								  old.parts[k].etag, S3_ETAG_MAX);
						}
					}
				}
				strlcpy_s(up->rec.upload_id, old.upload_id,
					  sizeof(up->rec.upload_id));
				up->rec.created = old.created;
				log_info("resuming the multipart upload of %s", dkey.data);
			}
		} else {
			struct dth_err e2;
			err_clear(&e2);
			int a = s3_mpu_abort(t->o->dst, t->o->dst_bucket, dkey.data, old.upload_id,
					     &e2);
			if (a && a != -ENOENT) {
				/* Keep its record: it must not be forgotten while it costs. */
				keep = true;
				rc = a;
				buf_addf(reason, "cannot abort the stale multipart upload: %s",
					 e2.message);
				goto fail;
			}
			log_info("aborted a stale multipart upload of %s", dkey.data);
		}
	} else if (rc != -ENOENT) {
		buf_addf(reason, "reading the upload record: %s", strerror(-rc));
		goto fail;
	}

	if (!up->rec.upload_id[0]) {
		/* Record the intent durably before creating, so a crash right after
		 * the create leaves a trace the next run uses to abort it. */
		up->rec.created = (int64_t)time(NULL);
		save_upload_locked(t, up);
		if ((rc = manifest_writer_flush(t->w))) {
			set_fatal(t, rc, "upload intent");
			buf_addf(reason, "manifest: %s", strerror(-rc));
			goto fail;
		}
		struct s3_put_opts po;
		put_opts_fill(t, &po, &h.meta, tagging.len ? tagging.data : NULL);
		err_clear(&err);
		rc = s3_mpu_create(t->o->dst, t->o->dst_bucket, dkey.data, &po, &uid, &err);
		if (rc) {
			buf_adds(reason, err.message);
			goto fail;
		}
		strlcpy_s(up->rec.upload_id, uid.data, sizeof(up->rec.upload_id));
		save_upload_locked(t, up);
		if ((rc = manifest_writer_flush(t->w))) {
			set_fatal(t, rc, "upload record");
			buf_addf(reason, "manifest: %s", strerror(-rc));
			goto fail;
		}
	}
	j->rec.meta_fp = t->o->metadata ? meta_fingerprint(&h.meta) : 0;

	/* Queue the parts still to do; this worker then takes them like any other. */
	uint32_t todo = 0;
	for (uint32_t i = 0; i < up->nparts; i++)
		if (!up->pdone[i])
			todo++;
	unsigned np;
	if (todo == up->nparts && !t->o->same_endpoint && s3_etag_parse(j->etag, &np) && np == 0) {
		up->whole = EVP_MD_CTX_new();
		if (up->whole && EVP_DigestInit_ex(up->whole, EVP_md5(), NULL) == 1) {
			pthread_cond_init(&up->hash_cond, NULL);
		} else {
			EVP_MD_CTX_free(up->whole);
			up->whole = NULL;
		}
	}
	up->outstanding = todo;
	if (todo == 0) {
		finalize_upload(wk, up);
	} else {
		pthread_mutex_lock(&t->lock);
		for (uint32_t i = 0; i < up->nparts; i++) {
			if (up->pdone[i])
				continue;
			struct job *pj = xcalloc(1, sizeof(*pj));
			pj->kind = JOB_PART;
			pj->up = up;
			pj->part = i;
			q_push(&t->parts, pj);
		}
		pthread_cond_broadcast(&t->cond_work);
		pthread_mutex_unlock(&t->lock);
	}
	rc = 0;
	up = NULL;
	goto out;
fail:
	if (!rc)
		rc = -EIO;
	if (up && up->rec.upload_id[0]) {
		struct dth_err e2;
		err_clear(&e2);
		int a =
		    s3_mpu_abort(t->o->dst, t->o->dst_bucket, dkey.data, up->rec.upload_id, &e2);
		keep |= a && a != -ENOENT;
	} else if (up && up->rec.created) {
		/* A create that failed may still have made an upload: the intent record
		 * stays, and the next run sweeps for it. */
		keep = true;
	}
	if (up && !keep && (have_old || up->rec.created)) {
		if (manifest_writer_del_upload(t->w, t->o->task_id, j->key, j->key_len))
			set_fatal(t, -EIO, "upload record");
	}
out:
	if (have_old)
		codec_upload_release(&old);
	if (have_h)
		s3_object_head_release(&h);
	if (up) {
		up->obj = NULL; /* the caller still owns the job on failure */
		upload_free(up);
	}
	buf_release(&skey);
	buf_release(&dkey);
	buf_release(&tagging);
	buf_release(&uid);
	return rc;
}

/* Abort the upload and forget it; when the abort fails (the network is down)
 * the record stays so the next run resumes or aborts it. */
static void drop_upload(struct transfer *t, struct upload *up)
{
	struct dth_err err;
	err_clear(&err);
	int a = s3_mpu_abort(t->o->dst, t->o->dst_bucket, up->dst_key, up->rec.upload_id, &err);
	if (a && a != -ENOENT) {
		log_warn("could not abort the multipart upload of %s: %s (kept for the next run)",
			 up->dst_key, err.message);
		return;
	}
	if (manifest_writer_del_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len))
		set_fatal(t, -EIO, "upload record");
}

/* Some servers (Ceph 16) answer CompleteMultipartUpload with an empty ETag:
 * ask for it then. */
static void complete_etag(struct transfer *t, const char *dkey, char *etag)
{
	if (etag[0])
		return;
	struct s3_object_head h;
	struct dth_err err;
	err_clear(&err);
	if (s3_head_object(t->o->dst, t->o->dst_bucket, dkey, 0, &h, &err) == 0) {
		strlcpy_s(etag, h.etag, S3_ETAG_MAX);
		s3_object_head_release(&h);
	}
}

/* Copy the destination object onto itself with parts of p bytes (UploadPartCopy),
 * so its ETag follows that layout. etag gets the new ETag. */
static int relayout(struct transfer *t, struct upload *up, uint64_t p, char *etag)
{
	struct dth_err err;
	err_clear(&err);
	uint64_t size = up->rec.object_size;
	uint32_t n = (uint32_t)(size / p + (size % p != 0));
	if (n != up->nparts)
		return -EINVAL;
	struct s3_put_opts po;
	put_opts_fill(t, &po, &up->meta, up->tagging);
	struct buf uid = BUF_INIT;
	struct s3_part *parts = xcalloc(n, sizeof(*parts));
	char cur[S3_ETAG_MAX];
	strlcpy_s(cur, etag, sizeof(cur));
	int rc = s3_mpu_create(t->o->dst, t->o->dst_bucket, up->dst_key, &po, &uid, &err);
	if (rc)
		goto out;
	/* Recorded like any upload, so a crash here leaves nothing to accrue cost. */
	struct upload_record ur;
	memset(&ur, 0, sizeof(ur));
	strlcpy_s(ur.upload_id, uid.data, sizeof(ur.upload_id));
	strlcpy_s(ur.src_etag, "relayout", sizeof(ur.src_etag));
	ur.object_size = size;
	ur.part_size = p;
	ur.part_count = n;
	ur.created = (int64_t)time(NULL);
	if (manifest_writer_put_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len, &ur) ||
	    manifest_writer_flush(t->w))
		set_fatal(t, -EIO, "upload record");
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint64_t off = (uint64_t)i * p, len = (i + 1 < n) ? p : size - off;
		parts[i].number = i + 1;
		parts[i].size = len;
		rc = s3_mpu_upload_part_copy(t->o->dst, t->o->dst_bucket, up->dst_key, uid.data,
					     i + 1, t->o->dst_bucket, up->dst_key, off, len, cur,
					     parts[i].etag, &err);
	}
	if (!rc) {
		rc = s3_mpu_complete(t->o->dst, t->o->dst_bucket, up->dst_key, uid.data, parts, n,
				     etag, &err);
		if (!rc)
			complete_etag(t, up->dst_key, etag);
	}
	bool forget = true;
	if (rc) {
		struct dth_err e2;
		err_clear(&e2);
		int a = s3_mpu_abort(t->o->dst, t->o->dst_bucket, up->dst_key, uid.data, &e2);
		forget = !a || a == -ENOENT;
		log_warn("%s: re-laying out the copy with %llu-byte parts failed: %s", up->dst_key,
			 (unsigned long long)p, err.message);
	} else {
		log_info("%s: re-laid out with %llu-byte parts, etag %s", up->dst_key,
			 (unsigned long long)p, etag);
	}
	if (forget &&
	    manifest_writer_del_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len))
		set_fatal(t, -EIO, "upload record");
out:
	free(parts);
	buf_release(&uid);
	return rc;
}

static void finalize_upload(struct worker *wk, struct upload *up)
{
	struct transfer *t = wk->t;
	struct job *j = up->obj;
	struct dth_err err;
	err_clear(&err);
	bool all = true;
	for (uint32_t i = 0; i < up->nparts; i++)
		if (!up->pdone[i])
			all = false;

	if (!all && !up->err) {
		/* Interrupted: keep the upload and its parts for the next run. */
		pthread_mutex_lock(&up->lock);
		save_upload_locked(t, up);
		pthread_mutex_unlock(&up->lock);
		goto out;
	}
	if (up->err) {
		drop_upload(t, up);
		object_failed(t, j, up->errmsg);
		goto out;
	}
	if (up->whole && up->next_hash == up->nparts) {
		unsigned char md[16];
		unsigned int mdlen = 16;
		char hex[33];
		EVP_DigestFinal_ex(up->whole, md, &mdlen);
		hex_encode(md, 16, hex);
		if (strcasecmp(hex, j->etag) != 0) {
			char reason[CODEC_ERROR_MAX];
			reasonf(reason, sizeof(reason),
				"the md5 of the bytes read (%s) is not the source etag %s", hex,
				j->etag);
			drop_upload(t, up);
			object_failed(t, j, reason);
			goto out;
		}
	}
	struct s3_part *parts = xcalloc(up->nparts, sizeof(*parts));
	for (uint32_t i = 0; i < up->nparts; i++) {
		parts[i].number = i + 1;
		parts[i].size = up->psize[i];
		strlcpy_s(parts[i].etag, up->petag[i], sizeof(parts[i].etag));
	}
	char etag[S3_ETAG_MAX] = "";
	int rc = s3_mpu_complete(t->o->dst, t->o->dst_bucket, up->dst_key, up->rec.upload_id, parts,
				 up->nparts, etag, &err);
	free(parts);
	if (rc) {
		char reason[CODEC_ERROR_MAX];
		reasonf(reason, sizeof(reason), "%s", err.message);
		drop_upload(t, up);
		object_failed(t, j, reason);
		goto out;
	}
	if (manifest_writer_del_upload(t->w, t->o->task_id, j->key, j->key_len))
		set_fatal(t, -EIO, "upload record");
	/* A CreateMultipartUpload retried after a lost answer leaves a twin. */
	abort_strays(t, up->dst_key, up->rec.created - 300);
	if (t->o->metadata && up->tags.n) {
		err_clear(&err);
		if (s3_put_tagging(t->o->dst, t->o->dst_bucket, up->dst_key, &up->tags, &err)) {
			char reason[CODEC_ERROR_MAX];
			reasonf(reason, sizeof(reason), "setting the tags: %s", err.message);
			object_failed(t, j, reason);
			goto out;
		}
	}
	complete_etag(t, up->dst_key, etag);
	if (up->replicate && dest_etag_is_md5(t) && strcasecmp(etag, j->etag) != 0) {
		/* A guessed part size was wrong: lay the copy out again, server-side,
		 * with the next size that fits, until the ETags agree. */
		for (unsigned k = 1; k < up->ncand && strcasecmp(etag, j->etag) != 0; k++) {
			if (relayout(t, up, up->cand[k], etag) != 0)
				break;
		}
	}
	if (up->replicate && dest_etag_is_md5(t) && strcasecmp(etag, j->etag) != 0) {
		/* Every part was checked by its MD5, so the bytes are right; only the
		 * source's part layout (unknown, or an encrypted destination) keeps
		 * the ETags apart. */
		log_warn("%s: copied and verified part by part, but the destination etag %s "
			 "differs from the source's %s (its part layout could not be repeated)",
			 up->dst_key, etag, j->etag);
	}
	object_done(t, j, etag, j->rec.meta_fp);
out:
	upload_free(up);
}

/* Feed part i to the whole-object MD5 once parts 0..i-1 are in. Returns 0, or
 * -ECANCELED when the upload failed or the run stops meanwhile. */
static int hash_in_order(struct transfer *t, struct upload *up, uint32_t i, const struct buf *b)
{
	int rc = 0;
	pthread_mutex_lock(&up->lock);
	while (up->next_hash != i && !up->err && !stopping(t)) {
		struct timespec ts;
		deadline_in_ms(&ts, 100);
		pthread_cond_timedwait(&up->hash_cond, &up->lock, &ts);
	}
	if (up->next_hash == i) {
		EVP_DigestUpdate(up->whole, b->data, b->len);
		up->next_hash++;
		pthread_cond_broadcast(&up->hash_cond);
	} else {
		rc = -ECANCELED;
	}
	pthread_mutex_unlock(&up->lock);
	return rc;
}

static void run_part(struct worker *wk, struct job *pj)
{
	struct transfer *t = wk->t;
	struct upload *up = pj->up;
	uint32_t i = pj->part;
	struct dth_err err;
	err_clear(&err);
	char etag[S3_ETAG_MAX] = "";
	char reason[CODEC_ERROR_MAX] = "";
	int rc = 0;
	bool skip;

	pthread_mutex_lock(&up->lock);
	skip = up->err != 0;
	pthread_mutex_unlock(&up->lock);
	if (skip || stopping(t)) {
		rc = -ECANCELED;
		goto done;
	}
	if (t->o->same_endpoint) {
		rc =
		    s3_mpu_upload_part_copy(t->o->dst, t->o->dst_bucket, up->dst_key,
					    up->rec.upload_id, i + 1, t->o->src_bucket, up->src_key,
					    up->poff[i], up->psize[i], up->obj->etag, etag, &err);
		if (rc)
			reasonf(reason, sizeof(reason), "part %u: %s", i + 1,
				rc == -ESTALE ? "source changed during the copy" : err.message);
		else
			add64(&t->prog->bytes_moved, up->psize[i]);
		goto done;
	}
	for (int attempt = 1;; attempt++) {
		buf_reset(&wk->body);
		buf_grow(&wk->body, up->psize[i]);
		err_clear(&err);
		rc = s3_get_object(t->o->src, t->o->src_bucket, up->src_key, up->poff[i],
				   up->psize[i], up->obj->etag, &wk->body, NULL, &err);
		if (rc) {
			reasonf(reason, sizeof(reason), "part %u: %s", i + 1,
				rc == -ESTALE ? "source changed during the copy; the next run "
						"copies it"
					      : err.message);
			goto done;
		}
		unsigned char md[16];
		char hex[33], b64[25];
		md5_of(wk->body.data, wk->body.len, md);
		md5_hex_b64(md, hex, b64);
		if (up->whole && attempt == 1 && (rc = hash_in_order(t, up, i, &wk->body))) {
			reasonf(reason, sizeof(reason), "part %u: interrupted", i + 1);
			goto done;
		}
		err_clear(&err);
		rc = s3_mpu_upload_part(t->o->dst, t->o->dst_bucket, up->dst_key, up->rec.upload_id,
					i + 1, wk->body.data, wk->body.len, b64, etag, &err);
		if (rc) {
			reasonf(reason, sizeof(reason), "part %u: %s", i + 1, err.message);
			goto done;
		}
		if (dest_etag_is_md5(t) && strcasecmp(etag, hex) != 0)
			log_debug("%s part %u: etag %s is not the part md5 %s", up->dst_key, i + 1,
				  etag, hex);
		add64(&t->prog->bytes_moved, wk->body.len);
		break;
	}
done:;
	bool last;
	pthread_mutex_lock(&up->lock);
	if (rc == 0) {
		up->pdone[i] = true;
		strlcpy_s(up->petag[i], etag, S3_ETAG_MAX);
		up->since_save++;
	} else if (rc != -ECANCELED && !up->err) {
		up->err = rc;
		strlcpy_s(up->errmsg, reason, sizeof(up->errmsg));
	}
	if (rc && up->whole)
		pthread_cond_broadcast(&up->hash_cond);
	last = --up->outstanding == 0;
	if (!last && up->since_save >= SAVE_EVERY_PART)
		save_upload_locked(t, up);
	pthread_mutex_unlock(&up->lock);
	if (last)
		finalize_upload(wk, up);
}

/* ---- deletes ---- */

/* The planner never hands over a key holding a NUL (see sync.c); checked
 * again here because such a key, cut at the NUL, would name another object. */
static bool key_fits(const struct job *j, struct dth_err *err)
{
	if (!memchr(j->key, '\0', j->key_len))
		return true;
	err_set(err, -EINVAL, "the key holds a NUL byte, which no S3 request can carry");
	return false;
}

static void run_delete(struct worker *wk, struct job *j)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	err_clear(&err);
	struct buf dkey = BUF_INIT;
	dst_key_of(t, j->key, j->key_len, &dkey);
	int rc = key_fits(j, &err) ? s3_delete_object(t->o->dst, t->o->dst_bucket, dkey.data, &err)
				   : -EINVAL;
	if (rc) {
		char reason[CODEC_ERROR_MAX];
		reasonf(reason, sizeof(reason), "delete: %s", err.message);
		add64(&t->prog->failed, 1);
		if (t->o->on_failure)
			t->o->on_failure(t->o->on_failure_ctx, j->key, j->key_len, reason);
	} else {
		add64(&t->prog->deleted, 1);
		if (j->has_rec) {
			struct obj_record r = j->rec;
			r.status = OBJ_DELETED;
			r.last_error[0] = '\0';
			int wrc =
			    manifest_writer_put_obj(t->w, t->o->task_id, j->key, j->key_len, &r);
			if (wrc)
				set_fatal(t, wrc, "object record");
		}
	}
	buf_release(&dkey);
}

/* ---- the pool ---- */

static void run_object(struct worker *wk, struct job *j)
{
	struct transfer *t = wk->t;
	struct buf reason = BUF_INIT;
	if (stopping(t)) {
		job_free(j);
		return;
	}
	unsigned parts = 0;
	bool src_mp = s3_etag_parse(j->etag, &parts) && parts > 0;
	int rc;
	struct dth_err kerr;
	err_clear(&kerr);
	if (!key_fits(j, &kerr)) {
		object_failed(t, j, kerr.message);
		job_free(j);
		buf_release(&reason);
		return;
	}
	if (j->size >= t->o->multipart_threshold || src_mp) {
		rc = start_large(wk, j, &reason);
		if (rc == 0) {
			buf_release(&reason);
			return; /* the upload owns the job now */
		}
		if (rc == 1)
			rc = 0;
	} else {
		rc = copy_small(wk, j, &reason);
		if (rc == -EAGAIN) {
			buf_reset(&reason);
			rc = start_large(wk, j, &reason);
			if (rc == 0) {
				buf_release(&reason);
				return;
			}
			if (rc == 1)
				rc = 0;
		}
	}
	if (rc)
		object_failed(t, j, reason.len ? reason.data : strerror(-rc));
	buf_release(&reason);
	job_free(j);
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct transfer *t = wk->t;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		struct job *j;
		while (!(j = q_pop(&t->parts)) && !(j = q_pop(&t->objects)) && !t->shutdown)
			pthread_cond_wait(&t->cond_work, &t->lock);
		if (!j) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		if (j->kind != JOB_PART)
			pthread_cond_signal(&t->cond_space);
		t->running++;
		pthread_mutex_unlock(&t->lock);

		switch (j->kind) {
		case JOB_PART:
			run_part(wk, j);
			free(j);
			break;
		case JOB_DELETE:
			run_delete(wk, j);
			job_free(j);
			break;
		case JOB_OBJECT:
			run_object(wk, j);
			break;
		}

		pthread_mutex_lock(&t->lock);
		t->running--;
		if (!t->running && !t->parts.n && !t->objects.n)
			pthread_cond_broadcast(&t->cond_idle);
		pthread_mutex_unlock(&t->lock);
	}
	buf_release(&wk->body);
	free(wk);
	return NULL;
}

struct transfer *transfer_new(const struct sync_opts *o, struct manifest_writer *w,
			      struct sync_progress *prog)
{
	struct transfer *t = xcalloc(1, sizeof(*t));
	t->o = o;
	t->w = w;
	t->prog = prog;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond_work, NULL);
	pthread_cond_init(&t->cond_space, NULL);
	pthread_cond_init(&t->cond_idle, NULL);
	t->nthreads = o->concurrency ? o->concurrency : 1;
	t->max_objects = 2 * (size_t)t->nthreads + 16;
	t->threads = xcalloc(t->nthreads, sizeof(pthread_t));
	for (unsigned i = 0; i < t->nthreads; i++) {
		struct worker *wk = xcalloc(1, sizeof(*wk));
		wk->t = t;
		buf_init(&wk->body);
		if (pthread_create(&t->threads[i], NULL, worker_main, wk)) {
			free(wk);
			t->nthreads = i;
			break;
		}
	}
	return t;
}

int transfer_submit(struct transfer *t, const struct plan *p)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->kind = p->action == SYNC_DELETE ? JOB_DELETE : JOB_OBJECT;
	j->key = xmemdup(p->key, p->key_len); /* all bytes: a key may hold a NUL */
	j->key_len = p->key_len;
	j->size = p->size;
	strlcpy_s(j->etag, p->etag, sizeof(j->etag));
	j->last_modified = p->last_modified;
	j->action = p->action;
	j->has_rec = p->has_rec;
	if (p->has_rec)
		j->rec = p->rec;
	pthread_mutex_lock(&t->lock);
	if (t->fatal || !t->nthreads) {
		int rc = t->fatal ? t->fatal : -EAGAIN;
		pthread_mutex_unlock(&t->lock);
		job_free(j);
		return rc;
	}
	while (t->objects.n >= t->max_objects && !t->shutdown)
		pthread_cond_wait(&t->cond_space, &t->lock);
	q_push(&t->objects, j);
	pthread_cond_signal(&t->cond_work);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int transfer_finish(struct transfer *t, struct dth_err *err)
{
	pthread_mutex_lock(&t->lock);
	while (t->running || t->parts.n || t->objects.n)
		pthread_cond_wait(&t->cond_idle, &t->lock);
	t->shutdown = true;
	pthread_cond_broadcast(&t->cond_work);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < t->nthreads; i++)
		pthread_join(t->threads[i], NULL);
	t->nthreads = 0;
	if (t->fatal && err)
		*err = t->fatal_err;
	return t->fatal;
}

void transfer_free(struct transfer *t)
{
	if (!t)
		return;
	if (t->nthreads) {
		struct dth_err e;
		ignore_rc(transfer_finish(t, &e));
	}
	struct job *j;
	while ((j = q_pop(&t->objects)))
		job_free(j);
	while ((j = q_pop(&t->parts)))
		free(j);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond_work);
	pthread_cond_destroy(&t->cond_space);
	pthread_cond_destroy(&t->cond_idle);
	free(t->threads);
	free(t);
}
