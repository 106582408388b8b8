/* Record codec.
 *
 * Every value is: one version byte, then the fields in a fixed order. Each
 * kind of record has its own version (1 unless said below); a decoder reads
 * every version up to its own and refuses newer ones (-ENOTSUP).
 * Unsigned integers are LEB128 varints (at most 10 bytes), signed integers are
 * zigzag-mapped first, strings are a varint length followed by that many bytes
 * (no NUL inside, shorter than the struct field), flags are single bytes.
 * A record must be consumed exactly: missing or trailing bytes are -EPROTO.
 *
 *   obj:    ver size lmod(s) etag meta_fp status(u8) attempts last_error dest_etag xfer_at(s)
 *           version 2 (written since issue 13): the same fields, but etag and
 *           dest_etag are compact etags: a form byte, then
 *             0  a string (varint length, bytes)
 *             1  an MD5: 16 bytes (the etag was exactly 32 lowercase hex digits)
 *             2  a multipart etag: 16 bytes and a varint N ("<32 hex>-N", N in
 *                1..10000 written without leading zeros)
 *             3  (dest_etag only) equal to etag
 *           so a copied object's two ETags take 18 bytes instead of 66: at 10^7
 *           or 10^9 objects the manifest is about 40 % smaller. Version 1
 *           records are still read; each is rewritten as version 2 when its
 *           object is next recorded.
 *   upload: ver upload_id src_etag object_size part_size part_count created(s) n_parts
 *           { number size etag } * n_parts
 *   stats:  ver count[OBJ__COUNT] bytes[OBJ__COUNT]
 *   task:   ver name src dst kind state created(s) last_run_start(s) last_run_end(s) runs
 *           dest_listed(u8)
 *           version 2 adds: last_success(s) last_exit(s) error last_run
 *   run:    ver started(s) ended(s) trigger result exit_status(s) listed planned transferred
 *           skipped failed deleted bytes object_bytes requests request_errors retries
 *           n_errors { error } * n_errors
 *   taskdef: ver, then the caller's bytes to the end of the value
 */
#include "common/compat.h"

#include "manifest/codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CODEC_VERSION	      1
#define CODEC_OBJ_VERSION     2
#define CODEC_TASK_VERSION    2
#define CODEC_RUN_VERSION     1
#define CODEC_TASKDEF_VERSION 1

static const char *const status_names[OBJ__COUNT] = {
    "pending", "copying", "done", "failed", "skipped", "deleted",
};

const char *obj_status_name(int s)
{
	if (s < 0 || s >= OBJ__COUNT)
		return NULL;
	return status_names[s];
}

int obj_status_parse(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < OBJ__COUNT; i++)
		if (strcmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

/* ---- encoding ---- */

static void put_u64(struct buf *out, uint64_t v)
{
	unsigned char tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (unsigned char)v;
	buf_add(out, tmp, n);
}

static void put_i64(struct buf *out, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	put_u64(out, z);
}

static void put_u8(struct buf *out, uint8_t v)
{
	buf_add(out, &v, 1);
}

/* A string field of a struct (size bytes): at most size-1 bytes are stored. */
static void put_str(struct buf *out, const char *s, size_t size)
{
	size_t n = strnlen(s, size - 1);
	put_u64(out, n);
	buf_add(out, s, n);
}

/* ---- decoding ---- */

struct rd {
	const unsigned char *p;
	size_t left;
	int err;
};

static uint64_t get_u64(struct rd *r)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (!r->left) {
			r->err = -EPROTO;
			return 0;
		}
		unsigned char c = *r->p++;
		r->left--;
		if (i == 9 && c > 1) { /* more than 64 bits */
			r->err = -EPROTO;
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80))
			return v;
	}
	r->err = -EPROTO;
	return 0;
}

static int64_t get_i64(struct rd *r)
{
	uint64_t z = get_u64(r);
	return (int64_t)((z >> 1) ^ (~(z & 1) + 1));
}

