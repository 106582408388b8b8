/* Fuzz target for remote/s3_xml.h: the input is fed to the streaming parser in
 * pseudo-random chunks (derived from the input, so a run is reproducible) and
 * to the one-shot parser; both must agree, and a parsed document must be
 * self-consistent. The helpers (time, ETag, url decoding, escaping) get the
 * input too, and two round trips are checked: a value escaped with
 * s3_xml_escape into a Tagging document, and a key percent-encoded into a
 * url-encoded listing, must come back byte for byte. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "remote/s3_xml.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_s3_xml: check failed at line %d: %s\n", __LINE__,    \
				#c);                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static uint64_t fnv1a(const uint8_t *d, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= d[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static bool str_eq_opt(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool bytes_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (!a || !b)
		return a == b && alen == blen;
	return alen == blen && memcmp(a, b, alen) == 0;
}

static void check_item(const struct s3_xml_item *it)
{
	if (it->key)
		CHECK(it->key[it->key_len] == '\0');
	if (it->value)
		CHECK(it->value[it->value_len] == '\0');
	CHECK(strlen(it->etag) < S3_ETAG_MAX);
	CHECK(strlen(it->storage_class) < sizeof(it->storage_class));
}

static void check_doc(const struct s3_xml_doc *d)
{
	CHECK(d->message != NULL);
	CHECK(strlen(d->code) < sizeof(d->code));
	CHECK(strlen(d->request_id) < sizeof(d->request_id));
	CHECK(strlen(d->etag) < S3_ETAG_MAX);
	CHECK(d->n_items + d->n_prefixes <= S3_XML_ITEMS_MAX);
	CHECK(d->n_items == 0 || d->items != NULL);
	CHECK(d->n_prefixes == 0 || d->prefixes != NULL);
	for (size_t i = 0; i < d->n_items; i++) {
		check_item(&d->items[i]);
		CHECK(!d->items[i].is_prefix);
	}
	for (size_t i = 0; i < d->n_prefixes; i++) {
		check_item(&d->prefixes[i]);
		CHECK(d->prefixes[i].is_prefix);
		CHECK(d->prefixes[i].key != NULL);
	}
	if (d->root == S3_XML_LIST_BUCKET)
		for (size_t i = 0; i < d->n_items; i++)
			CHECK(d->items[i].key != NULL);
	if (d->root == S3_XML_LIST_PARTS)
		for (size_t i = 0; i < d->n_items; i++)
			CHECK(d->items[i].part_number > 0);
}

static bool item_eq(const struct s3_xml_item *a, const struct s3_xml_item *b)
{
	return bytes_eq(a->key, a->key_len, b->key, b->key_len) &&
	       bytes_eq(a->value, a->value_len, b->value, b->value_len) && a->size == b->size &&
	       a->part_number == b->part_number && strcmp(a->etag, b->etag) == 0 &&
	       a->time == b->time && strcmp(a->storage_class, b->storage_class) == 0 &&
	       a->is_prefix == b->is_prefix;
}

static bool doc_eq(const struct s3_xml_doc *a, const struct s3_xml_doc *b)
{
	if (a->root != b->root || strcmp(a->code, b->code) != 0 ||
	    !str_eq_opt(a->message, b->message) || strcmp(a->request_id, b->request_id) != 0 ||
	    a->is_truncated != b->is_truncated || a->url_encoded != b->url_encoded ||
	    !str_eq_opt(a->next_marker, b->next_marker) ||
	    !str_eq_opt(a->next_upload_id_marker, b->next_upload_id_marker) ||
	    !str_eq_opt(a->upload_id, b->upload_id) || strcmp(a->etag, b->etag) != 0 ||
	    a->last_modified != b->last_modified || a->n_items != b->n_items ||
	    a->n_prefixes != b->n_prefixes)
		return false;
	for (size_t i = 0; i < a->n_items; i++)
		if (!item_eq(&a->items[i], &b->items[i]))
			return false;
	for (size_t i = 0; i < a->n_prefixes; i++)
		if (!item_eq(&a->prefixes[i], &b->prefixes[i]))
			return false;
	return true;
}

/* Streaming and one-shot parses of the whole input must agree. */
static void parse_both_ways(const uint8_t *data, size_t size)
{
	struct s3_xml_doc one;
	char msg[256];
	int rc1 = s3_xml_parse(data, size, &one, msg, sizeof(msg));
	if (rc1 == 0)
		check_doc(&one);
	else
		CHECK(msg[0] != '\0');

	uint64_t seed = fnv1a(data, size) | 1;
	struct s3_xml *x = s3_xml_new();
	size_t off = 0;
	int rc2 = 0;
	while (off < size && rc2 == 0) {
		uint64_t r = next_rand(&seed);
		size_t n;
		switch (r % 4) {
		case 0:
			n = 1;
			break;
		case 1:
			n = (size_t)(r >> 8) % 7;
			break;
		case 2:
			n = (size_t)(r >> 8) % 64;
			break;
		default:
			n = (size_t)(r >> 8) % 1024;
			break;
		}
		if (n > size - off)
			n = size - off;
		/* both entry points, and zero-length chunks now and then */
		rc2 = (r & 0x100) ? s3_xml_sink(x, data + off, n) : s3_xml_feed(x, data + off, n);
		off += n;
	}
	if (rc2 == 0)
		rc2 = s3_xml_finish(x);
	if (rc2 == 0) {
		CHECK(s3_xml_finish(x) == 0);
		CHECK(s3_xml_message(x)[0] == '\0');
		/* nothing may follow the end */
		CHECK(s3_xml_feed(x, "<a/>", 4) != 0);
	} else {
		CHECK(s3_xml_message(x)[0] != '\0');
		/* an error sticks */
		CHECK(s3_xml_feed(x, "x", 1) == rc2);
		CHECK(s3_xml_finish(x) == rc2);
	}
	if (rc1 != rc2) {
		fprintf(stderr, "fuzz_s3_xml: one-shot %d (%s) but chunked %d (%s)\n", rc1, msg,
			rc2, s3_xml_message(x));
		abort();
	}
	if (rc2 == 0) {
		/* s3_xml_get and s3_xml_take see the same document */
		const struct s3_xml_doc *g = s3_xml_get(x);
		CHECK(doc_eq(g, &one));
		struct s3_xml_doc two;
		s3_xml_take(x, &two);
		CHECK(doc_eq(&two, &one));
		CHECK(s3_xml_get(x)->n_items == 0 && s3_xml_get(x)->items == NULL);
		s3_xml_doc_release(&two);
		CHECK(two.items == NULL && two.message == NULL && two.n_items == 0);
		s3_xml_doc_release(&one);
	}
	s3_xml_free(x);
}

