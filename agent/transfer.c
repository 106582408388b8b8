#include "common/compat.h"

#include "agent/transfer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "agent/aimd.h"
#include "agent/budget.h"
#include "agent/fairshare.h"
#include "agent/layout.h"
#include "agent/pipe.h"
#include "common/buf.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "manifest/codec.h"
#include "manifest/manifest.h"
#include "remote/exec.h"
#include "remote/reqstats.h"
#include "remote/retry.h"
#include "remote/s3.h"

/* Locking: t->lock guards the queues, running, shutdown, fatal, the threads
 * started after transfer_new (nthreads, small_started, nsmall) and the small
 * lanes' gate (gate, throttled_seen); an upload's lock guards its parts'
 * state (pdone, petag, outstanding, err, next_hash). A worker never holds
 * both at once. */

#define COPY_ATTEMPTS	 3 /* whole-copy attempts (the source changed, a stream broke) */
#define SAVE_EVERY_PART	 16
#define SINGLE_PUT_MAX	 (5ULL << 30) /* the most one PUT may carry */
#define RING_MAX	 (4u << 20)
#define RING_MIN	 (64u << 10)
#define DEFAULT_MEMORY	 TRANSFER_DEFAULT_MEMORY
#define MD5_HEX_LEN	 32
#define EMPTY_MD5_BASE64 "1B2M2Y8AsgTpgAmY7PhCfg=="

enum job_kind { JOB_OBJECT, JOB_DELETE, JOB_PART };

struct upload;

struct job {
	enum job_kind kind;
	struct job *next;
	/* object and delete jobs */
	char *key; /* relative key, key_len bytes + NUL (owned) */
	size_t key_len;
	uint64_t size;
	char etag[S3_ETAG_MAX];
	int64_t last_modified;
	enum sync_action action;
	bool has_rec;
	struct obj_record rec; /* previous record when has_rec */
	bool hash;	       /* hash on the client: a redo after the servers' proof failed */
	bool small;	       /* queued on t->small */
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
	struct layout lay;	  /* size of each part */
	uint64_t *poff;		  /* offset of each part */
	char (*petag)[S3_ETAG_MAX];
	bool *pdone;
	uint32_t outstanding; /* part jobs not yet finished */
	uint32_t since_save;
	bool replicate;	     /* the source layout is repeated: dest ETag must equal source */
	bool hashed;	     /* parts hashed here, sent with Content-MD5; else proven by the
				ETag the destination's part MD5s make (check_unhashed) */
	struct s3_meta meta; /* headers of the copy, for a re-layout */
	char *tagging;
	struct s3_tags tags; /* set again after completion: not every server takes
				x-amz-tagging on CreateMultipartUpload (Ceph 16 drops it) */
	bool digest_lost;    /* a part's answer said its ETag is not an MD5 (SSE-KMS) */
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
	struct budget *budget;
	uint64_t share; /* the largest body a worker buffers; larger ones are streamed */
	size_t ring;	/* ring size of a streamed copy */
	pthread_mutex_t lock;
	pthread_cond_t cond_work;	 /* a job is available or shutting down */
	pthread_cond_t cond_small;	 /* a small job is available (small lanes) */
	pthread_cond_t cond_space;	 /* the object queue has room */
	pthread_cond_t cond_small_space; /* the small queue has room */
	pthread_cond_t cond_idle;	 /* nothing queued and nothing running */
	pthread_cond_t cond_gate;	 /* the gate let more small lanes in */
	struct queue parts;
	struct queue objects;
	struct queue small; /* small objects and deletes, when there are small lanes */
	size_t max_objects, max_small;
	unsigned running;
	unsigned idle_small; /* small lanes waiting for a job */
	bool shutdown;
	pthread_t *threads;
	unsigned nthreads;
	unsigned nsmall;	/* small lanes at most: they take small jobs only */
	unsigned small_started; /* of which started (of the nthreads) */
	/* How many small lanes may take jobs, halved on throttling (NULL
	 * without small lanes); throttled_seen: reqstats_throttled() when the
	 * gate last looked. The count is process-wide: in an agent without
	 * fair shares, one task's throttles narrow the others' lanes too. */
	struct aimd *gate;
	uint64_t throttled_seen;
	int fatal;
	struct dth_err fatal_err;
	bool dst_opaque; /* a destination answer said its ETags are not MD5s (atomic) */
};