static int32_t get_i32(struct rd *r)
{
	int64_t v = get_i64(r);
	if (v < INT32_MIN || v > INT32_MAX) {
		r->err = -EPROTO;
		return 0;
	}
	return (int32_t)v;
}

static uint32_t get_u32(struct rd *r)
{
	uint64_t v = get_u64(r);
	if (v > UINT32_MAX) {
		r->err = -EPROTO;
		return 0;
	}
	return (uint32_t)v;
}

static uint8_t get_u8(struct rd *r)
{
	if (!r->left) {
		r->err = -EPROTO;
		return 0;
	}
	r->left--;
	return *r->p++;
}

static void get_str(struct rd *r, char *dst, size_t size)
{
	dst[0] = '\0';
	uint64_t n = get_u64(r);
	if (r->err)
		return;
	if (n >= size || n > r->left || memchr(r->p, '\0', (size_t)n)) {
		r->err = -EPROTO;
		return;
	}
	memcpy(dst, r->p, (size_t)n);
	dst[n] = '\0';
	r->p += n;
	r->left -= (size_t)n;
}

/* Read the version byte: 1..max. */
static int rd_begin_ver(struct rd *r, const void *data, size_t len, uint8_t max, uint8_t *ver)
{
	r->p = data;
	r->left = len;
	r->err = 0;
	if (!data || !len)
		return -EPROTO;
	*ver = get_u8(r);
	if (*ver == 0)
		return -EPROTO;
	if (*ver > max)
		return -ENOTSUP;
	return 0;
}

static int rd_begin(struct rd *r, const void *data, size_t len)
{
	uint8_t ver;
	return rd_begin_ver(r, data, len, CODEC_VERSION, &ver);
}

static int rd_end(const struct rd *r)
{
	if (r->err)
		return r->err;
	return r->left ? -EPROTO : 0;
}

/* ---- compact etags (obj version 2) ---- */

enum { ETAG_STR = 0, ETAG_MD5 = 1, ETAG_MPU = 2, ETAG_SAME = 3 };

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is kept as a string: the round trip is exact */
}

/* The part count of "<32 hex>-N" (1..10000, no leading zero), or 0. */
static unsigned mpu_parts(const char *tail)
{
	if (tail[0] != '-' || tail[1] < '1' || tail[1] > '9')
		return 0;
	unsigned n = 0;
	for (const char *p = tail + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - tail > 5)
			return 0;
		n = n * 10 + (unsigned)(*p - '0');
	}
	return n <= 10000 ? n : 0;
}

/* An etag field (size bytes) in its compact form; same: the source etag the
 * field may equal (NULL for the source etag itself). */
static void put_etag(struct buf *out, const char *e, size_t size, const char *same)
{
	size_t n = strnlen(e, size - 1);
	if (same && strnlen(same, size - 1) == n && !memcmp(e, same, n)) {
		put_u8(out, ETAG_SAME);
		return;
	}
	unsigned char md5[16];
	bool hex = n >= 32;
	for (int i = 0; hex && i < 16; i++) {
		int hi = hexval(e[2 * i]), lo = hexval(e[2 * i + 1]);
		hex = hi >= 0 && lo >= 0;
		if (hex)
			md5[i] = (unsigned char)((unsigned)hi << 4 | (unsigned)lo);
	}
	unsigned parts = 0;
	if (hex && n > 32) {
		char tail[8];
		hex = n - 32 < sizeof(tail);
		if (hex) {
			memcpy(tail, e + 32, n - 32);
			tail[n - 32] = '\0';
			parts = mpu_parts(tail);
			hex = parts > 0;
		}
	}
	if (!hex) {
		put_u8(out, ETAG_STR);
		put_str(out, e, size);
		return;
	}
	put_u8(out, parts ? ETAG_MPU : ETAG_MD5);
	buf_add(out, md5, sizeof(md5));
	if (parts)
		put_u64(out, parts);
}

/* ---- objects ---- */

