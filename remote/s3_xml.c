#include "common/compat.h"

#include "remote/s3_xml.h"

#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/uri.h"

/* Depth of the names we remember (root = 1). Every field we read sits at depth 4
 * or less (Tagging/TagSet/Tag/Key is the deepest). */
#define NAMES_DEPTH  4
#define NAME_MAX_LEN 40

enum field {
	F_NONE = 0,
	F_ERR_CODE,
	F_ERR_MESSAGE,
	F_ERR_REQID,
	F_TRUNCATED,
	F_ENCODING,
	F_NEXT_MARKER,
	F_NEXT_UPLOAD_ID,
	F_UPLOAD_ID,
	F_ETAG,
	F_LASTMOD,
	F_ITEM_KEY,
	F_ITEM_VALUE,
	F_ITEM_SIZE,
	F_ITEM_ETAG,
	F_ITEM_TIME,
	F_ITEM_SC,
	F_ITEM_PARTNO,
};

enum container { C_NONE = 0, C_CONTENTS, C_PREFIX, C_PART, C_UPLOAD, C_TAG, C_BUCKET };

struct s3_xml {
	XML_Parser p;
	struct s3_xml_doc doc;
	int err;
	char msg[256];
	unsigned depth;
	char names[NAMES_DEPTH][NAME_MAX_LEN];
	enum field field;
	unsigned field_depth;
	struct buf text;
	enum container cont;
	unsigned cont_depth;
	size_t cont_idx;
	size_t cap_items, cap_prefixes;
	size_t bytes;
	bool finished;
};

static void fail(struct s3_xml *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct s3_xml *x, const char *fmt, ...)
{
	if (x->err)
		return;
	x->err = -EPROTO;
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
	XML_StopParser(x->p, XML_FALSE);
}

static const char *local_name(const char *name)
{
	const char *c = strrchr(name, ':');
	return c ? c + 1 : name;
}

static enum s3_xml_root root_of(const char *n)
{
	static const struct {
		const char *name;
		enum s3_xml_root root;
	} roots[] = {
	    {"Error", S3_XML_ERROR},
	    {"ListBucketResult", S3_XML_LIST_BUCKET},
	    {"InitiateMultipartUploadResult", S3_XML_INITIATE_MPU},
	    {"CompleteMultipartUploadResult", S3_XML_COMPLETE_MPU},
	    {"CopyObjectResult", S3_XML_COPY_OBJECT},
	    {"CopyPartResult", S3_XML_COPY_PART},
	    {"ListPartsResult", S3_XML_LIST_PARTS},
	    {"ListMultipartUploadsResult", S3_XML_LIST_UPLOADS},
	    {"Tagging", S3_XML_TAGGING},
	    {"ListAllMyBucketsResult", S3_XML_LIST_BUCKETS},
	};
	for (size_t i = 0; i < ARRAY_SIZE(roots); i++)
		if (strcmp(n, roots[i].name) == 0)
			return roots[i].root;
	return S3_XML_UNKNOWN;
}