struct worker {
	struct transfer *t;
	struct buf body;
	uint64_t charged; /* bytes of the budget body holds */
	bool small_lane;  /* takes small jobs only */
	unsigned lane;	  /* a small lane's index among them: it waits while >= the gate */
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

static void add64(uint64_t *p, uint64_t v)
{
	__atomic_add_fetch(p, v, __ATOMIC_RELAXED);
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

/* Content-MD5 (base64) of a plain MD5 ETag; false when it is not one. */
static bool etag_md5_b64(const char *etag, char b64[25])
{
	unsigned parts;
	unsigned char md[16];
	if (!s3_etag_parse(etag, &parts) || parts != 0 ||
	    hex_decode(etag, MD5_HEX_LEN, md, 16) != 16)
		return false;
	base64_encode(md, 16, b64);
	return true;
}

static bool etag_is_md5(const char *etag)
{
	unsigned parts;
	return s3_etag_parse(etag, &parts) && parts == 0;
}

static bool etag_is_multipart(const char *etag)
{
	unsigned parts;
	return s3_etag_parse(etag, &parts) && parts > 0;
}

static void set_fatal(struct transfer *t, int rc, const char *what)
{
	pthread_mutex_lock(&t->lock);
	if (!t->fatal) {
		t->fatal = rc;
		err_set(&t->fatal_err, rc, "writing the manifest (%s): %s", what, strerror(-rc));
	}
	pthread_mutex_unlock(&t->lock);
	budget_cancel(t->budget);
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

/* ---- results ---- */

/* Write the object's record; a failure to write is fatal for the run. */
static void record(struct transfer *t, const struct job *j, int status, const char *dest_etag,
		   const char *error, uint64_t fp)
{
	struct obj_record r;
	memset(&r, 0, sizeof(r));
	r.size = j->size;
	r.last_modified = j->last_modified;
	str_copy_fit(r.etag, j->etag, sizeof(r.etag));
	r.meta_fp = fp;
	r.status = (uint8_t)status;
	r.attempts = (j->has_rec ? j->rec.attempts : 0) + 1;
	str_copy_msg(r.last_error, error ? error : "", sizeof(r.last_error));
	str_copy_fit(r.dest_etag, dest_etag ? dest_etag : "", sizeof(r.dest_etag));
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

/* Body bytes the destination accepted in this run. */
static void sent(struct transfer *t, uint64_t n)
{
	add64(&t->prog->bytes_moved, n);
	add64(&t->prog->bytes_sent, n);
}

static void copied_server_side(struct transfer *t, uint64_t n)
{
	add64(&t->prog->bytes_moved, n);
	add64(&t->prog->bytes_server_side, n);
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

/* Whether the destination's ETag of this write can be compared with an MD5:
 * not with SSE-KMS asked for, nor when the answer says it is not one. */
static bool comparable(const struct transfer *t, const struct s3_written *w)
{
	bool kms = t->o->sse && strcasecmp(t->o->sse, "aws:kms") == 0;
	return !kms && w->etag_is_digest && w->etag[0];
}

/* A single-part write's answer agrees with the MD5 of what was sent
 * (md5_hex "" when unknown). 0, or -EBADMSG with reason set. */
static int check_single(const struct transfer *t, const struct s3_written *w, const char *md5_hex,
			char *reason, size_t rsz)
{
	if (!md5_hex[0] || !comparable(t, w) || strcasecmp(w->etag, md5_hex) == 0)
		return 0;
	msg_snprintf(
	    reason, rsz,
	    "the destination's etag %s is not the md5 of the bytes sent (%s): not recorded "
	    "as copied",
	    w->etag, md5_hex);
	return -EBADMSG;
}

/* A write the destination refused because its bytes do not have the
 * Content-MD5 sent: -EBADMSG (the bytes changed on the way; the object is
 * copied again), else rc. */
static int refused_digest(int rc, const struct dth_err *err)
{
	if (strcmp(err->remote_code, "BadDigest") == 0 ||
	    strcmp(err->remote_code, "InvalidDigest") == 0)
		return -EBADMSG;
	return rc;
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

/* ---- the memory budget of a worker's body buffer ---- */

static void body_drop(struct worker *wk)
{
	buf_release(&wk->body);
	budget_give(wk->t->budget, wk->charged);
	wk->charged = 0;
}

/* A body buffer of n bytes (freed with free()). One of parts' sizes is
 * backed by huge pages where the kernel has them on request (MADV_HUGEPAGE):
 * its first filling then takes a few page faults instead of one per 4 KiB,
 * which cost about a tenth of the client's CPU in a copy of 8 MiB parts. */
static char *body_alloc(uint64_t n)
{
	const size_t huge = 2u << 20;
	void *p = NULL;
	if (n < 2 * huge || posix_memalign(&p, huge, (size_t)n) != 0)
		return xmalloc(n);
#ifdef MADV_HUGEPAGE
	(void)madvise(p, (size_t)n / huge * huge, MADV_HUGEPAGE);
#endif
	return p;
}

/* Make the worker's body buffer empty with room for n bytes, charged to the
 * budget. Gives back what it holds before waiting, so workers waiting for
 * room never hold any. 0, or -ECANCELED when the run stops meanwhile. */
static int body_reserve(struct worker *wk, uint64_t n)
{
	struct transfer *t = wk->t;
	buf_reset(&wk->body);
	uint64_t need = n + 1; /* the buffer's NUL */
	if (wk->charged >= need)
		return 0;
	if (!budget_try_take(t->budget, need - wk->charged)) {
		body_drop(wk);
		if (budget_take(t->budget, need, t->o->stop))
			return -ECANCELED;
	}
	wk->charged = need > wk->charged ? need : wk->charged;
	buf_release(&wk->body); /* exactly n + 1 bytes: no doubling beyond the charge */
	wk->body.data = body_alloc(need);
	wk->body.cap = need;
	wk->body.data[0] = '\0';
	return 0;
}

/* After a job: keep a buffer of up to the usual part size for the next one,
 * give back anything larger. */
static void body_trim(struct worker *wk)
{
	uint64_t keep = wk->t->o->part_size + 1;
	if (wk->charged > keep)
		body_drop(wk);
}

/* ---- streamed copies: GET into a ring, PUT or UploadPart out of it ---- */

struct stream {
	struct transfer *t;
	const char *src_key, *dst_key, *etag;
	uint64_t offset, length;
	/* the write: a PUT with opts, or part number of upload_id */
	const struct s3_put_opts *opts;
	const char *upload_id;
	unsigned part_number;
	EVP_MD_CTX *md5;   /* fed every byte sent (may be NULL) */
	EVP_MD_CTX *whole; /* also fed every byte sent (may be NULL); restored from
			      whole_at before each attempt */
	EVP_MD_CTX *whole_at;
	struct s3_written out;
};

/* One streamed write. 0; -ESTALE when the source changed; another negative
 * errno with err set. */
static int stream_once(struct stream *s, struct dth_err *err)
{
	struct transfer *t = s->t;
	uint64_t ring = t->ring;
	if (budget_take(t->budget, ring, t->o->stop))
		return err_set(err, -ECANCELED, "interrupted");
	struct pipe_src src = {t->o->src, t->o->src_bucket, s->src_key, s->offset,
			       s->length, s->etag,	    t->o->stop};
	struct dth_err gerr;
	err_clear(&gerr);
	EVP_MD_CTX *const md5[2] = {s->md5, s->whole};
	struct pipe *p = pipe_start(&src, (size_t)ring, md5, err);
	int rc = p ? 0 : -EAGAIN;
	if (p && s->upload_id)
		rc = s3_mpu_upload_part_from(t->o->dst, t->o->dst_bucket, s->dst_key, s->upload_id,
					     s->part_number, s->length, pipe_read, p,
					     s->opts ? s->opts->content_md5 : NULL, &s->out, err);
	else if (p)
		rc = s3_put_object_from(t->o->dst, t->o->dst_bucket, s->dst_key, s->length,
					pipe_read, p, s->opts, &s->out, err);
	if (p) {
		/* The GET's own error is the cause (the write then only saw its
		 * source fail). */
		int grc = pipe_finish(p, rc, &gerr);
		if (grc) {
			rc = grc;
			*err = gerr;
		}
	}
	budget_give(t->budget, ring);
	return rc;
}

/* Whether a failed request is worth another attempt (the executor's table). */
static bool worth_retrying(int rc, const struct dth_err *err)
{
	if (err->http_status > 0) {
		struct exec_verdict v;
		exec_classify(err->http_status, err->remote_code, &v);
		return v.retry;
	}
	return retry_transport_retryable(rc);
}

/* Streamed writes with a few whole attempts (a broken write cannot be
 * resumed). -ESTALE is returned at once: the caller looks at the source again. */
static int stream_copy(struct stream *s, struct dth_err *err)
{
	static const struct retry_policy policy = RETRY_POLICY_DEFAULT;
	int rc = 0;
	for (unsigned attempt = 1; attempt <= COPY_ATTEMPTS; attempt++) {
		if (s->md5)
			EVP_DigestInit_ex(s->md5, EVP_md5(), NULL);
		if (s->whole && s->whole_at)
			EVP_MD_CTX_copy_ex(s->whole, s->whole_at);
		err_clear(err);
		rc = stream_once(s, err);
		if (rc == 0 || rc == -ESTALE || rc == -ECANCELED || stopping(s->t) ||
		    !worth_retrying(rc, err))
			break;
		unsigned wait = retry_wait_ms(&policy, attempt, NULL);
		log_debug("%s: streamed copy failed (%s); again in %u ms", s->dst_key, err->message,
			  wait);
		retry_sleep_ms(wait);
	}
	return rc;
}

/* ---- routes ---- */

enum route { ROUTE_SERVER, ROUTE_SINGLE, ROUTE_PARTS };

/* How an object of size bytes with this source ETag is copied (see transfer.h). */
static enum route route_of(const struct transfer *t, uint64_t size, const char *etag)
{
	if (etag_is_multipart(etag) || size > SINGLE_PUT_MAX)
		return ROUTE_PARTS;
	if (size >= t->o->multipart_threshold && (t->o->parallel_parts || !etag_is_md5(etag)))
		return ROUTE_PARTS;
	return t->o->same_endpoint ? ROUTE_SERVER : ROUTE_SINGLE;
}

/* The source changed since it was listed: take its new size and ETag.
 * 0 with h filled (release it), -EAGAIN when it must now be copied another
 * way, or a HEAD error (h then needs no release). */
static int refresh_source(struct transfer *t, struct job *j, const char *skey,
			  struct s3_object_head *h, struct dth_err *err)
{
	enum route before = route_of(t, j->size, j->etag);
	int rc = s3_head_object(t->o->src, t->o->src_bucket, skey, 0, h, err);
	if (rc)
		return rc;
	j->size = h->size;
	str_copy_fit(j->etag, h->etag, sizeof(j->etag));
	if (h->last_modified)
		j->last_modified = h->last_modified;
	if (route_of(t, j->size, j->etag) == before)
		return 0;
	s3_object_head_release(h);
	return -EAGAIN;
}

/* ---- one request per object: server-side copy ---- */

static int copy_server(struct transfer *t, struct job *j, const char *skey, const char *dkey,
		       struct buf *reason)
{
	struct dth_err err;
	err_clear(&err);
	struct s3_put_opts po;
	struct s3_meta empty;
	memset(&empty, 0, sizeof(empty));
	put_opts_fill(t, &po, NULL, NULL);
	if (!t->o->metadata) {
		po.meta = &empty; /* REPLACE with nothing */
		po.tagging = "";
	}
	struct s3_written w;
	int rc = s3_copy_object(t->o->dst, t->o->dst_bucket, dkey, t->o->src_bucket, skey, j->etag,
				&po, &w, &err);
	if (rc == -ESTALE) {
		buf_adds(reason, "source changed during the copy; the next run copies it");
		return rc;
	}
	if (rc) {
		buf_adds(reason, err.message);
		return rc;
	}
	if (etag_is_md5(j->etag) && comparable(t, &w) && strcasecmp(w.etag, j->etag) != 0) {
		buf_addf(reason,
			 "the destination's etag %s is not the source's %s after a server-side "
			 "copy: not recorded as copied",
			 w.etag, j->etag);
		return -EBADMSG;
	}
	failpoint_hit(FAILPOINT_OBJECT_PUT);
	copied_server_side(t, j->size);
	object_done(t, j, w.etag, 0);
	return 0;
}

/* ---- one PUT per object, from memory ---- */

/* GET the object whole into the worker's body (If-Match on the listed ETag).
 * md5_hex/md5_b64 get the MD5 the PUT must carry: the source's MD5 ETag as it
 * is (the destination then refuses other bytes: nothing is hashed here), or,
 * for a redo (j->hash) or an ETag that is no MD5, the MD5 of the bytes read,
 * checked against an MD5 ETag. h gets the answer's headers. 0; -ESTALE when
 * the source changed; -EAGAIN when it now goes another way (j updated). */
static int get_whole(struct worker *wk, struct job *j, const char *skey, struct s3_object_head *h,
		     char md5_hex[33], char md5_b64[25], struct buf *reason)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	for (unsigned attempt = 1;; attempt++) {
		err_clear(&err);
		if (body_reserve(wk, j->size))
			return -ECANCELED;
		/* A range of the listed size: the buffer never takes more. */
		int rc = s3_get_object(t->o->src, t->o->src_bucket, skey, 0, j->size, j->etag,
				       &wk->body, h, &err);
		if (rc == -ESTALE && attempt < COPY_ATTEMPTS) {
			struct s3_object_head nh;
			rc = refresh_source(t, j, skey, &nh, &err);
			s3_object_head_release(&nh);
			if (rc == -EAGAIN || (rc == 0 && j->size > t->share))
				return -EAGAIN; /* now in parts, or streamed */
			if (rc == 0)
				continue;
		}
		if (rc == -ESTALE) {
			buf_adds(reason, "source keeps changing while it is copied; the next run "
					 "copies it");
			return rc;
		}
		if (rc) {
			buf_adds(reason, err.message);
			return rc;
		}
		/* What was really read may be newer than the listing. */
		j->size = wk->body.len;
		str_copy_fit(j->etag, h->etag, sizeof(j->etag));
		if (h->last_modified)
			j->last_modified = h->last_modified;
		if (!j->hash && etag_md5_b64(h->etag, md5_b64)) {
			str_copy_fit(md5_hex, h->etag, 33);
			return 0;
		}
		unsigned char md[16];
		md5_of(wk->body.data, wk->body.len, md);
		md5_hex_b64(md, md5_hex, md5_b64);
		if (!etag_is_md5(h->etag) || strcasecmp(md5_hex, h->etag) == 0)
			return 0;
		s3_object_head_release(h);
		if (attempt >= COPY_ATTEMPTS) {
			buf_addf(reason, "source body md5 %s does not match its etag %s", md5_hex,
				 j->etag);
			return -EIO;
		}
	}
}

static int copy_buffered(struct worker *wk, struct job *j, const char *skey, const char *dkey,
			 struct buf *reason)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	err_clear(&err);
	struct s3_object_head h;
	char hex[33], b64[25], why[CODEC_ERROR_MAX];
	struct buf tagging = BUF_INIT;
	int rc = get_whole(wk, j, skey, &h, hex, b64, reason);
	if (rc)
		return rc;
	if (t->o->metadata && h.tag_count > 0 && (rc = fetch_tagging(t, skey, &tagging, &err))) {
		buf_adds(reason, err.message);
		goto out;
	}
	struct s3_put_opts po;
	put_opts_fill(t, &po, &h.meta, tagging.len ? tagging.data : NULL);
	po.content_md5 = b64;
	struct s3_written w;
	rc = s3_put_object(t->o->dst, t->o->dst_bucket, dkey, wk->body.data, wk->body.len, &po, &w,
			   &err);
	if (rc) {
		rc = refused_digest(rc, &err);
		buf_adds(reason, err.message);
		goto out;
	}
	if ((rc = check_single(t, &w, hex, why, sizeof(why)))) {
		buf_adds(reason, why);
		goto out;
	}
	failpoint_hit(FAILPOINT_OBJECT_PUT);
	sent(t, wk->body.len);
	object_done(t, j, w.etag, t->o->metadata ? meta_fingerprint(&h.meta) : 0);
out:
	s3_object_head_release(&h);
	buf_release(&tagging);
	return rc;
}

/* ---- one PUT per object, streamed ---- */

static int copy_streamed(struct worker *wk, struct job *j, const char *skey, const char *dkey,
			 struct buf *reason)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	struct s3_object_head h;
	struct buf tagging = BUF_INIT;
	EVP_MD_CTX *md5 = NULL;
	int rc;
	for (unsigned attempt = 1;; attempt++) {
		err_clear(&err);
		buf_reset(&tagging);
		/* The headers to copy, and the version to read (If-Match). */
		if ((rc = refresh_source(t, j, skey, &h, &err))) {
			if (rc != -EAGAIN)
				buf_adds(reason, err.message);
			goto out_nohead;
		}
		if (j->size <= t->share) {
			rc = -EAGAIN; /* now small enough to buffer */
			goto out;
		}
		if (t->o->metadata && h.tag_count > 0 &&
		    (rc = fetch_tagging(t, skey, &tagging, &err))) {
			buf_adds(reason, err.message);
			goto out;
		}
		struct s3_put_opts po;
		put_opts_fill(t, &po, &h.meta, tagging.len ? tagging.data : NULL);
		char b64[25];
		/* An MD5 ETag becomes the Content-MD5: the server checks every byte. */
		if (etag_md5_b64(j->etag, b64))
			po.content_md5 = b64;
		else if (!md5 && !(md5 = EVP_MD_CTX_new()))
			abort();
		struct stream s = {.t = t,
				   .src_key = skey,
				   .dst_key = dkey,
				   .etag = j->etag,
				   .length = j->size,
				   .opts = &po,
				   .md5 = po.content_md5 ? NULL : md5};
		rc = refused_digest(stream_copy(&s, &err), &err);
		if (rc == -ESTALE && attempt < COPY_ATTEMPTS) {
			s3_object_head_release(&h);
			continue;
		}
		if (rc) {
			buf_adds(reason, rc == -ESTALE
					     ? "source keeps changing while it is copied; "
					       "the next run copies it"
					     : err.message);
			goto out;
		}
		char hex[33] = "", why[CODEC_ERROR_MAX];
		if (po.content_md5) {
			str_copy_fit(hex, j->etag, sizeof(hex));
		} else {
			unsigned char md[16];
			unsigned int mdlen = 16;
			EVP_DigestFinal_ex(md5, md, &mdlen);
			hex_encode(md, 16, hex);
		}
		if ((rc = check_single(t, &s.out, hex, why, sizeof(why)))) {
			buf_adds(reason, why);
			goto out;
		}
		failpoint_hit(FAILPOINT_OBJECT_PUT);
		sent(t, j->size);
		object_done(t, j, s.out.etag, t->o->metadata ? meta_fingerprint(&h.meta) : 0);
		goto out;
	}
out:
	s3_object_head_release(&h);
out_nohead:
	EVP_MD_CTX_free(md5);
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
	layout_release(&up->lay);
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
	for (uint32_t i = 0; i < up->lay.n; i++) {
		if (!up->pdone[i])
			continue;
		struct upload_part *p = &up->rec.parts[n++];
		p->number = i + 1;
		p->size = up->lay.size[i];
		str_copy_fit(p->etag, up->petag[i], sizeof(p->etag));
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

struct listparts_ctx {
	struct upload *up;
	uint32_t found;
};

static int listparts_cb(void *ctx, const struct s3_part *p)
{
	struct listparts_ctx *c = ctx;
	struct upload *up = c->up;
	if (p->number >= 1 && p->number <= up->lay.n && p->size == up->lay.size[p->number - 1] &&
	    !up->pdone[p->number - 1]) {
		up->pdone[p->number - 1] = true;
		str_copy_fit(up->petag[p->number - 1], p->etag, S3_ETAG_MAX);
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

/* Whether the servers' own MD5s can prove this copy without a hash of ours:
 * the destination repeats the source's layout, its ETags are MD5s (no SSE-KMS
 * asked for, no answer so far said otherwise), and this is not a redo after
 * such a proof failed. (Server-side copies on one endpoint hash nothing here
 * either way and keep the checks they had.) */
static bool servers_prove(struct transfer *t, const struct upload *up)
{
	bool kms = t->o->sse && strcasecmp(t->o->sse, "aws:kms") == 0;
	return up->replicate && !kms && !up->obj->hash && !t->o->same_endpoint &&
	       !__atomic_load_n(&t->dst_opaque, __ATOMIC_RELAXED);
}

/* The parts of the copy: the source's (checked) when it was uploaded in
 * parts, else dth's own. */
static int plan_parts(struct transfer *t, struct upload *up, const struct s3_object_head *h,
		      struct buf *reason)
{
	struct dth_err err;
	err_clear(&err);
	unsigned nsrc = 0;
	int rc = -EAGAIN;
	if (s3_etag_parse(h->etag, &nsrc) && nsrc > 0) {
		rc = layout_of_source(t->o->src, t->o->src_bucket, up->src_key, h->size, nsrc,
				      &up->lay, &err);
		if (rc && rc != -EAGAIN) {
			buf_adds(reason, err.message);
			return rc;
		}
		if (rc == 0)
			up->replicate = true;
		else
			log_warn("%s: %s; the destination etag will differ", up->src_key,
				 err.message);
	}
	if (rc == -EAGAIN)
		layout_own(&up->lay, h->size, t->o->part_size);
	up->rec.part_size = up->lay.part_size;
	up->rec.part_count = up->lay.n;
	up->poff = xcalloc(up->lay.n, sizeof(uint64_t));
	for (uint32_t i = 1; i < up->lay.n; i++)
		up->poff[i] = up->poff[i - 1] + up->lay.size[i - 1];
	up->petag = xcalloc(up->lay.n, S3_ETAG_MAX);
	up->pdone = xcalloc(up->lay.n, sizeof(bool));
	up->rec.parts = xcalloc(up->lay.n, sizeof(struct upload_part));
	return 0;
}

/* Take the parts an earlier run finished (ListParts, or our record where the
 * server has no ListParts). 1: the earlier run completed the object; 0: go on
 * (resumed or not); negative: fail. */
static int resume_parts(struct transfer *t, struct upload *up, const struct upload_record *old,
			const struct s3_object_head *h, bool *keep, struct buf *reason)
{
	struct job *j = up->obj;
	struct dth_err err;
	err_clear(&err);
	if (!old->upload_id[0]) {
		abort_strays(t, up->dst_key, old->created - 300);
		return 0;
	}
	/* A source in parts copied in dth's own parts: an earlier run may have
	 * copied it in the source's layout with the same numbers, with parts not
	 * hashed here that only that layout's ETag proves. Not resumed. */
	bool unproven = !up->replicate && etag_is_multipart(up->rec.src_etag);
	if (unproven || strcmp(old->src_etag, up->rec.src_etag) != 0 ||
	    old->object_size != up->rec.object_size || old->part_count != up->lay.n ||
	    old->part_size != up->rec.part_size) {
		int a =
		    s3_mpu_abort(t->o->dst, t->o->dst_bucket, up->dst_key, old->upload_id, &err);
		if (a && a != -ENOENT) {
			/* Keep its record: it must not be forgotten while it costs. */
			*keep = true;
			buf_addf(reason, "cannot abort the stale multipart upload: %s",
				 err.message);
			return a;
		}
		log_info("aborted a stale multipart upload of %s", up->dst_key);
		return 0;
	}
	struct listparts_ctx lc = {up, 0};
	int rc = s3_mpu_list_parts(t->o->dst, t->o->dst_bucket, up->dst_key, old->upload_id,
				   listparts_cb, &lc, &err);
	if (rc == -ENOENT && up->replicate && dest_has_copy(t, up->dst_key, up)) {
		/* Completed just before a crash, not yet recorded: what follows a
		 * completion in finalize_upload may not have happened either. */
		log_info("%s was completed by an earlier run", up->dst_key);
		err_clear(&err);
		if (t->o->metadata && up->tags.n &&
		    s3_put_tagging(t->o->dst, t->o->dst_bucket, up->dst_key, &up->tags, &err)) {
			*keep = true; /* the next run tries again */
			buf_addf(reason, "setting the tags: %s", err.message);
			return -EIO;
		}
		if (manifest_writer_del_upload(t->w, t->o->task_id, j->key, j->key_len))
			set_fatal(t, -EIO, "upload record");
		object_done(t, j, up->rec.src_etag,
			    t->o->metadata ? meta_fingerprint(&h->meta) : 0);
		return 1;
	}
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		/* No ListParts here (s3rver): trust our record. */
		for (uint32_t k = 0; k < old->n_parts; k++) {
			uint32_t num = old->parts[k].number;
			if (num >= 1 && num <= up->lay.n &&
			    old->parts[k].size == up->lay.size[num - 1]) {
				up->pdone[num - 1] = true;
				str_copy_fit(up->petag[num - 1], old->parts[k].etag, S3_ETAG_MAX);
			}
		}
	}
	str_copy_fit(up->rec.upload_id, old->upload_id, sizeof(up->rec.upload_id));
	up->rec.created = old->created;
	log_info("resuming the multipart upload of %s", up->dst_key);
	return 0;
}

/* CreateMultipartUpload, with the intent recorded durably first, so a crash
 * right after the create leaves a trace the next run uses to abort it. */
static int create_upload(struct transfer *t, struct upload *up, const struct s3_object_head *h,
			 const char *tagging, struct buf *reason)
{
	struct dth_err err;
	err_clear(&err);
	struct buf uid = BUF_INIT;
	up->rec.created = (int64_t)time(NULL);
	save_upload_locked(t, up);
	int rc = manifest_writer_flush(t->w);
	if (rc) {
		set_fatal(t, rc, "upload intent");
		buf_addf(reason, "manifest: %s", strerror(-rc));
		return rc;
	}
	struct s3_put_opts po;
	put_opts_fill(t, &po, &h->meta, tagging);
	rc = s3_mpu_create(t->o->dst, t->o->dst_bucket, up->dst_key, &po, &uid, &err);
	if (rc) {
		buf_adds(reason, err.message);
		buf_release(&uid);
		return rc;
	}
	failpoint_hit(FAILPOINT_UPLOAD_CREATED);
	rc = str_copy(up->rec.upload_id, uid.data, sizeof(up->rec.upload_id));
	buf_release(&uid);
	if (rc) {
		buf_adds(reason, "the destination's upload id is too long to record");
		return rc;
	}
	save_upload_locked(t, up);
	if ((rc = manifest_writer_flush(t->w))) {
		set_fatal(t, rc, "upload record");
		buf_addf(reason, "manifest: %s", strerror(-rc));
	}
	return rc;
}

/* Queue the parts still to do; this worker then takes them like any other. */
static void queue_parts(struct worker *wk, struct upload *up)
{
	struct transfer *t = wk->t;
	uint32_t todo = 0;
	for (uint32_t i = 0; i < up->lay.n; i++)
		todo += !up->pdone[i];
	if (todo == up->lay.n && !t->o->same_endpoint && etag_is_md5(up->obj->etag)) {
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
		return;
	}
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < up->lay.n; i++) {
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

/* Abort what start_large made before it failed; keep records that must stay. */
static void start_failed(struct transfer *t, struct upload *up, bool have_old, bool keep)
{
	if (up->rec.upload_id[0]) {
		struct dth_err e2;
		err_clear(&e2);
		int a =
		    s3_mpu_abort(t->o->dst, t->o->dst_bucket, up->dst_key, up->rec.upload_id, &e2);
		keep |= a && a != -ENOENT;
	} else if (up->rec.created) {
		/* A create that failed may still have made an upload: the intent record
		 * stays, and the next run sweeps for it. */
		keep = true;
	}
	if (!keep && (have_old || up->rec.created) &&
	    manifest_writer_del_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len))
		set_fatal(t, -EIO, "upload record");
}

/* Start (or resume) the multipart copy of j. 0: the upload owns j now;
 * 1: done already (the caller still owns j); negative: failed (reason set). */
static int start_large(struct worker *wk, struct job *j, const char *skey, const char *dkey,
		       struct buf *reason)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	err_clear(&err);
	struct buf tagging = BUF_INIT;
	struct upload_record old;
	bool have_old = false, keep = false;
	struct s3_object_head h;
	int rc = s3_head_object(t->o->src, t->o->src_bucket, skey, 0, &h, &err);
	if (rc) {
		buf_adds(reason, err.message);
		return rc;
	}
	j->size = h.size;
	str_copy_fit(j->etag, h.etag, sizeof(j->etag));
	if (h.last_modified)
		j->last_modified = h.last_modified;

	struct upload *up = xcalloc(1, sizeof(*up));
	up->obj = j; /* borrowed until the parts are queued */
	pthread_mutex_init(&up->lock, NULL);
	up->src_key = xstrdup(skey);
	up->dst_key = xstrdup(dkey);
	str_copy_fit(up->rec.src_etag, h.etag, sizeof(up->rec.src_etag));
	up->rec.object_size = h.size;
	if ((rc = plan_parts(t, up, &h, reason)))
		goto fail;
	up->hashed = !servers_prove(t, up);
	/* HEAD does not always tell the tag count (Ceph 16 leaves it out), and
	 * one GetObjectTagging per large object costs little. */
	if (t->o->metadata) {
		if ((rc = s3_get_tagging(t->o->src, t->o->src_bucket, skey, &up->tags, &err))) {
			buf_adds(reason, err.message);
			goto fail;
		}
		s3_tags_to_query(&up->tags, &tagging);
	}
	s3_meta_copy(&up->meta, &h.meta);
	up->tagging = tagging.len ? xstrdup(tagging.data) : NULL;

	/* An upload left by an earlier run: resume it when it copies the same
	 * version with the same layout, else abort it. */
	rc = manifest_upload_get(t->o->manifest, t->o->task_id, j->key, j->key_len, &old);
	if (rc == 0) {
		have_old = true;
		rc = resume_parts(t, up, &old, &h, &keep, reason);
		if (rc == 1)
			goto out; /* done; the caller still owns the job */
		if (rc)
			goto fail;
	} else if (rc != -ENOENT) {
		buf_addf(reason, "reading the upload record: %s", strerror(-rc));
		goto fail;
	}
	if (!up->rec.upload_id[0] && (rc = create_upload(t, up, &h, up->tagging, reason)))
		goto fail;
	j->rec.meta_fp = t->o->metadata ? meta_fingerprint(&h.meta) : 0;
	queue_parts(wk, up);
	up = NULL;
	rc = 0;
	goto out;
fail:
	if (!rc)
		rc = -EIO;
	start_failed(t, up, have_old, keep);
out:
	if (have_old)
		codec_upload_release(&old);
	s3_object_head_release(&h);
	if (up) {
		up->obj = NULL; /* the caller still owns the job */
		upload_free(up);
	}
	buf_release(&tagging);
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
static void complete_etag(struct transfer *t, const char *dkey, struct s3_written *w)
{
	if (w->etag[0])
		return;
	struct s3_object_head h;
	struct dth_err err;
	err_clear(&err);
	if (s3_head_object(t->o->dst, t->o->dst_bucket, dkey, 0, &h, &err) == 0) {
		str_copy_fit(w->etag, h.etag, S3_ETAG_MAX);
		s3_object_head_release(&h);
	}
}

/* Copy the destination object onto itself with parts of p bytes (UploadPartCopy),
 * so its ETag follows that layout. w gets the new answer. */
static int relayout(struct transfer *t, struct upload *up, uint64_t p, struct s3_written *w)
{
	struct dth_err err;
	err_clear(&err);
	uint64_t size = up->rec.object_size;
	uint32_t n = (uint32_t)(size / p + (size % p != 0));
	if (n != up->lay.n)
		return -EINVAL;
	struct s3_put_opts po;
	put_opts_fill(t, &po, &up->meta, up->tagging);
	struct buf uid = BUF_INIT;
	struct s3_part *parts = xcalloc(n, sizeof(*parts));
	char cur[S3_ETAG_MAX];
	str_copy_fit(cur, w->etag, sizeof(cur));
	int rc = s3_mpu_create(t->o->dst, t->o->dst_bucket, up->dst_key, &po, &uid, &err);
	if (rc)
		goto out;
	/* Recorded like any upload, so a crash here leaves nothing to accrue cost. */
	struct upload_record ur;
	memset(&ur, 0, sizeof(ur));
	if ((rc = str_copy(ur.upload_id, uid.data, sizeof(ur.upload_id))))
		goto out; /* an id too long to record: do not go on without a record */
	str_copy_fit(ur.src_etag, "relayout", sizeof(ur.src_etag));
	ur.object_size = size;
	ur.part_size = p;
	ur.part_count = n;
	ur.created = (int64_t)time(NULL);
	if (manifest_writer_put_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len, &ur) ||
	    manifest_writer_flush(t->w))
		set_fatal(t, -EIO, "upload record");
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint64_t off = (uint64_t)i * p, len = (i + 1 < n) ? p : size - off;
		struct s3_written pw;
		parts[i].number = i + 1;
		parts[i].size = len;
		rc = s3_mpu_upload_part_copy(t->o->dst, t->o->dst_bucket, up->dst_key, uid.data,
					     i + 1, t->o->dst_bucket, up->dst_key, off, len, cur,
					     &pw, &err);
		str_copy_fit(parts[i].etag, pw.etag, sizeof(parts[i].etag));
		if (!rc)
			copied_server_side(t, len);
	}
	if (!rc) {
		rc = s3_mpu_complete(t->o->dst, t->o->dst_bucket, up->dst_key, uid.data, parts, n,
				     w, &err);
		if (!rc)
			complete_etag(t, up->dst_key, w);
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
			 (unsigned long long)p, w->etag);
	}
	if (forget &&
	    manifest_writer_del_upload(t->w, t->o->task_id, up->obj->key, up->obj->key_len))
		set_fatal(t, -EIO, "upload record");
out:
	free(parts);
	buf_release(&uid);
	return rc;
}

/* The whole-object MD5 of a single-part source copied in our parts is its
 * ETag. 0, or -EBADMSG with reason set. */
static int check_whole(struct upload *up, char *reason, size_t rsz)
{
	if (!up->whole || up->next_hash != up->lay.n)
		return 0;
	unsigned char md[16];
	unsigned int mdlen = 16;
	char hex[33];
	EVP_DigestFinal_ex(up->whole, md, &mdlen);
	hex_encode(md, 16, hex);
	if (strcasecmp(hex, up->obj->etag) == 0)
		return 0;
	msg_snprintf(reason, rsz, "the md5 of the bytes read (%s) is not the source etag %s", hex,
		     up->obj->etag);
	return -EBADMSG;
}

/* After completion: a copy in the source's layout must have the source's
 * ETag. A guessed part size that was wrong is corrected server-side with the
 * next guess; what still differs is not recorded as copied. */
static int check_replica(struct transfer *t, struct upload *up, struct s3_written *w, char *reason,
			 size_t rsz)
{
	const char *want = up->obj->etag;
	if (!up->replicate || !comparable(t, w) || up->digest_lost)
		return 0;
	if (!etag_is_multipart(w->etag)) {
		/* A server that does not give multipart uploads S3's "md5-N" ETag
		 * (s3rver): each part's bytes were checked, the layout cannot be. */
		log_debug("%s: the destination gives no multipart etag (%s); checked part by part",
			  up->dst_key, w->etag);
		return 0;
	}
	for (unsigned k = 1; k < up->lay.n_guess && strcasecmp(w->etag, want) != 0; k++)
		if (relayout(t, up, up->lay.guess[k], w) != 0)
			break;
	if (strcasecmp(w->etag, want) == 0)
		return 0;
	msg_snprintf(
	    reason, rsz,
	    "the destination's etag %s is not the source's %s after a copy in the source's "
	    "%s: not recorded as copied",
	    w->etag, want, up->lay.n_guess ? "guessed part layout" : "part layout");
	return -EBADMSG;
}

/* The ETag the uploaded parts make (the MD5 of their MD5s, "-N") into out;
 * false when a part's ETag is not an MD5 (SSE-KMS). */
static bool parts_etag(const struct upload *up, char out[S3_ETAG_MAX])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1)
		abort();
	bool known = true;
	for (uint32_t i = 0; i < up->lay.n && known; i++) {
		unsigned char md[16];
		known = etag_is_md5(up->petag[i]) &&
			hex_decode(up->petag[i], MD5_HEX_LEN, md, 16) == 16;
		if (known)
			EVP_DigestUpdate(ctx, md, 16);
	}
	unsigned char md[16];
	unsigned int mdlen = 16;
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!known)
		return false;
	hex_encode(md, 16, out);
	xsnprintf(out + MD5_HEX_LEN, S3_ETAG_MAX - MD5_HEX_LEN, "-%u", up->lay.n);
	return true;
}

