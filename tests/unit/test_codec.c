#include "common/compat.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/codec.h"
#include "tests/unit/tap.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void fill(char *s, size_t n, char base)
{
	for (size_t i = 0; i < n; i++)
		s[i] = (char)(base + (char)(i % 26));
	s[n] = '\0';
}

static void test_status(void)
{
	int good = 1;
	for (int i = 0; i < OBJ__COUNT; i++)
		if (obj_status_parse(obj_status_name(i)) != i)
			good = 0;
	ok(good, "status names round trip");
	is_str(obj_status_name(OBJ_DONE), "done", "done name");
	is_str(obj_status_name(OBJ_DELETED), "deleted", "deleted name");
	ok(obj_status_name(OBJ__COUNT) == NULL && obj_status_name(-1) == NULL,
	   "unknown status has no name");
	is_int(obj_status_parse("bogus"), -1, "unknown status name");
	is_int(obj_status_parse(NULL), -1, "NULL status name");
}

static int obj_eq(const struct obj_record *a, const struct obj_record *b)
{
	return a->size == b->size && a->last_modified == b->last_modified &&
	       strcmp(a->etag, b->etag) == 0 && a->meta_fp == b->meta_fp &&
	       a->status == b->status && a->attempts == b->attempts &&
	       strcmp(a->last_error, b->last_error) == 0 &&
	       strcmp(a->dest_etag, b->dest_etag) == 0 && a->transferred_at == b->transferred_at;
}

/* Every strict prefix of enc must fail to decode; the whole must succeed. */
typedef int (*decode_fn)(const void *, size_t, void *);
static int dec_obj(const void *d, size_t l, void *out)
{
	return codec_obj_decode(d, l, out);
}
static int dec_upload(const void *d, size_t l, void *out)
{
	int rc = codec_upload_decode(d, l, out);
	codec_upload_release(out);
	return rc;
}
static int dec_stats(const void *d, size_t l, void *out)
{
	return codec_stats_decode(d, l, out);
}
static int dec_task(const void *d, size_t l, void *out)
{
	return codec_task_decode(d, l, out);
}

/* newer: a version the decoder must refuse as newer (0: the encoded one + 1) */
static void check_prefixes(const char *what, const struct buf *enc, decode_fn fn, void *scratch,
			   int newer)
{
	int bad = 0;
	for (size_t n = 0; n < enc->len; n++) {
		/* a heap copy of exactly n bytes so ASan catches any over-read */
		char *p = calloc(1, n ? n : 1);
		memcpy(p, enc->data, n);
		int rc = fn(n ? p : NULL, n, scratch);
		if (rc != -EPROTO)
			bad++;
		free(p);
	}
	char *p = calloc(1, enc->len);
	memcpy(p, enc->data, enc->len);
	int rc = fn(p, enc->len, scratch);
	free(p);
	ok(bad == 0, "%s: every truncation (%zu) is -EPROTO", what, enc->len);
	is_int(rc, 0, "%s: the whole encoding decodes", what);

	/* a trailing byte is garbage */
	struct buf t = BUF_INIT;
	buf_add(&t, enc->data, enc->len);
	buf_addch(&t, 0);
	is_int(fn(t.data, t.len, scratch), -EPROTO, "%s: trailing byte is -EPROTO", what);
	/* version byte: newer is -ENOTSUP, zero is -EPROTO */
	if (!newer)
		newer = enc->data[0] + 1;
	t.data[0] = (char)newer;
	t.len--;
	is_int(fn(t.data, t.len, scratch), -ENOTSUP, "%s: version %d is -ENOTSUP", what, newer);
	t.data[0] = (char)0xff;
	is_int(fn(t.data, t.len, scratch), -ENOTSUP, "%s: version 255 is -ENOTSUP", what);
	t.data[0] = 0;
	is_int(fn(t.data, t.len, scratch), -EPROTO, "%s: version 0 is -EPROTO", what);
	buf_release(&t);
}