/* Field for a child of the root element. */
static enum field top_field(enum s3_xml_root r, const char *n)
{
	switch (r) {
	case S3_XML_ERROR:
		if (strcmp(n, "Code") == 0)
			return F_ERR_CODE;
		if (strcmp(n, "Message") == 0)
			return F_ERR_MESSAGE;
		if (strcmp(n, "RequestId") == 0)
			return F_ERR_REQID;
		return F_NONE;
	case S3_XML_LIST_BUCKET:
		if (strcmp(n, "IsTruncated") == 0)
			return F_TRUNCATED;
		if (strcmp(n, "NextContinuationToken") == 0)
			return F_NEXT_MARKER;
		if (strcmp(n, "EncodingType") == 0)
			return F_ENCODING;
		return F_NONE;
	case S3_XML_INITIATE_MPU:
		return strcmp(n, "UploadId") == 0 ? F_UPLOAD_ID : F_NONE;
	case S3_XML_COMPLETE_MPU:
		return strcmp(n, "ETag") == 0 ? F_ETAG : F_NONE;
	case S3_XML_COPY_OBJECT:
	case S3_XML_COPY_PART:
		if (strcmp(n, "ETag") == 0)
			return F_ETAG;
		if (strcmp(n, "LastModified") == 0)
			return F_LASTMOD;
		return F_NONE;
	case S3_XML_LIST_PARTS:
		if (strcmp(n, "IsTruncated") == 0)
			return F_TRUNCATED;
		if (strcmp(n, "NextPartNumberMarker") == 0)
			return F_NEXT_MARKER;
		return F_NONE;
	case S3_XML_LIST_UPLOADS:
		if (strcmp(n, "IsTruncated") == 0)
			return F_TRUNCATED;
		if (strcmp(n, "NextKeyMarker") == 0)
			return F_NEXT_MARKER;
		if (strcmp(n, "NextUploadIdMarker") == 0)
			return F_NEXT_UPLOAD_ID;
		if (strcmp(n, "EncodingType") == 0)
			return F_ENCODING;
		return F_NONE;
	default:
		return F_NONE;
	}
}

/* Field for a child of a repeated element. */
static enum field item_field(enum container c, const char *n)
{
	switch (c) {
	case C_CONTENTS:
		if (strcmp(n, "Key") == 0)
			return F_ITEM_KEY;
		if (strcmp(n, "Size") == 0)
			return F_ITEM_SIZE;
		if (strcmp(n, "ETag") == 0)
			return F_ITEM_ETAG;
		if (strcmp(n, "LastModified") == 0)
			return F_ITEM_TIME;
		if (strcmp(n, "StorageClass") == 0)
			return F_ITEM_SC;
		return F_NONE;
	case C_PREFIX:
		return strcmp(n, "Prefix") == 0 ? F_ITEM_KEY : F_NONE;
	case C_PART:
		if (strcmp(n, "PartNumber") == 0)
			return F_ITEM_PARTNO;
		if (strcmp(n, "ETag") == 0)
			return F_ITEM_ETAG;
		if (strcmp(n, "Size") == 0)
			return F_ITEM_SIZE;
		if (strcmp(n, "LastModified") == 0)
			return F_ITEM_TIME;
		return F_NONE;
	case C_UPLOAD:
		if (strcmp(n, "Key") == 0)
			return F_ITEM_KEY;
		if (strcmp(n, "UploadId") == 0)
			return F_ITEM_VALUE;
		if (strcmp(n, "Initiated") == 0)
			return F_ITEM_TIME;
		if (strcmp(n, "StorageClass") == 0)
			return F_ITEM_SC;
		return F_NONE;
	case C_TAG:
		if (strcmp(n, "Key") == 0)
			return F_ITEM_KEY;
		if (strcmp(n, "Value") == 0)
			return F_ITEM_VALUE;
		return F_NONE;
	case C_BUCKET:
		return strcmp(n, "Name") == 0 ? F_ITEM_KEY : F_NONE;
	default:
		return F_NONE;
	}
}

static struct s3_xml_item *cur_item(struct s3_xml *x)
{
	if (x->cont == C_NONE)
		return NULL;
	if (x->cont == C_PREFIX)
		return &x->doc.prefixes[x->cont_idx];
	return &x->doc.items[x->cont_idx];
}

