/* Fuzz target for manifest/codec.h: every decoder gets the input; whatever
 * decodes must encode to bytes that decode to an equal record, and encoding
 * that record again must give the same bytes (the encoding is canonical). A
 * failed decode must leave the record zeroed. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "manifest/codec.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_codec: check failed at line %d: %s\n", __LINE__,     \
				#c);                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static bool bufs_eq(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static bool str_in(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static void fuzz_obj(const uint8_t *data, size_t size)
{
	struct obj_record r, r2;
	memset(&r, 0xa5, sizeof(r));
	int rc = codec_obj_decode(data, size, &r);
	if (rc) {
		CHECK(rc == -EPROTO || rc == -ENOTSUP);
		CHECK(all_zero(&r, sizeof(r)));
		return;
	}
	CHECK(r.status < OBJ__COUNT);
	CHECK(obj_status_name(r.status) != NULL);
	CHECK(obj_status_parse(obj_status_name(r.status)) == r.status);
	CHECK(str_in(r.etag, sizeof(r.etag)) && str_in(r.last_error, sizeof(r.last_error)) &&
	      str_in(r.dest_etag, sizeof(r.dest_etag)));
	struct buf e1 = BUF_INIT, e2 = BUF_INIT;
	codec_obj_encode(&r, &e1);
	/* canonical varints are never longer; a version 1 record gains the two
	 * ETag form bytes of version 2 at most */
	CHECK(e1.len <= size + (data[0] == 1 ? 2 : 0));
	memset(&r2, 0x5a, sizeof(r2));
	CHECK(codec_obj_decode(e1.data, e1.len, &r2) == 0);
	CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
	codec_obj_encode(&r2, &e2);
	CHECK(bufs_eq(&e1, &e2));
	buf_release(&e1);
	buf_release(&e2);
}

static bool upload_eq(const struct upload_record *a, const struct upload_record *b)
{
	if (strcmp(a->upload_id, b->upload_id) || strcmp(a->src_etag, b->src_etag) ||
	    a->object_size != b->object_size || a->part_size != b->part_size ||
	    a->part_count != b->part_count || a->created != b->created || a->n_parts != b->n_parts)
		return false;
	for (uint32_t i = 0; i < a->n_parts; i++)
		if (a->parts[i].number != b->parts[i].number ||
		    a->parts[i].size != b->parts[i].size ||
		    strcmp(a->parts[i].etag, b->parts[i].etag))
			return false;
	return true;
}

static void fuzz_upload(const uint8_t *data, size_t size)
{
	struct upload_record r, r2;
	memset(&r, 0xa5, sizeof(r));
	int rc = codec_upload_decode(data, size, &r);
	if (rc) {
		CHECK(rc == -EPROTO || rc == -ENOTSUP);
		CHECK(all_zero(&r, sizeof(r)));
		codec_upload_release(&r);
		return;
	}
	CHECK((r.n_parts == 0) == (r.parts == NULL));
	CHECK(str_in(r.upload_id, sizeof(r.upload_id)) && str_in(r.src_etag, sizeof(r.src_etag)));
	for (uint32_t i = 0; i < r.n_parts; i++)
		CHECK(str_in(r.parts[i].etag, sizeof(r.parts[i].etag)));
	struct buf e1 = BUF_INIT, e2 = BUF_INIT;
	codec_upload_encode(&r, &e1);
	CHECK(e1.len <= size);
	memset(&r2, 0x5a, sizeof(r2));
	CHECK(codec_upload_decode(e1.data, e1.len, &r2) == 0);
	CHECK(upload_eq(&r, &r2));
	codec_upload_encode(&r2, &e2);
	CHECK(bufs_eq(&e1, &e2));
	codec_upload_release(&r);
	codec_upload_release(&r2);
	CHECK(r.parts == NULL && r.n_parts == 0);
	codec_upload_release(&r); /* twice is harmless */
	codec_upload_release(NULL);
	buf_release(&e1);
	buf_release(&e2);
}

static void fuzz_stats(const uint8_t *data, size_t size)
{
	struct task_stats s, s2;
	memset(&s, 0xa5, sizeof(s));
	int rc = codec_stats_decode(data, size, &s);
	if (rc) {
		CHECK(rc == -EPROTO || rc == -ENOTSUP);
		CHECK(all_zero(&s, sizeof(s)));
		return;
	}
	struct buf e1 = BUF_INIT, e2 = BUF_INIT;
	codec_stats_encode(&s, &e1);
	CHECK(e1.len <= size);
	CHECK(codec_stats_decode(e1.data, e1.len, &s2) == 0);
	CHECK(memcmp(&s, &s2, sizeof(s)) == 0);
	codec_stats_encode(&s2, &e2);
	CHECK(bufs_eq(&e1, &e2));
	buf_release(&e1);
	buf_release(&e2);
}