/* Before completing a copy in the source's confirmed layout: the ETag its
 * parts make must be the source's, or the layout the source told is not the
 * one its ETag was made with. Checked before CompleteMultipartUpload, so a
 * wrong copy never replaces what the destination holds. 0, or -EBADMSG with
 * reason set. */
static int check_parts_etag(struct upload *up, char *reason, size_t rsz)
{
	char want[S3_ETAG_MAX];
	if (!up->replicate || up->lay.n_guess || up->digest_lost || !parts_etag(up, want) ||
	    strcasecmp(want, up->obj->etag) == 0)
		return 0;
	msg_snprintf(reason, rsz,
		     "the parts copied in the layout the source gave make the etag %s, not the "
		     "source's %s (the source's answers about its parts are wrong): not copied",
		     want, up->obj->etag);
	return -EBADMSG;
}

/* Before completing a copy whose parts were not hashed here: the ETag the
 * destination's own MD5s of the parts make must be the source's. This proves
 * every byte (a part changed on the way has another MD5) and the layout, and
 * a copy it does not prove never replaces what the destination holds. 0, or
 * -EBADMSG with reason set (a part's bytes differ, a guessed layout is wrong,
 * or the destination's part ETags are not MD5s). */
static int check_unhashed(const struct upload *up, char *reason, size_t rsz)
{
	char got[S3_ETAG_MAX];
	if (up->digest_lost || !parts_etag(up, got)) {
		msg_snprintf(reason, rsz,
			     "the destination's part etags are not md5s, so they cannot prove "
			     "the parts sent");
		return -EBADMSG;
	}
	if (strcasecmp(got, up->obj->etag) == 0)
		return 0;
	msg_snprintf(reason, rsz,
		     "the destination's md5s of the parts make the etag %s, not the source's %s",
		     got, up->obj->etag);
	return -EBADMSG;
}