void codec_obj_encode(const struct obj_record *r, struct buf *out)
{
	put_u8(out, CODEC_OBJ_VERSION);
	put_u64(out, r->size);
	put_i64(out, r->last_modified);
	put_etag(out, r->etag, sizeof(r->etag), NULL);
	put_u64(out, r->meta_fp);
	put_u8(out, r->status);
	put_u64(out, r->attempts);
	put_str(out, r->last_error, sizeof(r->last_error));
	put_etag(out, r->dest_etag, sizeof(r->dest_etag), r->etag);
	put_i64(out, r->transferred_at);
}

static void get_etag(struct rd *r, char *dst, size_t size, const char *same)
{
	static const char digits[] = "0123456789abcdef";
	dst[0] = '\0';
	uint8_t form = get_u8(r);
	if (r->err)
		return;
	if (form == ETAG_STR) {
		get_str(r, dst, size);
		return;
	}
	if (form == ETAG_SAME && same) {
		memcpy(dst, same, strlen(same) + 1); /* same is a field of size bytes */
		return;
	}
	if ((form != ETAG_MD5 && form != ETAG_MPU) || r->left < 16) {
		r->err = -EPROTO;
		return;
	}
	for (int i = 0; i < 16; i++) {
		dst[2 * i] = digits[r->p[i] >> 4];
		dst[2 * i + 1] = digits[r->p[i] & 15];
	}
	dst[32] = '\0';
	r->p += 16;
	r->left -= 16;
	if (form == ETAG_MPU) {
		uint64_t parts = get_u64(r);
		if (r->err || parts < 1 || parts > 10000) {
			r->err = -EPROTO;
			dst[0] = '\0';
			return;
		}
		char tail[8];
		xsnprintf(tail, sizeof(tail), "-%u", (unsigned)parts);
		memcpy(dst + 32, tail, strlen(tail) + 1);
	}
}

int codec_obj_decode(const void *data, size_t len, struct obj_record *r)
{
	struct rd rd;
	uint8_t ver;
	memset(r, 0, sizeof(*r));
	int rc = rd_begin_ver(&rd, data, len, CODEC_OBJ_VERSION, &ver);
	if (rc)
		return rc;
	r->size = get_u64(&rd);
	r->last_modified = get_i64(&rd);
	if (ver >= 2)
		get_etag(&rd, r->etag, sizeof(r->etag), NULL);
	else
		get_str(&rd, r->etag, sizeof(r->etag));
	r->meta_fp = get_u64(&rd);
	r->status = get_u8(&rd);
	r->attempts = get_u32(&rd);
	get_str(&rd, r->last_error, sizeof(r->last_error));
	if (ver >= 2)
		get_etag(&rd, r->dest_etag, sizeof(r->dest_etag), r->etag);
	else
		get_str(&rd, r->dest_etag, sizeof(r->dest_etag));
	r->transferred_at = get_i64(&rd);
	rc = rd_end(&rd);
	if (!rc && r->status >= OBJ__COUNT)
		rc = -EPROTO;
	if (rc)
		memset(r, 0, sizeof(*r));
	return rc;
}

/* ---- uploads ---- */

void codec_upload_encode(const struct upload_record *r, struct buf *out)
{
	put_u8(out, CODEC_VERSION);
	put_str(out, r->upload_id, sizeof(r->upload_id));
	put_str(out, r->src_etag, sizeof(r->src_etag));
	put_u64(out, r->object_size);
	put_u64(out, r->part_size);
	put_u64(out, r->part_count);
	put_i64(out, r->created);
	uint32_t n = r->parts ? r->n_parts : 0;
	put_u64(out, n);
	for (uint32_t i = 0; i < n; i++) {
		put_u64(out, r->parts[i].number);
		put_u64(out, r->parts[i].size);
		put_str(out, r->parts[i].etag, sizeof(r->parts[i].etag));
	}
}