static void begin_item(struct s3_xml *x, enum container c)
{
	struct s3_xml_doc *d = &x->doc;
	if (d->n_items + d->n_prefixes >= S3_XML_ITEMS_MAX) {
		fail(x, "xml: more than %d entries in one document", S3_XML_ITEMS_MAX);
		return;
	}
	struct s3_xml_item **arr = c == C_PREFIX ? &d->prefixes : &d->items;
	size_t *n = c == C_PREFIX ? &d->n_prefixes : &d->n_items;
	size_t *cap = c == C_PREFIX ? &x->cap_prefixes : &x->cap_items;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*arr = xrealloc(*arr, *cap * sizeof(**arr));
	}
	memset(&(*arr)[*n], 0, sizeof(**arr));
	(*arr)[*n].is_prefix = c == C_PREFIX;
	x->cont = c;
	x->cont_idx = (*n)++;
	x->cont_depth = x->depth;
}

static void end_item(struct s3_xml *x)
{
	struct s3_xml_item *it = cur_item(x);
	switch (x->cont) {
	case C_CONTENTS:
		if (!it->key)
			fail(x, "xml: Contents without a Key");
		break;
	case C_PREFIX:
		if (!it->key)
			fail(x, "xml: CommonPrefixes without a Prefix");
		break;
	case C_PART:
		if (it->part_number == 0)
			fail(x, "xml: Part without a PartNumber");
		break;
	case C_UPLOAD:
		if (!it->key || !it->value)
			fail(x, "xml: Upload without a Key or UploadId");
		break;
	case C_TAG:
		if (!it->key)
			fail(x, "xml: Tag without a Key");
		else if (!it->value) {
			it->value = xstrdup("");
			it->value_len = 0;
		}
		break;
	case C_BUCKET:
		if (!it->key)
			fail(x, "xml: Bucket without a Name");
		break;
	default:
		break;
	}
	x->cont = C_NONE;
}

static bool account(struct s3_xml *x, size_t len)
{
	x->bytes += len;
	if (x->bytes > S3_XML_BYTES_MAX) {
		fail(x, "xml: document larger than %d bytes", S3_XML_BYTES_MAX);
		return false;
	}
	return true;
}

static char *dup_text(struct s3_xml *x, size_t *len)
{
	if (!account(x, x->text.len + 1))
		return NULL;
	if (len)
		*len = x->text.len;
	return xstrndup(x->text.data ? x->text.data : "", x->text.len);
}

/* Text of a scalar field with surrounding white space removed (in place). */
static const char *trimmed(struct s3_xml *x)
{
	char *s = x->text.data ? x->text.data : (char *)"";
	size_t n = x->text.len;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	if (x->text.data)
		s[n] = '\0';
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return s;
}

static void set_str(struct s3_xml *x, char **dst, size_t *dlen)
{
	size_t len = 0;
	char *s = dup_text(x, &len);
	if (!s)
		return;
	free(*dst);
	*dst = s;
	if (dlen)
		*dlen = len;
}