/* The servers' proof of a copy made without hashing here failed: queue the
 * object again, to be copied hashed here (each part then goes with its
 * Content-MD5, and the checks of a hashed copy apply). False when that copy
 * was this one, or the run stops: the caller records the failure. */
static bool redo_hashed(struct transfer *t, struct job *j, const char *reason)
{
	if (j->hash || stopping(t))
		return false;
	log_info("%.*s: %s; copying it again", (int)(j->key_len > 200 ? 200 : j->key_len), j->key,
		 reason);
	j->hash = true;
	j->small = false; /* past any queue limit: the workers take objects first */
	pthread_mutex_lock(&t->lock);
	q_push(&t->objects, j);
	pthread_cond_signal(&t->cond_work);
	pthread_mutex_unlock(&t->lock);
	return true;
}

/* CompleteMultipartUpload answered NoSuchUpload: when an earlier attempt
 * completed it (its answer was lost), the destination holds the object made
 * of these parts. */
static bool completed_before(struct transfer *t, struct upload *up, struct s3_written *w)
{
	char want[S3_ETAG_MAX];
	struct s3_object_head h;
	struct dth_err err;
	err_clear(&err);
	if (!parts_etag(up, want) ||
	    s3_head_object(t->o->dst, t->o->dst_bucket, up->dst_key, 0, &h, &err))
		return false;
	bool same = h.size == up->rec.object_size && strcasecmp(h.etag, want) == 0;
	if (same) {
		memset(w, 0, sizeof(*w));
		str_copy_fit(w->etag, h.etag, sizeof(w->etag));
		w->etag_is_digest = true;
	}
	s3_object_head_release(&h);
	return same;
}

