/* Streaming parsers (expat) for the XML documents S3 answers with, and the few
 * helpers the S3 client needs to read and write them. Feed the body in chunks
 * as it arrives (s3_xml_feed, or s3_xml_sink as an http sink), then call
 * s3_xml_finish; the parser recognises the document by its root element and
 * fills one struct s3_xml_doc. Hostile input (malformed XML, a DOCTYPE or any
 * entity declaration, element text over S3_XML_TEXT_MAX, nesting deeper than
 * S3_XML_DEPTH_MAX, more than S3_XML_ITEMS_MAX repeated elements, a bad number,
 * date or escape) gives -EPROTO with a message, never a crash. Memory is
 * bounded by one document (one listing page). Not thread-safe per parser;
 * parsers are independent. */
#ifndef DTH_S3_XML_H
#define DTH_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/util.h"
#include "remote/s3.h"

#define S3_XML_TEXT_MAX	 (64 * 1024)	    /* longest element text kept */
#define S3_XML_DEPTH_MAX 64		    /* deepest element nesting */
#define S3_XML_ITEMS_MAX 20000		    /* Contents + CommonPrefixes (etc.) per document */
#define S3_XML_BYTES_MAX (64 * 1024 * 1024) /* text kept by one document */

enum s3_xml_root {
	S3_XML_UNKNOWN = 0,  /* some other root element (ignored, not an error) */
	S3_XML_ERROR,	     /* <Error>: code, message, request_id */
	S3_XML_LIST_BUCKET,  /* <ListBucketResult> (ListObjectsV2) */
	S3_XML_INITIATE_MPU, /* <InitiateMultipartUploadResult>: upload_id */
	S3_XML_COMPLETE_MPU, /* <CompleteMultipartUploadResult>: etag */
	S3_XML_COPY_OBJECT,  /* <CopyObjectResult>: etag, last_modified */
	S3_XML_COPY_PART,    /* <CopyPartResult>: etag, last_modified */
	S3_XML_LIST_PARTS,   /* <ListPartsResult> */
	S3_XML_LIST_UPLOADS, /* <ListMultipartUploadsResult> */
	S3_XML_TAGGING,	     /* <Tagging> */
	S3_XML_LIST_BUCKETS, /* <ListAllMyBucketsResult> (ListBuckets) */
};

/* One repeated element. Which fields are set depends on the document:
 *   ListBucketResult Contents: key (decoded), size, etag, time (LastModified),
 *     storage_class
 *   ListBucketResult CommonPrefixes (in doc->prefixes): key (Prefix, decoded),
 *     is_prefix
 *   ListPartsResult Part: part_number, etag, size, time (LastModified)
 *   ListMultipartUploadsResult Upload: key (decoded), value (UploadId), time
 *     (Initiated), storage_class
 *   Tagging TagSet/Tag: key, value
 *   ListAllMyBucketsResult Buckets/Bucket: key (Name)
 * Strings are owned by the document (NULL when absent) and NUL-terminated;
 * key_len/value_len give their length (a url-decoded key may hold a NUL). */
struct s3_xml_item {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	uint64_t size;
	unsigned part_number;
	char etag[S3_ETAG_MAX]; /* without quotes */
	int64_t time;		/* Unix seconds, 0 when absent */
	char storage_class[32];
	bool is_prefix;
};

struct s3_xml_doc {
	enum s3_xml_root root;
	/* S3_XML_ERROR (each "" when absent) */
	char code[64];
	char *message; /* owned, never NULL after finish */
	char request_id[128];
	/* Listings. A listing answer without IsTruncated does not say whether it
	 * is complete: callers must refuse it (has_truncated false). */
	bool is_truncated;
	bool has_truncated; /* an IsTruncated element was present (at most one is) */
	bool url_encoded;   /* <EncodingType>url</EncodingType> was present (already undone) */
	/* NextContinuationToken (ListBucketResult, kept as sent), NextPartNumberMarker
	 * (ListPartsResult), NextKeyMarker (ListMultipartUploadsResult, decoded: a
	 * page whose marker decodes to a NUL byte is -EPROTO, as a C string cannot
	 * carry it); owned, NULL when absent. */
	char *next_marker;
	char *next_upload_id_marker; /* NextUploadIdMarker; owned, NULL when absent */
	/* Initiate: UploadId; owned, NULL when absent */
	char *upload_id;
	/* Complete / CopyObject / CopyPart */
	char etag[S3_ETAG_MAX];
	int64_t last_modified;
	/* Repeated elements in document order: Contents, Part, Upload, Tag or Bucket. */
	struct s3_xml_item *items;
	size_t n_items;
	/* ListBucketResult CommonPrefixes, in document order. */
	struct s3_xml_item *prefixes;
	size_t n_prefixes;
};

/* Release what a document owns and zero it. */
void s3_xml_doc_release(struct s3_xml_doc *d);

struct s3_xml;

/* New parser (aborts on out-of-memory). Free with s3_xml_free. */
struct s3_xml *s3_xml_new(void);
void s3_xml_free(struct s3_xml *x);
/* Feed the next bytes of the document. 0, or -EPROTO (see s3_xml_message). After
 * an error every later call returns the same error. */
int s3_xml_feed(struct s3_xml *x, const void *data, size_t len) WUR;
/* http_sink_fn adapter: ctx is a struct s3_xml *. */
int s3_xml_sink(void *ctx, const void *data, size_t len);
/* End of the document: checks it is complete and well-formed, undoes the url
 * encoding. 0 or -EPROTO. */
int s3_xml_finish(struct s3_xml *x) WUR;
/* Why the parse failed ("" when it did not). Borrowed, valid while x lives. */
const char *s3_xml_message(const struct s3_xml *x);
/* The parsed document (valid after a successful finish; partially filled
 * before). Borrowed, valid while x lives. */
const struct s3_xml_doc *s3_xml_get(const struct s3_xml *x);
/* Move the document out of the parser into *out (caller releases it with
 * s3_xml_doc_release); the parser keeps an empty one. */
void s3_xml_take(struct s3_xml *x, struct s3_xml_doc *out);

/* One-shot: parse a complete document. On success *out is filled (release it);
 * on error *out is empty and msg (may be NULL, msgsz bytes) says why. */
int s3_xml_parse(const void *data, size_t len, struct s3_xml_doc *out, char *msg, size_t msgsz) WUR;

/* Helpers. */
/* ISO-8601 "2009-10-12T17:50:30.000Z" (fraction and zone optional, "+hh:mm"
 * offsets accepted) to Unix seconds. 0 or -EINVAL. */
int s3_xml_parse_time(const char *s, int64_t *out) WUR;
/* Copy an ETag without surrounding quotes (or &quot;) into out (S3_ETAG_MAX).
 * -EINVAL when too long (out then holds ""). */
int s3_xml_etag(const char *s, size_t len, char out[S3_ETAG_MAX]) WUR;
/* Undo S3's encoding-type=url: %XX escapes, and '+' is a space (AWS encodes a
 * space as '+' and a literal '+' as %2B). Appends to out. 0 or -EINVAL. */
int s3_xml_url_decode(struct buf *out, const char *s, size_t len) WUR;
/* Append s (len bytes) with & < > " ' escaped, for building request bodies. */
void s3_xml_escape(struct buf *out, const char *s, size_t len);

#endif