static void test_obj(void)
{
	struct obj_record a, b;
	struct buf enc = BUF_INIT;

	memset(&a, 0, sizeof(a));
	codec_obj_encode(&a, &enc);
	is_int(codec_obj_decode(enc.data, enc.len, &b), 0, "obj: zero record decodes");
	ok(obj_eq(&a, &b), "obj: zero record round trips");

	memset(&a, 0, sizeof(a));
	a.size = UINT64_MAX;
	a.last_modified = INT64_MIN;
	fill(a.etag, CODEC_ETAG_MAX - 1, 'a');
	a.meta_fp = 0x8000000000000001ULL;
	a.status = OBJ_DELETED;
	a.attempts = UINT32_MAX;
	fill(a.last_error, CODEC_ERROR_MAX - 1, 'A');
	fill(a.dest_etag, CODEC_ETAG_MAX - 1, 'k');
	a.transferred_at = INT64_MAX;
	buf_reset(&enc);
	codec_obj_encode(&a, &enc);
	memset(&b, 0x5a, sizeof(b));
	is_int(codec_obj_decode(enc.data, enc.len, &b), 0, "obj: max record decodes");
	ok(obj_eq(&a, &b), "obj: max-size strings and extreme integers round trip");
	check_prefixes("obj max", &enc, dec_obj, &b, 0);

	/* a field without its NUL is stored truncated to size-1 */
	memset(a.etag, 'z', sizeof(a.etag));
	buf_reset(&enc);
	codec_obj_encode(&a, &enc);
	is_int(codec_obj_decode(enc.data, enc.len, &b), 0, "obj: unterminated field encodes");
	is_int(strlen(b.etag), CODEC_ETAG_MAX - 1, "obj: unterminated field truncated");

	/* hand-made corruptions of a small record: [0]=ver [1]=size [2]=lmod
	 * [3]=etag form (string) [4]=etag len [5..6]="ab" [7]=meta_fp [8]=status */
	memset(&a, 0, sizeof(a));
	str_copy_fit(a.etag, "ab", sizeof(a.etag));
	a.status = OBJ_DONE;
	buf_reset(&enc);
	codec_obj_encode(&a, &enc);
	is_int((unsigned char)enc.data[0], 2, "obj: written as version 2");
	is_int((unsigned char)enc.data[3], 0, "obj: layout as expected (etag form)");
	is_int((unsigned char)enc.data[4], 2, "obj: layout as expected (etag length)");
	is_int((unsigned char)enc.data[8], OBJ_DONE, "obj: layout as expected (status)");
	struct buf t = BUF_INIT;
	buf_add(&t, enc.data, enc.len);
	t.data[8] = OBJ__COUNT;
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO, "obj: unknown status is -EPROTO");
	buf_reset(&t);
	buf_add(&t, enc.data, enc.len);
	t.data[5] = 0;
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO, "obj: NUL inside a string is -EPROTO");
	buf_reset(&t);
	buf_add(&t, enc.data, enc.len);
	t.data[4] = 100;
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO, "obj: string past the end is -EPROTO");
	buf_reset(&t);
	buf_add(&t, enc.data, enc.len);
	t.data[3] = 4;
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO, "obj: unknown etag form is -EPROTO");
	buf_reset(&t);
	buf_add(&t, enc.data, enc.len);
	t.data[3] = 3;
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO,
	       "obj: the source etag \"same as the source\" is -EPROTO");

	/* etag of CODEC_ETAG_MAX bytes does not fit the struct (version 1 and 2) */
	for (int v = 1; v <= 2; v++) {
		buf_reset(&t);
		buf_addch(&t, (char)v);
		buf_addch(&t, 0);
		buf_addch(&t, 0);
		if (v == 2)
			buf_addch(&t, 0);  /* string form */
		buf_addch(&t, (char)0x80); /* 128 as varint */
		buf_addch(&t, 0x01);
		for (int i = 0; i < CODEC_ETAG_MAX; i++)
			buf_addch(&t, 'e');
		buf_add(&t, "\0\0\0\0\0\0", 6);
		is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO,
		       "obj: over-long etag is -EPROTO (version %d)", v);
	}

	/* varint longer than 64 bits */
	buf_reset(&t);
	buf_addch(&t, 1);
	for (int i = 0; i < 10; i++)
		buf_addch(&t, (char)0xff);
	buf_addch(&t, 0x01);
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO, "obj: 11-byte varint is -EPROTO");
	buf_reset(&t);
	buf_addch(&t, 1);
	for (int i = 0; i < 9; i++)
		buf_addch(&t, (char)0xff);
	buf_addch(&t, 0x02);
	is_int(codec_obj_decode(t.data, t.len, &b), -EPROTO, "obj: varint overflowing 64 bits");

	is_int(codec_obj_decode(NULL, 0, &b), -EPROTO, "obj: empty is -EPROTO");
	buf_release(&t);
	buf_release(&enc);
}