static void finalize_upload(struct worker *wk, struct upload *up)
{
	struct transfer *t = wk->t;
	struct job *j = up->obj;
	struct dth_err err;
	err_clear(&err);
	char reason[CODEC_ERROR_MAX];
	bool all = true;
	for (uint32_t i = 0; i < up->lay.n; i++)
		all &= up->pdone[i];
	if (!all && !up->err) {
		/* Interrupted: keep the upload and its parts for the next run. */
		pthread_mutex_lock(&up->lock);
		save_upload_locked(t, up);
		pthread_mutex_unlock(&up->lock);
		goto out;
	}
	if (up->err || check_whole(up, reason, sizeof(reason)) ||
	    check_parts_etag(up, reason, sizeof(reason))) {
		drop_upload(t, up);
		object_failed(t, j, up->err ? up->errmsg : reason);
		goto out;
	}
	if (!up->hashed && check_unhashed(up, reason, sizeof(reason))) {
		drop_upload(t, up);
		if (redo_hashed(t, j, reason))
			up->obj = NULL; /* queued again */
		else
			object_failed(t, j, reason);
		goto out;
	}
	struct s3_part *parts = xcalloc(up->lay.n, sizeof(*parts));
	for (uint32_t i = 0; i < up->lay.n; i++) {
		parts[i].number = i + 1;
		parts[i].size = up->lay.size[i];
		str_copy_fit(parts[i].etag, up->petag[i], sizeof(parts[i].etag));
	}
	struct s3_written w;
	int rc = s3_mpu_complete(t->o->dst, t->o->dst_bucket, up->dst_key, up->rec.upload_id, parts,
				 up->lay.n, &w, &err);
	free(parts);
	if (rc == -ENOENT && completed_before(t, up, &w))
		rc = 0;
	if (rc) {
		msg_snprintf(reason, sizeof(reason), "%s", err.message);
		drop_upload(t, up);
		object_failed(t, j, reason);
		goto out;
	}
	failpoint_hit(FAILPOINT_UPLOAD_COMPLETED);
	if (manifest_writer_del_upload(t->w, t->o->task_id, j->key, j->key_len))
		set_fatal(t, -EIO, "upload record");
	/* A CreateMultipartUpload retried after a lost answer leaves a twin. */
	abort_strays(t, up->dst_key, up->rec.created - 300);
	if (t->o->metadata && up->tags.n) {
		err_clear(&err);
		if (s3_put_tagging(t->o->dst, t->o->dst_bucket, up->dst_key, &up->tags, &err)) {
			msg_snprintf(reason, sizeof(reason), "setting the tags: %s", err.message);
			object_failed(t, j, reason);
			goto out;
		}
	}
	complete_etag(t, up->dst_key, &w);
	if (check_replica(t, up, &w, reason, sizeof(reason))) {
		object_failed(t, j, reason);
		goto out;
	}
	object_done(t, j, w.etag, j->rec.meta_fp);
out:
	upload_free(up);
}