int codec_upload_decode(const void *data, size_t len, struct upload_record *r)
{
	struct rd rd;
	memset(r, 0, sizeof(*r));
	int rc = rd_begin(&rd, data, len);
	if (rc)
		return rc;
	get_str(&rd, r->upload_id, sizeof(r->upload_id));
	get_str(&rd, r->src_etag, sizeof(r->src_etag));
	r->object_size = get_u64(&rd);
	r->part_size = get_u64(&rd);
	r->part_count = get_u32(&rd);
	r->created = get_i64(&rd);
	uint32_t n = get_u32(&rd);
	if (rd.err)
		goto fail;
	/* each part takes at least 3 bytes: never allocate more than the input can fill */
	if (n > rd.left / 3) {
		rd.err = -EPROTO;
		goto fail;
	}
	if (n) {
		r->parts = xcalloc(n, sizeof(*r->parts));
		r->n_parts = n;
	}
	for (uint32_t i = 0; i < n && !rd.err; i++) {
		r->parts[i].number = get_u32(&rd);
		r->parts[i].size = get_u64(&rd);
		get_str(&rd, r->parts[i].etag, sizeof(r->parts[i].etag));
	}
	rc = rd_end(&rd);
	if (!rc)
		return 0;
	rd.err = rc;
fail:
	codec_upload_release(r);
	memset(r, 0, sizeof(*r));
	return rd.err;
}

void codec_upload_release(struct upload_record *r)
{
	if (!r)
		return;
	free(r->parts);
	r->parts = NULL;
	r->n_parts = 0;
}

/* ---- stats ---- */

void codec_stats_encode(const struct task_stats *s, struct buf *out)
{
	put_u8(out, CODEC_VERSION);
	for (int i = 0; i < OBJ__COUNT; i++)
		put_u64(out, s->count[i]);
	for (int i = 0; i < OBJ__COUNT; i++)
		put_u64(out, s->bytes[i]);
}

int codec_stats_decode(const void *data, size_t len, struct task_stats *s)
{
	struct rd rd;
	memset(s, 0, sizeof(*s));
	int rc = rd_begin(&rd, data, len);
	if (rc)
		return rc;
	for (int i = 0; i < OBJ__COUNT; i++)
		s->count[i] = get_u64(&rd);
	for (int i = 0; i < OBJ__COUNT; i++)
		s->bytes[i] = get_u64(&rd);
	rc = rd_end(&rd);
	if (rc)
		memset(s, 0, sizeof(*s));
	return rc;
}

/* ---- tasks ---- */

void codec_image_encode(const struct image_record *r, struct buf *out)
{
	put_u8(out, CODEC_VERSION);
	put_str(out, r->src_digest, sizeof(r->src_digest));
	put_str(out, r->dst_digest, sizeof(r->dst_digest));
	put_str(out, r->media_type, sizeof(r->media_type));
	put_u64(out, r->size);
	put_u8(out, r->status);
	put_u64(out, r->attempts);
	put_str(out, r->last_error, sizeof(r->last_error));
	put_i64(out, r->copied_at);
	put_u64(out, r->platforms_fp);
}

int codec_image_decode(const void *data, size_t len, struct image_record *r)
{
	struct rd rd;
	memset(r, 0, sizeof(*r));
	int rc = rd_begin(&rd, data, len);
	if (rc)
		return rc;
	get_str(&rd, r->src_digest, sizeof(r->src_digest));
	get_str(&rd, r->dst_digest, sizeof(r->dst_digest));
	get_str(&rd, r->media_type, sizeof(r->media_type));
	r->size = get_u64(&rd);
	r->status = get_u8(&rd);
	r->attempts = get_u32(&rd);
	get_str(&rd, r->last_error, sizeof(r->last_error));
	r->copied_at = get_i64(&rd);
	r->platforms_fp = get_u64(&rd);
	if (!rd.err && r->status >= OBJ__COUNT)
		rd.err = -EPROTO;
	rc = rd.err ? rd.err : rd_end(&rd);
	if (rc)
		memset(r, 0, sizeof(*r));
	return rc;
}