static void apply_field(struct s3_xml *x)
{
	struct s3_xml_doc *d = &x->doc;
	struct s3_xml_item *it = cur_item(x);
	const char *t;
	uint64_t v;

	switch (x->field) {
	case F_ERR_CODE:
		str_copy_msg(d->code, trimmed(x), sizeof(d->code));
		break;
	case F_ERR_MESSAGE:
		set_str(x, &d->message, NULL);
		break;
	case F_ERR_REQID:
		str_copy_msg(d->request_id, trimmed(x), sizeof(d->request_id));
		break;
	case F_TRUNCATED:
		t = trimmed(x);
		if (d->has_truncated)
			fail(x, "xml: IsTruncated appears twice");
		else if (strcmp(t, "true") == 0)
			d->is_truncated = true;
		else if (strcmp(t, "false") == 0)
			d->is_truncated = false;
		else
			fail(x, "xml: IsTruncated is neither true nor false");
		d->has_truncated = true;
		break;
	case F_ENCODING:
		d->url_encoded = str_ieq(trimmed(x), "url");
		break;
	case F_NEXT_MARKER:
		set_str(x, &d->next_marker, NULL);
		break;
	case F_NEXT_UPLOAD_ID:
		set_str(x, &d->next_upload_id_marker, NULL);
		break;
	case F_UPLOAD_ID:
		set_str(x, &d->upload_id, NULL);
		break;
	case F_ETAG:
		if (s3_xml_etag(x->text.data ? x->text.data : "", x->text.len, d->etag) != 0)
			fail(x, "xml: ETag too long");
		break;
	case F_LASTMOD:
		if (s3_xml_parse_time(trimmed(x), &d->last_modified) != 0)
			fail(x, "xml: bad LastModified date");
		break;
	case F_ITEM_KEY:
		set_str(x, &it->key, &it->key_len);
		break;
	case F_ITEM_VALUE:
		set_str(x, &it->value, &it->value_len);
		break;
	case F_ITEM_SIZE:
		if (parse_u64(trimmed(x), &v) != 0)
			fail(x, "xml: bad Size");
		else
			it->size = v;
		break;
	case F_ITEM_ETAG:
		if (s3_xml_etag(x->text.data ? x->text.data : "", x->text.len, it->etag) != 0)
			fail(x, "xml: ETag too long");
		break;
	case F_ITEM_TIME:
		if (s3_xml_parse_time(trimmed(x), &it->time) != 0)
			fail(x, "xml: bad date");
		break;
	case F_ITEM_SC:
		if (str_copy(it->storage_class, trimmed(x), sizeof(it->storage_class)))
			fail(x, "xml: a storage class too long");
		break;
	case F_ITEM_PARTNO:
		if (parse_u64(trimmed(x), &v) != 0 || v == 0 || v > 100000)
			fail(x, "xml: bad PartNumber");
		else
			it->part_number = (unsigned)v;
		break;
	default:
		break;
	}
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	(void)atts;
	struct s3_xml *x = ud;
	if (x->err)
		return;
	if (++x->depth > S3_XML_DEPTH_MAX) {
		fail(x, "xml: elements nested deeper than %d", S3_XML_DEPTH_MAX);
		return;
	}
	const char *n = local_name(name);
	unsigned d = x->depth;
	if (d <= NAMES_DEPTH) {
		if (strlen(n) < NAME_MAX_LEN)
			str_copy_fit(x->names[d - 1], n, NAME_MAX_LEN);
		else
			x->names[d - 1][0] = '\0';
	}
	if (x->field != F_NONE)
		return; /* markup inside a field we read: ignored */
	enum s3_xml_root r = x->doc.root;
	if (d == 1) {
		x->doc.root = root_of(n);
		return;
	}
	enum field f = F_NONE;
	if (d == 2) {
		if (r == S3_XML_LIST_BUCKET && strcmp(n, "Contents") == 0)
			begin_item(x, C_CONTENTS);
		else if (r == S3_XML_LIST_BUCKET && strcmp(n, "CommonPrefixes") == 0)
			begin_item(x, C_PREFIX);
		else if (r == S3_XML_LIST_PARTS && strcmp(n, "Part") == 0)
			begin_item(x, C_PART);
		else if (r == S3_XML_LIST_UPLOADS && strcmp(n, "Upload") == 0)
			begin_item(x, C_UPLOAD);
		else
			f = top_field(r, n);
	} else if (d == 3 && r == S3_XML_TAGGING && strcmp(x->names[1], "TagSet") == 0) {
		if (strcmp(n, "Tag") == 0)
			begin_item(x, C_TAG);
	} else if (d == 3 && r == S3_XML_LIST_BUCKETS && strcmp(x->names[1], "Buckets") == 0) {
		if (strcmp(n, "Bucket") == 0)
			begin_item(x, C_BUCKET);
	} else if (x->cont != C_NONE && d == x->cont_depth + 1) {
		f = item_field(x->cont, n);
	}
	if (f != F_NONE) {
		x->field = f;
		x->field_depth = d;
		buf_reset(&x->text);
	}
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	(void)name;
	struct s3_xml *x = ud;
	if (x->err)
		return;
	if (x->field != F_NONE && x->depth == x->field_depth) {
		apply_field(x);
		x->field = F_NONE;
	} else if (x->field == F_NONE && x->cont != C_NONE && x->depth == x->cont_depth) {
		end_item(x);
	}
	x->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct s3_xml *x = ud;
	if (x->err || x->field == F_NONE || x->depth != x->field_depth || len <= 0)
		return;
	if (x->text.len + (size_t)len > S3_XML_TEXT_MAX) {
		fail(x, "xml: element text longer than %d bytes", S3_XML_TEXT_MAX);
		return;
	}
	buf_add(&x->text, s, (size_t)len);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	fail(ud, "xml: document type declarations are not accepted");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name;
	(void)is_param;
	(void)value;
	(void)value_len;
	(void)base;
	(void)sysid;
	(void)pubid;
	(void)notation;
	fail(ud, "xml: entity declarations are not accepted");
}