static void fuzz_task(const uint8_t *data, size_t size)
{
	struct task_record t, t2;
	memset(&t, 0xa5, sizeof(t));
	int rc = codec_task_decode(data, size, &t);
	if (rc) {
		CHECK(rc == -EPROTO || rc == -ENOTSUP);
		CHECK(all_zero(&t, sizeof(t)));
		return;
	}
	CHECK(t.dest_listed <= 1);
	CHECK(str_in(t.name, sizeof(t.name)) && str_in(t.src, sizeof(t.src)) &&
	      str_in(t.dst, sizeof(t.dst)) && str_in(t.kind, sizeof(t.kind)) &&
	      str_in(t.state, sizeof(t.state)) && str_in(t.error, sizeof(t.error)));
	/* a version 1 record gets the defaults of the newer fields */
	CHECK(data[0] != 1 ||
	      (t.last_success == 0 && t.last_exit == -1 && !t.error[0] && t.last_run == 0));
	struct buf e1 = BUF_INIT, e2 = BUF_INIT;
	codec_task_encode(&t, &e1);
	CHECK(e1.len <= size + (data[0] == 1 ? 4 : 0)); /* v1 is re-encoded as v2 */
	memset(&t2, 0x5a, sizeof(t2));
	CHECK(codec_task_decode(e1.data, e1.len, &t2) == 0);
	CHECK(memcmp(&t, &t2, sizeof(t)) == 0);
	codec_task_encode(&t2, &e2);
	CHECK(bufs_eq(&e1, &e2));
	buf_release(&e1);
	buf_release(&e2);
}

static void fuzz_run(const uint8_t *data, size_t size)
{
	struct run_record r, r2;
	memset(&r, 0xa5, sizeof(r));
	int rc = codec_run_decode(data, size, &r);
	if (rc) {
		CHECK(rc == -EPROTO || rc == -ENOTSUP);
		CHECK(all_zero(&r, sizeof(r)));
		return;
	}
	CHECK(r.seq == 0 && r.n_errors <= RUN_ERRORS_MAX);
	CHECK(str_in(r.trigger, sizeof(r.trigger)) && str_in(r.result, sizeof(r.result)));
	for (uint32_t i = 0; i < RUN_ERRORS_MAX; i++)
		CHECK(i < r.n_errors ? str_in(r.errors[i], sizeof(r.errors[i]))
				     : all_zero(r.errors[i], sizeof(r.errors[i])));
	struct buf e1 = BUF_INIT, e2 = BUF_INIT;
	codec_run_encode(&r, &e1);
	CHECK(e1.len <= size);
	memset(&r2, 0x5a, sizeof(r2));
	CHECK(codec_run_decode(e1.data, e1.len, &r2) == 0);
	CHECK(memcmp(&r, &r2, sizeof(r)) == 0);
	codec_run_encode(&r2, &e2);
	CHECK(bufs_eq(&e1, &e2));
	buf_release(&e1);
	buf_release(&e2);
}

static void fuzz_taskdef(const uint8_t *data, size_t size)
{
	const void *p = (const void *)1;
	size_t n = 1;
	int rc = codec_taskdef_decode(data, size, &p, &n);
	if (rc) {
		CHECK(rc == -EPROTO || rc == -ENOTSUP);
		CHECK(p == NULL && n == 0);
		return;
	}
	CHECK(size >= 1 && p == data + 1 && n == size - 1);
	struct buf e = BUF_INIT;
	codec_taskdef_encode(p, n, &e);
	CHECK(e.len == size && memcmp(e.data, data, size) == 0);
	buf_release(&e);
}

static void fuzz_run_key(const uint8_t *data, size_t size)
{
	uint32_t id = 1;
	uint64_t seq = 1;
	int rc = codec_run_key_decode(data, size, &id, &seq);
	CHECK(size == CODEC_RUN_KEY_LEN ? rc == 0 : (rc == -EPROTO && id == 0 && seq == 0));
	if (!rc) {
		unsigned char kb[CODEC_RUN_KEY_LEN];
		codec_run_key(id, seq, kb);
		CHECK(memcmp(kb, data, sizeof(kb)) == 0);
	}
}

static void fuzz_key(const uint8_t *data, size_t size)
{
	uint32_t id = 0;
	const char *key = NULL;
	size_t klen = 0;
	int rc = codec_key_decode(data, size, &id, &key, &klen);
	if (size < 4) {
		CHECK(rc == -EPROTO);
		return;
	}
	CHECK(rc == 0);
	CHECK(key == (const char *)data + 4 && klen == size - 4);
	struct buf e = BUF_INIT;
	codec_key_encode(id, key, klen, &e);
	CHECK(e.len == size && memcmp(e.data, data, size) == 0);
	buf_release(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Decoders must not read past len: give them an exact-size heap copy so
	 * ASan sees any overrun (libFuzzer's own buffer is exact too). */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	fuzz_obj(copy, size);
	fuzz_upload(copy, size);
	fuzz_stats(copy, size);
	fuzz_task(copy, size);
	fuzz_run(copy, size);
	fuzz_taskdef(copy, size);
	fuzz_key(copy, size);
	fuzz_run_key(copy, size);
	/* status names */
	char name[16];
	size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
	memcpy(name, copy, n);
	name[n] = '\0';
	int st = obj_status_parse(name);
	CHECK(st == -1 || (st >= 0 && st < OBJ__COUNT && strcmp(obj_status_name(st), name) == 0));
	if (size)
		CHECK(obj_status_name((int8_t)copy[0]) == NULL ||
		      ((int8_t)copy[0] >= 0 && (int8_t)copy[0] < OBJ__COUNT));
	free(copy);
	return 0;
}