void codec_blob_encode(const struct blob_record *r, struct buf *out)
{
	put_u8(out, CODEC_VERSION);
	put_u64(out, r->size);
	put_i64(out, r->seen_at);
	put_str(out, r->repo, sizeof(r->repo));
}

int codec_blob_decode(const void *data, size_t len, struct blob_record *r)
{
	struct rd rd;
	memset(r, 0, sizeof(*r));
	int rc = rd_begin(&rd, data, len);
	if (rc)
		return rc;
	r->size = get_u64(&rd);
	r->seen_at = get_i64(&rd);
	get_str(&rd, r->repo, sizeof(r->repo));
	rc = rd.err ? rd.err : rd_end(&rd);
	if (rc)
		memset(r, 0, sizeof(*r));
	return rc;
}

static void put_be64(struct buf *out, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	buf_add(out, b, sizeof(b));
}

void codec_blob_key(uint64_t reg_hash, const char *digest, uint64_t repo_hash, int with_repo,
		    struct buf *out)
{
	put_be64(out, reg_hash);
	buf_adds(out, digest);
	buf_addch(out, '\0'); /* ends the digest: no digest is a prefix of another's key */
	if (with_repo)
		put_be64(out, repo_hash);
}

void codec_task_encode(const struct task_record *t, struct buf *out)
{
	put_u8(out, CODEC_TASK_VERSION);
	put_str(out, t->name, sizeof(t->name));
	put_str(out, t->src, sizeof(t->src));
	put_str(out, t->dst, sizeof(t->dst));
	put_str(out, t->kind, sizeof(t->kind));
	put_str(out, t->state, sizeof(t->state));
	put_i64(out, t->created);
	put_i64(out, t->last_run_start);
	put_i64(out, t->last_run_end);
	put_u64(out, t->runs);
	put_u8(out, t->dest_listed ? 1 : 0);
	put_i64(out, t->last_success);
	put_i64(out, t->last_exit);
	put_str(out, t->error, sizeof(t->error));
	put_u64(out, t->last_run);
}

int codec_task_decode(const void *data, size_t len, struct task_record *t)
{
	struct rd rd;
	uint8_t ver;
	memset(t, 0, sizeof(*t));
	int rc = rd_begin_ver(&rd, data, len, CODEC_TASK_VERSION, &ver);
	if (rc)
		return rc;
	get_str(&rd, t->name, sizeof(t->name));
	get_str(&rd, t->src, sizeof(t->src));
	get_str(&rd, t->dst, sizeof(t->dst));
	get_str(&rd, t->kind, sizeof(t->kind));
	get_str(&rd, t->state, sizeof(t->state));
	t->created = get_i64(&rd);
	t->last_run_start = get_i64(&rd);
	t->last_run_end = get_i64(&rd);
	t->runs = get_u32(&rd);
	t->dest_listed = get_u8(&rd);
	t->last_exit = -1;
	if (ver >= 2) {
		t->last_success = get_i64(&rd);
		t->last_exit = get_i32(&rd);
		get_str(&rd, t->error, sizeof(t->error));
		t->last_run = get_u64(&rd);
	}
	rc = rd_end(&rd);
	if (!rc && t->dest_listed > 1)
		rc = -EPROTO;
	if (rc)
		memset(t, 0, sizeof(*t));
	return rc;
}

/* ---- runs ---- */

void codec_run_encode(const struct run_record *r, struct buf *out)
{
	put_u8(out, CODEC_RUN_VERSION);
	put_i64(out, r->started);
	put_i64(out, r->ended);
	put_str(out, r->trigger, sizeof(r->trigger));
	put_str(out, r->result, sizeof(r->result));
	put_i64(out, r->exit_status);
	const uint64_t c[] = {r->listed,   r->planned,	      r->transferred, r->skipped,
			      r->failed,   r->deleted,	      r->bytes,	      r->object_bytes,
			      r->requests, r->request_errors, r->retries};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		put_u64(out, c[i]);
	uint32_t n = r->n_errors < RUN_ERRORS_MAX ? r->n_errors : RUN_ERRORS_MAX;
	put_u64(out, n);
	for (uint32_t i = 0; i < n; i++)
		put_str(out, r->errors[i], sizeof(r->errors[i]));
}