struct s3_xml *s3_xml_new(void)
{
	struct s3_xml *x = xcalloc(1, sizeof(*x));
	x->p = XML_ParserCreate("UTF-8");
	if (!x->p) {
		fprintf(stderr, "dth: out of memory\n");
		abort();
	}
	buf_init(&x->text);
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	XML_SetEntityDeclHandler(x->p, on_entity);
	XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
	return x;
}

void s3_xml_doc_release(struct s3_xml_doc *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_items; i++) {
		free(d->items[i].key);
		free(d->items[i].value);
	}
	for (size_t i = 0; i < d->n_prefixes; i++) {
		free(d->prefixes[i].key);
		free(d->prefixes[i].value);
	}
	free(d->items);
	free(d->prefixes);
	free(d->message);
	free(d->next_marker);
	free(d->next_upload_id_marker);
	free(d->upload_id);
	memset(d, 0, sizeof(*d));
}

void s3_xml_free(struct s3_xml *x)
{
	if (!x)
		return;
	XML_ParserFree(x->p);
	s3_xml_doc_release(&x->doc);
	buf_release(&x->text);
	free(x);
}

static void expat_fail(struct s3_xml *x)
{
	if (x->err)
		return;
	enum XML_Error e = XML_GetErrorCode(x->p);
	x->err = -EPROTO;
	msg_snprintf(x->msg, sizeof(x->msg), "xml: %s at line %lu", XML_ErrorString(e),
		     (unsigned long)XML_GetCurrentLineNumber(x->p));
}