/* Wait until parts 0..i-1 have been fed to the whole-object MD5. 0, or
 * -ECANCELED when the upload failed or the run stops meanwhile. Called with
 * up->lock held. */
static int wait_turn_locked(struct transfer *t, struct upload *up, uint32_t i)
{
	while (up->next_hash != i && !up->err && !stopping(t)) {
		struct timespec ts;
		deadline_in_ms(&ts, 100);
		pthread_cond_timedwait(&up->hash_cond, &up->lock, &ts);
	}
	return up->next_hash == i ? 0 : -ECANCELED;
}

/* Feed part i (in memory) to the whole-object MD5 once parts 0..i-1 are in. */
static int hash_in_order(struct transfer *t, struct upload *up, uint32_t i, const struct buf *b)
{
	pthread_mutex_lock(&up->lock);
	int rc = wait_turn_locked(t, up, i);
	if (!rc) {
		EVP_DigestUpdate(up->whole, b->data, b->len);
		up->next_hash++;
		pthread_cond_broadcast(&up->hash_cond);
	}
	pthread_mutex_unlock(&up->lock);
	return rc;
}

/* Part i by UploadPartCopy (one endpoint). */
static int part_server(struct transfer *t, struct upload *up, uint32_t i, struct s3_written *w,
		       char *reason, size_t rsz)
{
	struct dth_err err;
	err_clear(&err);
	int rc = s3_mpu_upload_part_copy(t->o->dst, t->o->dst_bucket, up->dst_key,
					 up->rec.upload_id, i + 1, t->o->src_bucket, up->src_key,
					 up->poff[i], up->lay.size[i], up->obj->etag, w, &err);
	if (rc)
		msg_snprintf(reason, rsz, "part %u: %s", i + 1,
			     rc == -ESTALE ? "source changed during the copy" : err.message);
	else
		copied_server_side(t, up->lay.size[i]);
	return rc;
}

/* Part i read into the worker's body, then uploaded: with its Content-MD5
 * when the copy is hashed here, else as it is (check_unhashed proves it). */
static int part_buffered(struct worker *wk, struct upload *up, uint32_t i, struct s3_written *w,
			 char *reason, size_t rsz)
{
	struct transfer *t = wk->t;
	struct dth_err err;
	err_clear(&err);
	if (body_reserve(wk, up->lay.size[i]))
		return -ECANCELED;
	int rc = s3_get_object(t->o->src, t->o->src_bucket, up->src_key, up->poff[i],
			       up->lay.size[i], up->obj->etag, &wk->body, NULL, &err);
	if (rc) {
		msg_snprintf(reason, rsz, "part %u: %s", i + 1,
			     rc == -ESTALE
				 ? "source changed during the copy; the next run copies it"
				 : err.message);
		return rc;
	}
	char hex[33] = "", b64[25] = "";
	if (up->hashed) {
		unsigned char md[16];
		md5_of(wk->body.data, wk->body.len, md);
		md5_hex_b64(md, hex, b64);
	}
	if (up->whole && (rc = hash_in_order(t, up, i, &wk->body))) {
		msg_snprintf(reason, rsz, "part %u: interrupted", i + 1);
		return rc;
	}
	rc = s3_mpu_upload_part(t->o->dst, t->o->dst_bucket, up->dst_key, up->rec.upload_id, i + 1,
				wk->body.data, wk->body.len, up->hashed ? b64 : NULL, !up->hashed,
				w, &err);
	if (rc) {
		msg_snprintf(reason, rsz, "part %u: %s", i + 1, err.message);
		return rc;
	}
	char why[CODEC_ERROR_MAX];
	if ((rc = check_single(t, w, hex, why, sizeof(why)))) {
		msg_snprintf(reason, rsz, "part %u: %s", i + 1, why);
		return rc;
	}
	sent(t, wk->body.len);
	return 0;
}

/* Part i streamed from the source (larger than a worker's share). In a
 * hashed copy its MD5 is taken on the way and compared with the part's ETag
 * (else check_unhashed proves it); the whole-object MD5,
 * when kept, is fed in part order (this part waits for its turn). */