int codec_run_decode(const void *data, size_t len, struct run_record *r)
{
	struct rd rd;
	uint8_t ver;
	memset(r, 0, sizeof(*r));
	int rc = rd_begin_ver(&rd, data, len, CODEC_RUN_VERSION, &ver);
	if (rc)
		return rc;
	r->started = get_i64(&rd);
	r->ended = get_i64(&rd);
	get_str(&rd, r->trigger, sizeof(r->trigger));
	get_str(&rd, r->result, sizeof(r->result));
	r->exit_status = get_i32(&rd);
	uint64_t *c[] = {&r->listed,   &r->planned,	   &r->transferred, &r->skipped,
			 &r->failed,   &r->deleted,	   &r->bytes,	    &r->object_bytes,
			 &r->requests, &r->request_errors, &r->retries};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		*c[i] = get_u64(&rd);
	uint32_t n = get_u32(&rd);
	if (!rd.err && n > RUN_ERRORS_MAX)
		rd.err = -EPROTO;
	for (uint32_t i = 0; i < n && !rd.err; i++)
		get_str(&rd, r->errors[i], sizeof(r->errors[i]));
	r->n_errors = n;
	rc = rd_end(&rd);
	if (rc)
		memset(r, 0, sizeof(*r));
	return rc;
}

void codec_run_key(uint32_t task_id, uint64_t seq, unsigned char out[CODEC_RUN_KEY_LEN])
{
	for (int i = 0; i < 4; i++)
		out[i] = (unsigned char)(task_id >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		out[4 + i] = (unsigned char)(seq >> (56 - 8 * i));
}

int codec_run_key_decode(const void *data, size_t len, uint32_t *task_id, uint64_t *seq)
{
	*task_id = 0;
	*seq = 0;
	if (!data || len != CODEC_RUN_KEY_LEN)
		return -EPROTO;
	const unsigned char *p = data;
	for (int i = 0; i < 4; i++)
		*task_id = *task_id << 8 | p[i];
	for (int i = 0; i < 8; i++)
		*seq = *seq << 8 | p[4 + i];
	return 0;
}

bool codec_run_add_error(struct run_record *r, const char *msg)
{
	if (r->n_errors >= RUN_ERRORS_MAX)
		return false;
	str_copy_msg(r->errors[r->n_errors], msg ? msg : "", sizeof(r->errors[0]));
	r->n_errors++;
	return true;
}

/* ---- taskdefs ---- */

void codec_taskdef_encode(const void *data, size_t len, struct buf *out)
{
	put_u8(out, CODEC_TASKDEF_VERSION);
	if (len)
		buf_add(out, data, len);
}

int codec_taskdef_decode(const void *in, size_t in_len, const void **data, size_t *len)
{
	struct rd rd;
	uint8_t ver;
	*data = NULL;
	*len = 0;
	int rc = rd_begin_ver(&rd, in, in_len, CODEC_TASKDEF_VERSION, &ver);
	if (rc)
		return rc;
	*data = rd.p;
	*len = rd.left;
	return 0;
}

/* ---- composite keys ---- */

void codec_key_encode(uint32_t task_id, const char *key, size_t key_len, struct buf *out)
{
	unsigned char be[4] = {(unsigned char)(task_id >> 24), (unsigned char)(task_id >> 16),
			       (unsigned char)(task_id >> 8), (unsigned char)task_id};
	buf_add(out, be, 4);
	if (key_len)
		buf_add(out, key, key_len);
}

int codec_key_decode(const void *data, size_t len, uint32_t *task_id, const char **key,
		     size_t *key_len)
{
	if (!data || len < 4)
		return -EPROTO;
	const unsigned char *p = data;
	*task_id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	*key = (const char *)p + 4;
	*key_len = len - 4;
	return 0;
}