/* Version 1 records (written before issue 13) are still read. */
static void test_obj_v1(void)
{
	/* ver 1, size 5, lmod 3 (zigzag 6), etag "ab", meta_fp 7, status done,
	 * attempts 2, last_error "", dest_etag "cd", transferred_at 1 (zigzag 2) */
	static const char v1[] = {1, 5, 6, 2, 'a', 'b', 7, OBJ_DONE, 2, 0, 2, 'c', 'd', 2};
	struct obj_record b;
	is_int(codec_obj_decode(v1, sizeof(v1), &b), 0, "obj v1: decodes");
	ok(b.size == 5 && b.last_modified == 3 && !strcmp(b.etag, "ab") && b.meta_fp == 7 &&
	       b.status == OBJ_DONE && b.attempts == 2 && !b.last_error[0] &&
	       !strcmp(b.dest_etag, "cd") && b.transferred_at == 1,
	   "obj v1: every field as written");
	struct buf enc = BUF_INIT;
	buf_add(&enc, v1, sizeof(v1));
	check_prefixes("obj v1", &enc, dec_obj, &b, 3);
	buf_release(&enc);
}

/* The compact etags of version 2: exact round trips, and the sizes. */
static void test_obj_etags(void)
{
	static const struct {
		const char *etag, *dest;
		size_t len; /* encoded length (version 1: 83 for an MD5 copied as is) */
	} cases[] = {
	    {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", 35},
	    {"0123456789abcdef0123456789abcdef", "", 36},
	    {"0123456789abcdef0123456789abcdef-17", "0123456789abcdef0123456789abcdef-17", 36},
	    {"0123456789abcdef0123456789abcdef-10000", "fedcba9876543210fedcba9876543210", 53},
	    {"0123456789ABCDEF0123456789abcdef", "", 53},	/* uppercase: a string */
	    {"0123456789abcdef0123456789abcdef-0", "", 55},	/* N = 0: a string */
	    {"0123456789abcdef0123456789abcdef-01", "", 56},	/* leading zero */
	    {"0123456789abcdef0123456789abcdef-10001", "", 59}, /* N > 10000 */
	    {"0123456789abcdef0123456789abcdef-", "", 54},	/* no N */
	    {"0123456789abcdef0123456789abcde", "", 52},	/* 31 digits */
	    {"0123456789abcdef0123456789abcdefa", "", 54},	/* 33 digits */
	    {"0123456789abcdef0123456789abcdeg", "", 53},	/* not hex */
	    {"", "", 20}, /* an empty destination etag equal to an empty etag: "same" */
	    {"etag", "etag", 24},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct obj_record a, b;
		memset(&a, 0, sizeof(a));
		a.size = 4096;
		a.last_modified = 1700000000;
		a.status = OBJ_DONE;
		a.transferred_at = 1700000001;
		str_copy_fit(a.etag, cases[i].etag, sizeof(a.etag));
		str_copy_fit(a.dest_etag, cases[i].dest, sizeof(a.dest_etag));
		struct buf enc = BUF_INIT;
		codec_obj_encode(&a, &enc);
		is_int(codec_obj_decode(enc.data, enc.len, &b), 0, "etag \"%s\": decodes", a.etag);
		ok(obj_eq(&a, &b), "etag \"%s\" / \"%s\": round trips", a.etag, a.dest_etag);
		is_int(enc.len, cases[i].len, "etag \"%s\" / \"%s\": encoded length", a.etag,
		       a.dest_etag);
		if (i == 0 || i == 3) {
			char what[32];
			xsnprintf(what, sizeof(what), "obj compact %zu", i);
			check_prefixes(what, &enc, dec_obj, &b, 0);
		}
		buf_release(&enc);
	}
}

static void test_upload(void)
{
	struct upload_record a, b;
	struct buf enc = BUF_INIT;

	memset(&a, 0, sizeof(a));
	fill(a.upload_id, CODEC_UPLOAD_ID_MAX - 1, 'a');
	fill(a.src_etag, CODEC_ETAG_MAX - 1, 'b');
	a.object_size = 5ULL << 40;
	a.part_size = 512ULL << 20;
	a.part_count = 10000;
	a.created = -1;
	a.n_parts = 10000;
	a.parts = calloc(a.n_parts, sizeof(*a.parts));
	for (uint32_t i = 0; i < a.n_parts; i++) {
		a.parts[i].number = i + 1;
		a.parts[i].size = a.part_size - i;
		snprintf(a.parts[i].etag, sizeof(a.parts[i].etag), "%08x%08x%08x%08x", i, i * 7,
			 i * 13, ~i);
	}
	codec_upload_encode(&a, &enc);
	is_int(codec_upload_decode(enc.data, enc.len, &b), 0, "upload: 10000 parts decode");
	int same = strcmp(a.upload_id, b.upload_id) == 0 && strcmp(a.src_etag, b.src_etag) == 0 &&
		   a.object_size == b.object_size && a.part_size == b.part_size &&
		   a.part_count == b.part_count && a.created == b.created && b.n_parts == a.n_parts;
	for (uint32_t i = 0; same && i < a.n_parts; i++)
		same = a.parts[i].number == b.parts[i].number &&
		       a.parts[i].size == b.parts[i].size &&
		       strcmp(a.parts[i].etag, b.parts[i].etag) == 0;
	ok(same, "upload: every field and part round trips");
	codec_upload_release(&b);
	ok(b.parts == NULL && b.n_parts == 0, "upload: release clears parts");
	codec_upload_release(&b);
	ok(1, "upload: release is idempotent");

	/* small one for the truncation walk */
	a.n_parts = 3;
	buf_reset(&enc);
	codec_upload_encode(&a, &enc);
	check_prefixes("upload", &enc, dec_upload, &b, 0);

	/* no parts */
	a.n_parts = 0;
	buf_reset(&enc);
	codec_upload_encode(&a, &enc);
	is_int(codec_upload_decode(enc.data, enc.len, &b), 0, "upload: no parts decodes");
	ok(b.parts == NULL && b.n_parts == 0, "upload: no parts, no allocation");
	/* a huge part count in a short buffer must fail before allocating */
	struct buf t = BUF_INIT;
	buf_add(&t, enc.data, enc.len - 1);
	buf_add(&t, "\xff\xff\xff\xff\x0f", 5); /* n_parts = UINT32_MAX */
	is_int(codec_upload_decode(t.data, t.len, &b), -EPROTO, "upload: lying part count");
	ok(b.parts == NULL, "upload: nothing allocated on error");
	buf_release(&t);
	free(a.parts);
	buf_release(&enc);
}

static int dec_image(const void *d, size_t l, void *out)
{
	return codec_image_decode(d, l, out);
}

static int dec_blob(const void *d, size_t l, void *out)
{
	return codec_blob_decode(d, l, out);
}

static void test_image_blob(void)
{
	struct image_record a, b;
	struct buf enc = BUF_INIT;
	memset(&a, 0, sizeof(a));
	fill(a.src_digest, CODEC_DIGEST_MAX - 1, 's');
	fill(a.dst_digest, CODEC_DIGEST_MAX - 1, 'd');
	fill(a.media_type, CODEC_MEDIA_MAX - 1, 'm');
	fill(a.last_error, CODEC_ERROR_MAX - 1, 'e');
	a.size = 4 << 20;
	a.status = OBJ_FAILED;
	a.attempts = 7;
	a.copied_at = 1700000000;
	a.platforms_fp = 0xfedcba9876543210ULL;
	codec_image_encode(&a, &enc);
	is_int(codec_image_decode(enc.data, enc.len, &b), 0, "image: decodes");
	ok(!memcmp(&a, &b, sizeof(a)), "image: every field round trips");
	check_prefixes("image", &enc, dec_image, &b, 0);
	/* an unknown status is refused */
	a.status = OBJ__COUNT;
	buf_reset(&enc);
	codec_image_encode(&a, &enc);
	is_int(codec_image_decode(enc.data, enc.len, &b), -EPROTO, "image: unknown status refused");

	struct blob_record x, y;
	memset(&x, 0, sizeof(x));
	x.size = 123456789;
	x.seen_at = -5;
	fill(x.repo, CODEC_REPO_MAX - 1, 'r');
	buf_reset(&enc);
	codec_blob_encode(&x, &enc);
	is_int(codec_blob_decode(enc.data, enc.len, &y), 0, "blob: decodes");
	ok(!memcmp(&x, &y, sizeof(x)), "blob: every field round trips");
	check_prefixes("blob", &enc, dec_blob, &y, 0);

	/* keys: registry hash, digest, NUL, repository hash (big-endian) */
	struct buf k1 = BUF_INIT, k2 = BUF_INIT;
	codec_blob_key(0x0102030405060708ULL, "sha256:ab", 0x1112131415161718ULL, 1, &k1);
	ok(k1.len == 8 + 9 + 1 + 8 && !memcmp(k1.data, "\x01\x02\x03\x04\x05\x06\x07\x08", 8) &&
	       !memcmp(k1.data + 8, "sha256:ab", 10) &&
	       !memcmp(k1.data + 18, "\x11\x12\x13\x14\x15\x16\x17\x18", 8),
	   "blob key layout");
	codec_blob_key(0x0102030405060708ULL, "sha256:ab", 0, 0, &k2);
	ok(k2.len == 18 && !memcmp(k1.data, k2.data, k2.len), "blob key prefix of a digest");
	buf_reset(&k2);
	codec_blob_key(0x0102030405060708ULL, "sha256:a", 0, 0, &k2);
	ok(memcmp(k1.data, k2.data, k2.len) != 0,
	   "a shorter digest is not a prefix of a longer one's key");
	buf_release(&k1);
	buf_release(&k2);
	buf_release(&enc);
}

/* A version 1 task record (as written before the run fields existed) decodes
 * with the defaults; its layout is the version 2 one without the last four
 * fields, which are 4 bytes for the defaults. */
static void test_task_v1(void)
{
	struct task_record t, t2;
	struct buf enc = BUF_INIT;
	memset(&t, 0, sizeof(t));
	str_copy_fit(t.name, "old", sizeof(t.name));
	str_copy_fit(t.src, "a:b/c", sizeof(t.src));
	str_copy_fit(t.dst, "d:e", sizeof(t.dst));
	str_copy_fit(t.kind, "s3", sizeof(t.kind));
	str_copy_fit(t.state, "idle", sizeof(t.state));
	t.created = 1700000000;
	t.runs = 7;
	t.dest_listed = 1;
	t.last_exit = -1;
	codec_task_encode(&t, &enc);
	ok(enc.len > 5 && memcmp(enc.data + enc.len - 4, "\x00\x01\x00\x00", 4) == 0,
	   "task v1: the default version 2 fields take 4 bytes");
	enc.len -= 4;
	enc.data[0] = 1;
	memset(&t2, 0x5a, sizeof(t2));
	is_int(codec_task_decode(enc.data, enc.len, &t2), 0, "task v1: decodes");
	ok(strcmp(t2.name, "old") == 0 && strcmp(t2.src, "a:b/c") == 0 &&
	       strcmp(t2.state, "idle") == 0 && t2.runs == 7 && t2.dest_listed == 1 &&
	       t2.created == 1700000000,
	   "task v1: its fields");
	ok(t2.last_success == 0 && t2.last_exit == -1 && t2.error[0] == '\0' && t2.last_run == 0,
	   "task v1: defaults for the newer fields");
	check_prefixes("task v1", &enc, dec_task, &t2, 3);
	/* dest_listed is the last byte of a version 1 record */
	enc.data[enc.len - 1] = 2;
	is_int(codec_task_decode(enc.data, enc.len, &t2), -EPROTO,
	       "task v1: dest_listed 2 is -EPROTO");
	/* a version 1 record with version 2 fields is trailing garbage */
	enc.data[enc.len - 1] = 1;
	buf_add(&enc, "\x00\x01\x00\x00", 4);
	is_int(codec_task_decode(enc.data, enc.len, &t2), -EPROTO,
	       "task v1: version 2 fields after a version 1 byte are -EPROTO");
	buf_release(&enc);
}

static int dec_run(const void *d, size_t l, void *out)
{
	return codec_run_decode(d, l, out);
}

static void test_run(void)
{
	struct run_record r, r2;
	struct buf enc = BUF_INIT;
	memset(&r, 0, sizeof(r));
	codec_run_encode(&r, &enc);
	is_int(codec_run_decode(enc.data, enc.len, &r2), 0, "run: empty record decodes");
	ok(memcmp(&r, &r2, sizeof(r)) == 0, "run: empty record round trip");
	check_prefixes("run empty", &enc, dec_run, &r2, 0);

	r.seq = 99; /* not stored: the key holds it */
	r.started = 1700000000;
	r.ended = -1;
	fill(r.trigger, sizeof(r.trigger) - 1, 't');
	str_copy_fit(r.result, "failed", sizeof(r.result));
	r.exit_status = INT32_MIN;
	r.listed = UINT64_MAX;
	r.planned = 2;
	r.transferred = 3;
	r.skipped = 4;
	r.failed = 5;
	r.deleted = 6;
	r.bytes = 7;
	r.object_bytes = 8;
	r.requests = 9;
	r.request_errors = 10;
	r.retries = 11;
	for (int i = 0; i < RUN_ERRORS_MAX + 2; i++) {
		char msg[400];
		memset(msg, 'a' + i, sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		bool added = codec_run_add_error(&r, msg);
		if (i < RUN_ERRORS_MAX)
			ok(added && strlen(r.errors[i]) < RUN_ERROR_LEN &&
			       r.errors[i][0] == 'a' + i,
			   "run: error %d kept, cut", i);
		else
			ok(!added && r.n_errors == RUN_ERRORS_MAX, "run: error %d beyond the bound",
			   i);
	}
	buf_reset(&enc);
	codec_run_encode(&r, &enc);
	is_int(codec_run_decode(enc.data, enc.len, &r2), 0, "run: full record decodes");
	is_int(r2.seq, 0, "run: seq is not in the value");
	r2.seq = r.seq;
	ok(memcmp(&r, &r2, sizeof(r)) == 0, "run: full record round trip");
	check_prefixes("run", &enc, dec_run, &r2, 0);

	/* more errors than RUN_ERRORS_MAX in the input */
	r.n_errors = 0;
	buf_reset(&enc);
	codec_run_encode(&r, &enc);
	enc.data[enc.len - 1] = RUN_ERRORS_MAX + 1;
	for (int i = 0; i <= RUN_ERRORS_MAX; i++)
		buf_add(&enc, "\x01x", 2);
	is_int(codec_run_decode(enc.data, enc.len, &r2), -EPROTO,
	       "run: too many errors is -EPROTO");
	enc.data[enc.len - 2 * (RUN_ERRORS_MAX + 1) - 1] = RUN_ERRORS_MAX;
	enc.len -= 2;
	is_int(codec_run_decode(enc.data, enc.len, &r2), 0, "run: RUN_ERRORS_MAX errors decode");
	ok(r2.n_errors == RUN_ERRORS_MAX && strcmp(r2.errors[4], "x") == 0, "run: their text");
	/* n_errors beyond the bound in the struct is clamped by encode */
	r.n_errors = 1000;
	buf_reset(&enc);
	codec_run_encode(&r, &enc);
	is_int(codec_run_decode(enc.data, enc.len, &r2), 0, "run: n_errors clamped on encode");
	is_int(r2.n_errors, RUN_ERRORS_MAX, "run: RUN_ERRORS_MAX kept");
	buf_release(&enc);
}

static void test_taskdef(void)
{
	struct buf enc = BUF_INIT;
	const void *p;
	size_t n;
	codec_taskdef_encode("{\"a\":1}", 7, &enc);
	is_int(enc.len, 8, "taskdef: version byte + bytes");
	is_int(codec_taskdef_decode(enc.data, enc.len, &p, &n), 0, "taskdef: decodes");
	ok(n == 7 && memcmp(p, "{\"a\":1}", 7) == 0 && p == enc.data + 1,
	   "taskdef: the bytes, pointing into the input");
	buf_reset(&enc);
	codec_taskdef_encode(NULL, 0, &enc);
	is_int(codec_taskdef_decode(enc.data, enc.len, &p, &n), 0, "taskdef: empty decodes");
	is_int(n, 0, "taskdef: empty");
	is_int(codec_taskdef_decode(NULL, 0, &p, &n), -EPROTO, "taskdef: no bytes is -EPROTO");
	ok(p == NULL && n == 0, "taskdef: outputs cleared on failure");
	enc.data[0] = 2;
	is_int(codec_taskdef_decode(enc.data, enc.len, &p, &n), -ENOTSUP,
	       "taskdef: version 2 is -ENOTSUP");
	enc.data[0] = 0;
	is_int(codec_taskdef_decode(enc.data, enc.len, &p, &n), -EPROTO,
	       "taskdef: version 0 is -EPROTO");
	buf_release(&enc);
}

static void test_stats_task(void)
{
	struct task_stats s, s2;
	struct buf enc = BUF_INIT;
	for (int i = 0; i < OBJ__COUNT; i++) {
		s.count[i] = (uint64_t)i * 1000003;
		s.bytes[i] = UINT64_MAX - (uint64_t)i;
	}
	codec_stats_encode(&s, &enc);
	is_int(codec_stats_decode(enc.data, enc.len, &s2), 0, "stats: decode");
	ok(memcmp(&s, &s2, sizeof(s)) == 0, "stats: round trip");
	check_prefixes("stats", &enc, dec_stats, &s2, 0);

	struct task_record t, t2;
	memset(&t, 0, sizeof(t));
	fill(t.name, sizeof(t.name) - 1, 'a');
	fill(t.src, sizeof(t.src) - 1, 'b');
	fill(t.dst, sizeof(t.dst) - 1, 'c');
	str_copy_fit(t.kind, "s3", sizeof(t.kind));
	fill(t.state, sizeof(t.state) - 1, 'd');
	t.created = 1700000000;
	t.last_run_start = -5;
	t.last_run_end = INT64_MAX;
	t.runs = UINT32_MAX;
	t.dest_listed = 1;
	t.last_success = INT64_MIN;
	t.last_exit = INT32_MIN;
	fill(t.error, sizeof(t.error) - 1, 'e');
	t.last_run = UINT64_MAX;
	buf_reset(&enc);
	codec_task_encode(&t, &enc);
	is_int(enc.data[0], 2, "task: written as version 2");
	is_int(codec_task_decode(enc.data, enc.len, &t2), 0, "task: decode");
	ok(strcmp(t.name, t2.name) == 0 && strcmp(t.src, t2.src) == 0 &&
	       strcmp(t.dst, t2.dst) == 0 && strcmp(t.kind, t2.kind) == 0 &&
	       strcmp(t.state, t2.state) == 0 && t.created == t2.created &&
	       t.last_run_start == t2.last_run_start && t.last_run_end == t2.last_run_end &&
	       t.runs == t2.runs && t2.dest_listed == 1,
	   "task: max-size strings round trip");
	ok(t2.last_success == INT64_MIN && t2.last_exit == INT32_MIN &&
	       strcmp(t.error, t2.error) == 0 && t2.last_run == UINT64_MAX,
	   "task: version 2 fields round trip");
	check_prefixes("task", &enc, dec_task, &t2, 0);
	buf_release(&enc);
	test_task_v1();
}

static void test_keys(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	codec_key_encode(0x01020304, "abc", 3, &a);
	is_int(a.len, 7, "key: length");
	ok(memcmp(a.data,
		  "\x01\x02\x03\x04"
		  "abc",
		  7) == 0,
	   "key: big-endian task id then key");
	uint32_t id;
	const char *k;
	size_t kl;
	is_int(codec_key_decode(a.data, a.len, &id, &k, &kl), 0, "key: decode");
	ok(id == 0x01020304 && kl == 3 && memcmp(k, "abc", 3) == 0 && k == a.data + 4,
	   "key: decode points into the data");
	buf_reset(&a);
	codec_key_encode(7, NULL, 0, &a);
	is_int(codec_key_decode(a.data, a.len, &id, &k, &kl), 0, "key: empty key");
	ok(id == 7 && kl == 0, "key: empty key decodes");
	is_int(codec_key_decode(a.data, 3, &id, &k, &kl), -EPROTO, "key: 3 bytes is -EPROTO");
	/* task order dominates, then key bytes */
	buf_reset(&a);
	codec_key_encode(1, "zzz", 3, &a);
	codec_key_encode(256, "a", 1, &b);
	ok(memcmp(a.data, b.data, 4) < 0, "key: task 1 sorts before task 256");
	buf_release(&a);
	buf_release(&b);
}

/* Random bytes and random mutations of valid records must never crash, and
 * whatever decodes must re-encode to something that decodes the same. */
static void test_garbage(void)
{
	unsigned char bytes[2048];
	int crashes_none = 1, reenc_ok = 1, accepted = 0;
	struct obj_record o, o2;
	struct upload_record u;
	struct task_stats s;
	struct task_record t;
	struct run_record run;
	struct buf enc = BUF_INIT, valid = BUF_INIT;
	memset(&o, 0, sizeof(o));
	str_copy_fit(o.etag, "0123456789abcdef", sizeof(o.etag));
	str_copy_fit(o.last_error, "boom", sizeof(o.last_error));
	o.size = 12345;
	codec_obj_encode(&o, &valid);
	for (int iter = 0; iter < 20000; iter++) {
		size_t n;
		if (iter % 2) {
			n = rnd() % sizeof(bytes);
			for (size_t i = 0; i < n; i++)
				bytes[i] = (unsigned char)rnd();
			if (n)
				bytes[0] = (unsigned char)(1 + rnd() % 2);
		} else {
			n = valid.len;
			memcpy(bytes, valid.data, n);
			int flips = 1 + (int)(rnd() % 3);
			for (int f = 0; f < flips; f++)
				bytes[rnd() % n] = (unsigned char)rnd();
		}
		unsigned char *p = malloc(n ? n : 1);
		memcpy(p, bytes, n);
		if (codec_obj_decode(p, n, &o) == 0) {
			accepted++;
			buf_reset(&enc);
			codec_obj_encode(&o, &enc);
			if (codec_obj_decode(enc.data, enc.len, &o2) != 0 || !obj_eq(&o, &o2))
				reenc_ok = 0;
		}
		if (codec_upload_decode(p, n, &u) == 0)
			codec_upload_release(&u);
		else if (u.parts)
			crashes_none = 0;
		(void)!codec_stats_decode(p, n, &s);
		(void)!codec_task_decode(p, n, &t);
		(void)!codec_run_decode(p, n, &run);
		free(p);
	}
	ok(crashes_none, "garbage: 20000 random inputs decoded safely");
	ok(reenc_ok, "garbage: accepted inputs (%d) re-encode consistently", accepted);
	buf_release(&enc);
	buf_release(&valid);
}

int main(void)
{
	test_status();
	test_obj();
	test_obj_v1();
	test_obj_etags();
	test_upload();
	test_image_blob();
	test_stats_task();
	test_run();
	test_taskdef();
	test_keys();
	test_garbage();
	return tap_done();
}