static int part_streamed(struct transfer *t, struct upload *up, uint32_t i, struct s3_written *w,
			 char *reason, size_t rsz)
{
	struct dth_err err;
	err_clear(&err);
	EVP_MD_CTX *md5 = EVP_MD_CTX_new(), *whole_at = NULL;
	if (!md5)
		abort();
	int rc = 0;
	if (up->whole) {
		pthread_mutex_lock(&up->lock);
		rc = wait_turn_locked(t, up, i);
		pthread_mutex_unlock(&up->lock);
		if (rc) {
			msg_snprintf(reason, rsz, "part %u: interrupted", i + 1);
			goto out;
		}
		if (!(whole_at = EVP_MD_CTX_new()) || !EVP_MD_CTX_copy_ex(whole_at, up->whole))
			abort();
	}
	struct stream s = {.t = t,
			   .src_key = up->src_key,
			   .dst_key = up->dst_key,
			   .etag = up->obj->etag,
			   .offset = up->poff[i],
			   .length = up->lay.size[i],
			   .upload_id = up->rec.upload_id,
			   .part_number = i + 1,
			   .md5 = up->hashed ? md5 : NULL,
			   .whole = up->whole,
			   .whole_at = whole_at};
	rc = stream_copy(&s, &err);
	*w = s.out;
	if (up->whole) {
		pthread_mutex_lock(&up->lock);
		if (!rc)
			up->next_hash++;
		pthread_cond_broadcast(&up->hash_cond);
		pthread_mutex_unlock(&up->lock);
	}
	if (rc) {
		msg_snprintf(reason, rsz, "part %u: %s", i + 1,
			     rc == -ESTALE
				 ? "source changed during the copy; the next run copies it"
				 : err.message);
		goto out;
	}
	char hex[33] = "", why[CODEC_ERROR_MAX];
	if (up->hashed) {
		unsigned char md[16];
		unsigned int mdlen = 16;
		EVP_DigestFinal_ex(md5, md, &mdlen);
		hex_encode(md, 16, hex);
	}
	if ((rc = check_single(t, w, hex, why, sizeof(why)))) {
		msg_snprintf(reason, rsz, "part %u: %s", i + 1, why);
		goto out;
	}
	sent(t, up->lay.size[i]);
out:
	EVP_MD_CTX_free(md5);
	EVP_MD_CTX_free(whole_at);
	return rc;
}