static void helpers(const uint8_t *data, size_t size)
{
	/* time: as a C string */
	char s[96];
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, n);
	s[n] = '\0';
	int64_t t = 0;
	(void)!s3_xml_parse_time(s, &t);

	/* etag: bounded, unquoted */
	char etag[S3_ETAG_MAX];
	if (s3_xml_etag((const char *)data, size, etag) == 0) {
		CHECK(strlen(etag) < S3_ETAG_MAX);
		CHECK(strlen(etag) <= size);
	} else {
		CHECK(etag[0] == '\0');
	}

	/* url decoding: never longer than its input; identity without % and + */
	struct buf b = BUF_INIT;
	buf_adds(&b, "pre");
	int rc = s3_xml_url_decode(&b, (const char *)data, size);
	if (rc == 0) {
		CHECK(b.len >= 3 && b.len <= 3 + size);
		CHECK(memcmp(b.data, "pre", 3) == 0);
		if (!memchr(data, '%', size) && !memchr(data, '+', size))
			CHECK(b.len == 3 + size && memcmp(b.data + 3, data, size) == 0);
	} else {
		CHECK(memchr(data, '%', size) != NULL);
	}
	buf_release(&b);

	/* escaping: no markup character survives */
	buf_init(&b);
	s3_xml_escape(&b, (const char *)data, size);
	CHECK(b.len >= size);
	for (size_t i = 0; i < b.len; i++) {
		char c = b.data[i];
		CHECK(c != '<' && c != '>' && c != '"' && c != '\'' && c != '\r');
		if (c == '&')
			CHECK(memchr(b.data + i, ';', b.len - i) != NULL);
	}
	buf_release(&b);
}

/* Bytes XML 1.0 carries as they are (with \r escaped by s3_xml_escape). */
static bool plain_ascii(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((d[i] >= 0x20 && d[i] < 0x7f) || d[i] == '\t' || d[i] == '\n' ||
		      d[i] == '\r'))
			return false;
	return true;
}

static bool no_c0(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (d[i] < 0x20 && d[i] != '\t' && d[i] != '\n' && d[i] != '\r')
			return false;
	return true;
}

/* A tag key and value escaped into a Tagging document come back unchanged. */
static void escape_roundtrip(const uint8_t *data, size_t size)
{
	if (size > 30000)
		return;
	size_t half = size / 2;
	const char *k = (const char *)data, *v = (const char *)data + half;
	size_t klen = half, vlen = size - half;
	bool must = plain_ascii(data, size);
	bool may = must || (utf8_valid((const char *)data, size) && no_c0(data, size));
	if (!may)
		return;
	struct buf doc = BUF_INIT;
	buf_adds(&doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging xmlns=\"http://s3."
		       "amazonaws.com/doc/2006-03-01/\"><TagSet><Tag><Key>");
	s3_xml_escape(&doc, k, klen);
	buf_adds(&doc, "</Key><Value>");
	s3_xml_escape(&doc, v, vlen);
	buf_adds(&doc, "</Value></Tag></TagSet></Tagging>");
	struct s3_xml_doc d;
	char msg[256];
	int rc = s3_xml_parse(doc.data, doc.len, &d, msg, sizeof(msg));
	if (must && rc != 0) {
		fprintf(stderr, "fuzz_s3_xml: escaped tag rejected: %s\n", msg);
		abort();
	}
	if (rc == 0) {
		CHECK(d.root == S3_XML_TAGGING);
		CHECK(d.n_items == 1);
		CHECK(bytes_eq(d.items[0].key, d.items[0].key_len, k, klen));
		CHECK(bytes_eq(d.items[0].value, d.items[0].value_len, v, vlen));
		s3_xml_doc_release(&d);
	}
	buf_release(&doc);
}