int s3_xml_feed(struct s3_xml *x, const void *data, size_t len)
{
	if (x->err)
		return x->err;
	if (x->finished) {
		x->err = -EPROTO;
		str_copy_fit(x->msg, "xml: data after the end of the document", sizeof(x->msg));
		return x->err;
	}
	const char *p = data;
	while (len > 0) {
		int n = len > (1u << 30) ? (1 << 30) : (int)len;
		if (XML_Parse(x->p, p, n, XML_FALSE) != XML_STATUS_OK) {
			expat_fail(x);
			return x->err;
		}
		if (x->err)
			return x->err;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int s3_xml_sink(void *ctx, const void *data, size_t len)
{
	return s3_xml_feed(ctx, data, len);
}

/* Undo the url encoding of *s in place; *len gets the decoded length. A field
 * without len is kept as a C string, so a NUL in it is refused. */
static int decode_field(struct s3_xml *x, char **s, size_t *len)
{
	if (!*s)
		return 0;
	struct buf b = BUF_INIT;
	if (s3_xml_url_decode(&b, *s, strlen(*s)) != 0) {
		buf_release(&b);
		fail(x, "xml: bad percent-encoding in a url-encoded key");
		return x->err;
	}
	if (!len && memchr(b.data ? b.data : "", '\0', b.len)) {
		buf_release(&b);
		fail(x, "xml: a url-encoded marker holds a NUL byte");
		return x->err;
	}
	free(*s);
	*s = buf_detach(&b, len);
	return 0;
}

int s3_xml_finish(struct s3_xml *x)
{
	if (x->err)
		return x->err;
	if (x->finished)
		return 0;
	if (XML_Parse(x->p, NULL, 0, XML_TRUE) != XML_STATUS_OK) {
		expat_fail(x);
		return x->err;
	}
	if (x->err)
		return x->err;
	x->finished = true;
	struct s3_xml_doc *d = &x->doc;
	if (d->url_encoded && (d->root == S3_XML_LIST_BUCKET || d->root == S3_XML_LIST_UPLOADS)) {
		for (size_t i = 0; i < d->n_items; i++)
			if (decode_field(x, &d->items[i].key, &d->items[i].key_len) != 0)
				return x->err;
		for (size_t i = 0; i < d->n_prefixes; i++)
			if (decode_field(x, &d->prefixes[i].key, &d->prefixes[i].key_len) != 0)
				return x->err;
		if (d->root == S3_XML_LIST_UPLOADS && decode_field(x, &d->next_marker, NULL) != 0)
			return x->err;
	}
	if (!d->message)
		d->message = xstrdup("");
	return 0;
}

const char *s3_xml_message(const struct s3_xml *x)
{
	return x->msg;
}

const struct s3_xml_doc *s3_xml_get(const struct s3_xml *x)
{
	return &x->doc;
}

void s3_xml_take(struct s3_xml *x, struct s3_xml_doc *out)
{
	*out = x->doc;
	memset(&x->doc, 0, sizeof(x->doc));
	x->cap_items = x->cap_prefixes = 0;
	x->cont = C_NONE;
}

int s3_xml_parse(const void *data, size_t len, struct s3_xml_doc *out, char *msg, size_t msgsz)
{
	memset(out, 0, sizeof(*out));
	struct s3_xml *x = s3_xml_new();
	int rc = s3_xml_feed(x, data, len);
	if (rc == 0)
		rc = s3_xml_finish(x);
	if (rc == 0)
		s3_xml_take(x, out);
	if (msg && msgsz)
		str_copy_msg(msg, x->msg, msgsz);
	s3_xml_free(x);
	return rc;
}

/* Helpers. */

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int s3_xml_parse_time(const char *s, int64_t *out)
{
	int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;
	if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
		return -EINVAL;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.' || *p == ',') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		p++;
		if (digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om))
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
	}
	if (*p != '\0')
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	*out = (int64_t)t - (int64_t)sign * (oh * 3600 + om * 60);
	return 0;
}

int s3_xml_etag(const char *s, size_t len, char out[S3_ETAG_MAX])
{
	out[0] = '\0';
	while (len && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
		       s[len - 1] == '\n'))
		len--;
	if (len >= 6 && memcmp(s, "&quot;", 6) == 0) {
		s += 6;
		len -= 6;
	} else if (len && *s == '"') {
		s++;
		len--;
	}
	if (len >= 6 && memcmp(s + len - 6, "&quot;", 6) == 0)
		len -= 6;
	else if (len && s[len - 1] == '"')
		len--;
	if (len >= S3_ETAG_MAX)
		return -EINVAL;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int s3_xml_url_decode(struct buf *out, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '+') {
			int rc = uri_decode(out, s + start, i - start);
			if (rc != 0)
				return rc;
			if (i < len)
				buf_addch(out, ' ');
			start = i + 1;
		}
	}
	return 0;
}

void s3_xml_escape(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '&':
			buf_adds(out, "&amp;");
			break;
		case '<':
			buf_adds(out, "&lt;");
			break;
		case '>':
			buf_adds(out, "&gt;");
			break;
		case '"':
			buf_adds(out, "&quot;");
			break;
		case '\'':
			buf_adds(out, "&apos;");
			break;
		case '\r':
			buf_adds(out, "&#13;");
			break;
		default:
			buf_addch(out, s[i]);
		}
	}
}