static void run_part(struct worker *wk, struct job *pj)
{
	struct transfer *t = wk->t;
	struct upload *up = pj->up;
	uint32_t i = pj->part;
	char reason[CODEC_ERROR_MAX] = "";
	struct s3_written w;
	memset(&w, 0, sizeof(w));
	int rc;

	pthread_mutex_lock(&up->lock);
	bool skip = up->err != 0;
	pthread_mutex_unlock(&up->lock);
	if (skip || stopping(t))
		rc = -ECANCELED;
	else if (t->o->same_endpoint)
		rc = part_server(t, up, i, &w, reason, sizeof(reason));
	else if (up->lay.size[i] <= t->share)
		rc = part_buffered(wk, up, i, &w, reason, sizeof(reason));
	else
		rc = part_streamed(t, up, i, &w, reason, sizeof(reason));
	if (rc == 0)
		failpoint_hit(FAILPOINT_PART_UPLOADED);

	bool last;
	pthread_mutex_lock(&up->lock);
	if (rc == 0) {
		up->pdone[i] = true;
		str_copy_fit(up->petag[i], w.etag, S3_ETAG_MAX);
		up->digest_lost |= !w.etag_is_digest;
		if (!w.etag_is_digest) /* later copies hash here from the start */
			__atomic_store_n(&t->dst_opaque, true, __ATOMIC_RELAXED);
		up->since_save++;
	} else if (rc != -ECANCELED && !up->err) {
		up->err = rc;
		str_copy_msg(up->errmsg, reason, sizeof(up->errmsg));
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
		msg_snprintf(reason, sizeof(reason), "delete: %s", err.message);
		add64(&t->prog->failed, 1);
		if (t->o->on_failure)
			t->o->on_failure(t->o->on_failure_ctx, j->key, j->key_len, reason);
	} else {
		failpoint_hit(FAILPOINT_DELETE_ANSWERED);
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

/* Copy one object by its route; -EAGAIN from a route means the source changed
 * and goes another way now. 0 or 1 when done (1: by an earlier run), or a
 * negative errno with reason set; *owned is false when an upload took j. */
static int copy_object(struct worker *wk, struct job *j, bool *owned, struct buf *reason)
{
	struct transfer *t = wk->t;
	struct buf skey = BUF_INIT, dkey = BUF_INIT;
	src_key_of(t, j->key, j->key_len, &skey);
	dst_key_of(t, j->key, j->key_len, &dkey);
	int rc = -EAGAIN;
	for (int round = 0; rc == -EAGAIN && round < COPY_ATTEMPTS; round++) {
		buf_reset(reason);
		switch (route_of(t, j->size, j->etag)) {
		case ROUTE_SERVER:
			rc = copy_server(t, j, skey.data, dkey.data, reason);
			break;
		case ROUTE_SINGLE:
			rc = j->size <= t->share
				 ? copy_buffered(wk, j, skey.data, dkey.data, reason)
				 : copy_streamed(wk, j, skey.data, dkey.data, reason);
			if (rc == -EBADMSG && !j->hash && !stopping(t)) {
				/* The destination refused the bytes, or its answer does
				 * not prove them: once more, hashed here. */
				log_info("%s: %s; copying it again", dkey.data, reason->data);
				j->hash = true;
				rc = -EAGAIN;
				round--;
			}
			break;
		case ROUTE_PARTS:
			rc = start_large(wk, j, skey.data, dkey.data, reason);
			*owned = rc != 0;
			break;
		}
	}
	if (rc == -EAGAIN)
		buf_adds(reason,
			 "source keeps changing while it is copied; the next run copies it");
	buf_release(&skey);
	buf_release(&dkey);
	return rc;
}

/* After a copy failed with -ENOENT: whether the source no longer has the
 * object (rather than the destination lacking its bucket). */
static bool source_gone(struct transfer *t, const struct job *j)
{
	struct buf skey = BUF_INIT;
	src_key_of(t, j->key, j->key_len, &skey);
	struct s3_object_head h;
	struct dth_err err;
	int rc = s3_head_object(t->o->src, t->o->src_bucket, skey.data, 0, &h, &err);
	if (!rc)
		s3_object_head_release(&h);
	buf_release(&skey);
	return rc == -ENOENT;
}

/* An object deleted at the source since it was listed (or since the event
 * that named it): not a failure, and nothing is recorded, so its record
 * stays as it was; the next run that lists the source, or the delete's own
 * event, decides what the destination keeps. */
static void vanished(struct transfer *t, const struct job *j)
{
	add64(&t->prog->skipped, 1);
	log_info("%.*s: gone from the source since it was listed; not copied",
		 (int)(j->key_len > 200 ? 200 : j->key_len), j->key);
}

static void run_object(struct worker *wk, struct job *j)
{
	struct transfer *t = wk->t;
	struct buf reason = BUF_INIT;
	struct dth_err kerr;
	err_clear(&kerr);
	bool owned = true;
	if (stopping(t)) {
		job_free(j);
		return;
	}
	if (!key_fits(j, &kerr)) {
		object_failed(t, j, kerr.message);
	} else {
		int rc = copy_object(wk, j, &owned, &reason);
		if (rc == -ENOENT && source_gone(t, j))
			vanished(t, j);
		else if (rc < 0 && rc != -ECANCELED)
			object_failed(t, j, reason.len ? reason.data : strerror(-rc));
	}
	if (owned)
		job_free(j);
	buf_release(&reason);
}

/* The next job for a worker, waiting for one; NULL when shutting down.
 * Workers take parts first, then objects, then small jobs; small lanes take
 * small jobs only, and only while the gate lets them in (workers are never
 * gated, so small jobs still drain at --concurrency). Called and returns
 * with t->lock held. */
static struct job *next_job_locked(struct worker *wk)
{
	struct transfer *t = wk->t;
	struct job *j;
	for (;;) {
		bool gated = wk->small_lane && wk->lane >= aimd_limit(t->gate);
		if (gated)
			j = NULL;
		else if (wk->small_lane)
			j = q_pop(&t->small);
		else if (!(j = q_pop(&t->parts)) && !(j = q_pop(&t->objects)))
			j = q_pop(&t->small);
		if (j || t->shutdown)
			break;
		if (gated) {
			pthread_cond_wait(&t->cond_gate, &t->lock);
		} else if (wk->small_lane) {
			t->idle_small++;
			pthread_cond_wait(&t->cond_small, &t->lock);
			t->idle_small--;
		} else {
			pthread_cond_wait(&t->cond_work, &t->lock);
		}
	}
	if (j && j->kind != JOB_PART)
		pthread_cond_signal(j->small ? &t->cond_small_space : &t->cond_space);
	return j;
}

/* With a fair share: a slot first, then the job. Slots are taken in the
 * order jobs are, so a part never holds a slot while an earlier part of its
 * upload waits for one. Called and returns with t->lock held; NULL when
 * shutting down. */
static struct job *next_job_fair_locked(struct worker *wk)
{
	struct transfer *t = wk->t;
	for (;;) {
		while (!t->parts.n && !t->objects.n && !t->small.n && !t->shutdown)
			pthread_cond_wait(&t->cond_work, &t->lock);
		if (!t->parts.n && !t->objects.n && !t->small.n)
			return NULL;
		pthread_mutex_unlock(&t->lock);
		fairshare_acquire(t->o->fair);
		pthread_mutex_lock(&t->lock);
		struct job *j = q_pop(&t->parts);
		if (!j && !(j = q_pop(&t->objects)))
			j = q_pop(&t->small);
		if (j) {
			if (j->kind != JOB_PART)
				pthread_cond_signal(j->small ? &t->cond_small_space
							     : &t->cond_space);
			return j;
		}
		pthread_mutex_unlock(&t->lock);
		fairshare_release(t->o->fair);
		pthread_mutex_lock(&t->lock);
	}
}

static void run_job(struct worker *wk, struct job *j)
{
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
}

/* After a small job: halve the small lanes let in when a throttled answer
 * (SlowDown, 429) came since the last look, or let one more in after a
 * window of clean jobs (agent/aimd.h). Called with t->lock held. */
static void gate_after_locked(struct transfer *t)
{
	uint64_t throttled = reqstats_throttled();
	bool hit = throttled != t->throttled_seen;
	t->throttled_seen = throttled;
	int moved = aimd_done(t->gate, hit);
	if (moved > 0)
		pthread_cond_broadcast(&t->cond_gate);
	if (moved < 0)
		log_info("throttled by a server (503 SlowDown or 429): %u of %u small-object "
			 "lanes in use",
			 aimd_limit(t->gate), t->nsmall);
}

static bool idle_locked(const struct transfer *t)
{
	return !t->running && !t->parts.n && !t->objects.n && !t->small.n;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct transfer *t = wk->t;
	struct fairshare_client *fair = t->o->fair;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		struct job *j = fair ? next_job_fair_locked(wk) : next_job_locked(wk);
		if (!j) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		t->running++;
		pthread_mutex_unlock(&t->lock);

		bool small = j->small;
		run_job(wk, j);
		body_trim(wk);
		if (fair)
			fairshare_release(fair);

		pthread_mutex_lock(&t->lock);
		t->running--;
		if (small && t->gate)
			gate_after_locked(t);
		if (idle_locked(t))
			pthread_cond_broadcast(&t->cond_idle);
		pthread_mutex_unlock(&t->lock);
	}
	body_drop(wk);
	free(wk);
	return NULL;
}

/* A worker's share of the budget, and the ring of a streamed copy. */
static void size_budget(struct transfer *t, uint64_t limit, unsigned workers)
{
	t->budget = budget_new(limit);
	t->share = limit / (workers ? workers : 1);
	if (t->share > 1)
		t->share -= 1; /* a buffer's NUL */
	uint64_t ring = t->share < RING_MAX ? t->share : RING_MAX;
	t->ring = ring < RING_MIN ? RING_MIN : (size_t)ring;
	if (t->ring > limit)
		t->ring = (size_t)limit;
}

/* Small lanes besides the workers: none with a fair share (the agent's
 * slots bound its tasks), else up to small_concurrency in all. */
static unsigned small_lanes(const struct sync_opts *o, unsigned workers)
{
	if (o->fair)
		return 0;
	unsigned n = o->small_concurrency;
	if (!n)
		n = workers * 16 < 256 ? workers * 16 : 256;
	return n > workers ? n - workers : 0;
}

/* Start a worker, or a small lane; false when no thread could be made.
 * Lanes start with t->lock held: the new thread waits for it. */
static bool start_thread(struct transfer *t, bool small_lane)
{
	struct worker *wk = xcalloc(1, sizeof(*wk));
	wk->t = t;
	wk->small_lane = small_lane;
	wk->lane = small_lane ? t->small_started : 0;
	buf_init(&wk->body);
	if (pthread_create(&t->threads[t->nthreads], NULL, worker_main, wk)) {
		free(wk);
		return false;
	}
	t->nthreads++;
	if (small_lane)
		t->small_started++;
	return true;
}

/* The workers start now; small lanes as small jobs come (grow_small_locked),
 * so a rescan or a copy of large objects starts none. */
static void start_workers(struct transfer *t, unsigned workers)
{
	t->threads = xcalloc((size_t)workers + t->nsmall, sizeof(pthread_t));
	for (unsigned i = 0; i < workers; i++)
		if (!start_thread(t, false))
			break;
}

/* A small job was queued and no lane waits for one: start another lane,
 * while the gate lets one more in. When no thread can be made, no more are
 * tried: the lanes and workers there are drain the queue. Called with
 * t->lock held. */
static void grow_small_locked(struct transfer *t)
{
	if (t->idle_small || t->small_started >= t->nsmall ||
	    t->small_started >= aimd_limit(t->gate))
		return;
	if (!start_thread(t, true))
		t->nsmall = t->small_started;
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
	pthread_cond_init(&t->cond_small, NULL);
	pthread_cond_init(&t->cond_space, NULL);
	pthread_cond_init(&t->cond_small_space, NULL);
	pthread_cond_init(&t->cond_idle, NULL);
	pthread_cond_init(&t->cond_gate, NULL);
	unsigned workers = o->concurrency ? o->concurrency : 1;
	size_budget(t, o->memory_limit ? o->memory_limit : DEFAULT_MEMORY, workers);
	t->nsmall = small_lanes(o, workers);
	if (t->nsmall) {
		t->gate = aimd_new(0, t->nsmall);
		t->throttled_seen = reqstats_throttled();
	}
	t->max_objects = 2 * (size_t)workers + 16;
	t->max_small = 2 * ((size_t)workers + t->nsmall) + 16;
	start_workers(t, workers);
	return t;
}

/* Queue j, waiting while its queue is full; wakes a worker that takes it.
 * Called and returns with t->lock held. */
static void push_job_locked(struct transfer *t, struct job *j)
{
	j->small = t->nsmall && (j->kind == JOB_DELETE || j->size < TRANSFER_SMALL_MAX);
	struct queue *q = j->small ? &t->small : &t->objects;
	size_t max = j->small ? t->max_small : t->max_objects;
	while (q->n >= max && !t->shutdown)
		pthread_cond_wait(j->small ? &t->cond_small_space : &t->cond_space, &t->lock);
	q_push(q, j);
	if (j->small && t->idle_small) {
		pthread_cond_signal(&t->cond_small);
		return;
	}
	if (j->small)
		grow_small_locked(t);
	pthread_cond_signal(&t->cond_work);
}

int transfer_submit(struct transfer *t, const struct plan *p)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->kind = p->action == SYNC_DELETE ? JOB_DELETE : JOB_OBJECT;
	j->key = xmemdup(p->key, p->key_len); /* all bytes: a key may hold a NUL */
	j->key_len = p->key_len;
	j->size = p->size;
	str_copy_fit(j->etag, p->etag, sizeof(j->etag));
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
	push_job_locked(t, j);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int transfer_finish(struct transfer *t, struct dth_err *err)
{
	pthread_mutex_lock(&t->lock);
	while (!idle_locked(t))
		pthread_cond_wait(&t->cond_idle, &t->lock);
	t->shutdown = true;
	pthread_cond_broadcast(&t->cond_work);
	pthread_cond_broadcast(&t->cond_small);
	pthread_cond_broadcast(&t->cond_gate);
	pthread_mutex_unlock(&t->lock);
	for (unsigned i = 0; i < t->nthreads; i++)
		pthread_join(t->threads[i], NULL);
	t->nthreads = 0;
	if (t->fatal && err)
		*err = t->fatal_err;
	return t->fatal;
}

uint64_t transfer_memory_peak(struct transfer *t)
{
	return budget_peak(t->budget);
}

void transfer_small_lanes(struct transfer *t, unsigned *lanes, unsigned *low)
{
	pthread_mutex_lock(&t->lock);
	*lanes = t->nsmall;
	*low = t->gate ? aimd_low(t->gate) : 0;
	pthread_mutex_unlock(&t->lock);
}

void transfer_free(struct transfer *t)
{
	if (!t)
		return;
	if (t->nthreads) {
		struct dth_err e;
		int rc = transfer_finish(t, &e);
		(void)rc; /* freeing: the caller has what it needs */
	}
	struct job *j;
	while ((j = q_pop(&t->objects)))
		job_free(j);
	while ((j = q_pop(&t->small)))
		job_free(j);
	while ((j = q_pop(&t->parts)))
		free(j);
	budget_free(t->budget);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond_work);
	pthread_cond_destroy(&t->cond_small);
	pthread_cond_destroy(&t->cond_space);
	pthread_cond_destroy(&t->cond_small_space);
	pthread_cond_destroy(&t->cond_idle);
	pthread_cond_destroy(&t->cond_gate);
	aimd_free(t->gate);
	free(t->threads);
	free(t);
}