static void url_encode_s3(struct buf *out, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		uint8_t c = s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
			buf_addch(out, (char)c);
		} else if (c == ' ') {
			buf_addch(out, '+');
		} else {
			buf_addch(out, '%');
			buf_addch(out, hex[c >> 4]);
			/* lowercase hex now and then: both are valid */
			buf_addch(out, (i & 1) ? hex[c & 15] : "0123456789abcdef"[c & 15]);
		}
	}
}

/* Any bytes (NUL included) percent-encoded in a url-encoded listing, as a
 * Contents Key and a CommonPrefixes Prefix, come back unchanged. */
static void url_roundtrip(const uint8_t *data, size_t size)
{
	if (size > 8000)
		return;
	struct buf doc = BUF_INIT;
	buf_adds(&doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
		       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
		       "<Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
		       "<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
		       "<Contents><Key>");
	url_encode_s3(&doc, data, size);
	buf_adds(&doc, "</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>"
		       "<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>");
	buf_addf(&doc, "%zu", size);
	buf_adds(&doc, "</Size><StorageClass>STANDARD</StorageClass></Contents>"
		       "<CommonPrefixes><Prefix>");
	url_encode_s3(&doc, data, size);
	buf_adds(&doc, "</Prefix></CommonPrefixes></ListBucketResult>");
	struct s3_xml_doc d;
	char msg[256];
	int rc = s3_xml_parse(doc.data, doc.len, &d, msg, sizeof(msg));
	if (rc != 0) {
		fprintf(stderr, "fuzz_s3_xml: url-encoded listing rejected: %s\n", msg);
		abort();
	}
	CHECK(d.root == S3_XML_LIST_BUCKET && d.url_encoded && !d.is_truncated);
	CHECK(d.n_items == 1 && d.n_prefixes == 1);
	CHECK(bytes_eq(d.items[0].key, d.items[0].key_len, (const char *)data, size));
	CHECK(bytes_eq(d.prefixes[0].key, d.prefixes[0].key_len, (const char *)data, size));
	CHECK(d.items[0].size == size);
	CHECK(strcmp(d.items[0].etag, "0123456789abcdef0123456789abcdef") == 0);
	CHECK(d.items[0].time == 1704164645);
	s3_xml_doc_release(&d);
	buf_release(&doc);
}

/* The same bytes as an Upload's Key and as NextKeyMarker of a url-encoded
 * ListMultipartUploadsResult: the key comes back unchanged, and so does the
 * marker (a C string), or the page is refused when the marker cannot be one
 * (it holds a NUL): a marker cut short would restart the listing elsewhere. */
static void uploads_roundtrip(const uint8_t *data, size_t size)
{
	if (size > 8000)
		return;
	struct buf doc = BUF_INIT;
	buf_adds(&doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult "
		       "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket>"
		       "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker>");
	url_encode_s3(&doc, data, size);
	buf_adds(&doc, "</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
		       "<EncodingType>url</EncodingType><MaxUploads>1</MaxUploads>"
		       "<IsTruncated>true</IsTruncated><Upload><Key>");
	url_encode_s3(&doc, data, size);
	buf_adds(&doc, "</Key><UploadId>u2</UploadId><StorageClass>STANDARD</StorageClass>"
		       "<Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload>"
		       "</ListMultipartUploadsResult>");
	struct s3_xml_doc d;
	char msg[256];
	int rc = s3_xml_parse(doc.data, doc.len, &d, msg, sizeof(msg));
	bool has_nul = memchr(data, '\0', size) != NULL;
	if (rc != 0) {
		if (!has_nul) {
			fprintf(stderr, "fuzz_s3_xml: url-encoded uploads page rejected: %s\n",
				msg);
			abort();
		}
		buf_release(&doc);
		return;
	}
	CHECK(d.root == S3_XML_LIST_UPLOADS && d.url_encoded && d.is_truncated);
	CHECK(d.n_items == 1);
	CHECK(bytes_eq(d.items[0].key, d.items[0].key_len, (const char *)data, size));
	CHECK(bytes_eq(d.items[0].value, d.items[0].value_len, "u2", 2));
	CHECK(d.next_marker && strlen(d.next_marker) == size &&
	      memcmp(d.next_marker, data, size) == 0);
	CHECK(d.next_upload_id_marker && strcmp(d.next_upload_id_marker, "u2") == 0);
	s3_xml_doc_release(&d);
	buf_release(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_both_ways(data, size);
	helpers(data, size);
	escape_roundtrip(data, size);
	url_roundtrip(data, size);
	uploads_roundtrip(data, size);
	return 0;
}
