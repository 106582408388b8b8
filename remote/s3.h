/* S3 client: signed requests (SigV4) over the shared HTTP engine, run by the
 * request executor (exec.h: retries, Retry-After, clock skew, expired
 * credentials) with per-kind request counters. One client per remote, shared
 * by all threads; every function is thread-safe. Keys and bucket names are
 * raw bytes (the client percent-encodes them). Returns 0 or a negative errno
 * as exec.h's status table says: 404 -> -ENOENT, 401/403 -> -EACCES, 412 ->
 * -ESTALE, 400 -> -EINVAL, 409 -> -EEXIST, 416 -> -ERANGE, 405/501 ->
 * -ENOTSUP, SlowDown/429/503 after retries -> -EBUSY, other 5xx (and
 * InternalError) after retries -> -EIO, RequestTimeout -> -ETIMEDOUT, other
 * 4xx -> -EPROTO, transport failures as http.h says. err carries the HTTP
 * status, S3's error code and message. */
#ifndef DTH_S3_H
#define DTH_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/http.h"
#include "remote/retry.h"

struct http_engine;
struct creds_provider;
struct s3_client;

#define S3_ETAG_MAX 128 /* ETags are stored without their quotes */

struct s3_config {
	const char *name;     /* remote name, for messages */
	const char *endpoint; /* "scheme://host[:port]", no trailing slash */
	const char *region;   /* signing region, e.g. "us-east-1" */
	bool path_style;      /* true: endpoint/bucket/key; false: bucket.host/key */
	bool requester_pays;  /* send x-amz-request-payer: requester on every call */
	/* Sign bodies as UNSIGNED-PAYLOAD. Only honoured over https (where TLS
	 * protects the body); over http the SHA-256 of the body is signed, unless
	 * the request carries a Content-MD5 (PutObject, UploadPart), which the
	 * signature covers and the server checks the body against. */
	bool unsigned_payload;
	/* The largest range one GetObject request asks for; 0: no limit. A
	 * longer read with an If-Match ETag is made of equal ranges under it
	 * (each with the If-Match, so they all come from one version). */
	uint64_t get_range_max;
	struct creds_provider *creds; /* borrowed; must outlive the client */
	struct http_engine *http;     /* borrowed; must outlive the client */
	struct retry_policy retry;
};

/* Copies what it needs from cfg (strings too). */
struct s3_client *s3_client_new(const struct s3_config *cfg);
/* A client of a local directory read as a bucket (s3_local.h says how): the
 * bucket argument of every call is ignored, keys are paths under root.
 * Listing, HeadObject, GetObject and GetObjectTagging (none) work; every
 * other call fails with -ENOTSUP, so a local directory is never written or
 * deleted from. No requests are counted. -ENOENT/-ENOTDIR/-EACCES when
 * root cannot be opened as a directory (err says so). */
int s3_client_new_local(const char *name, const char *root, struct s3_client **out,
			struct dth_err *err) WUR;
bool s3_client_is_local(const struct s3_client *c);
void s3_client_free(struct s3_client *c);
/* Borrowed; valid while c lives. */
const char *s3_client_endpoint(const struct s3_client *c);
const char *s3_client_name(const struct s3_client *c);

enum s3_req_kind {
	S3_REQ_LIST = 0,  /* ListObjectsV2, ListParts, ListMultipartUploads */
	S3_REQ_HEAD,	  /* HeadObject, HeadBucket */
	S3_REQ_GET,	  /* GetObject, GetObjectTagging */
	S3_REQ_PUT,	  /* PutObject, PutObjectTagging */
	S3_REQ_COPY,	  /* CopyObject, UploadPartCopy */
	S3_REQ_MULTIPART, /* Create/UploadPart/Complete/Abort */
	S3_REQ_DELETE,	  /* DeleteObject */
	S3_REQ_OTHER,	  /* CreateBucket, ... */
	S3_REQ__COUNT
};
/* "list", "head", "get", "put", "copy", "multipart", "delete", "other". */
const char *s3_req_kind_name(enum s3_req_kind k);
/* Requests sent so far (every attempt counts), by kind. */
void s3_client_counts(const struct s3_client *c, uint64_t out[S3_REQ__COUNT]);

struct s3_kv {
	char *name;  /* owned */
	char *value; /* owned */
};

/* Object metadata that a copy carries. Every string is owned (NULL if absent). */
struct s3_meta {
	char *content_type;
	char *content_encoding;
	char *content_language;
	char *content_disposition;
	char *cache_control;
	char *expires;
	struct s3_kv *user; /* x-amz-meta-* with the prefix removed, names lowercase */
	size_t n_user;
};
void s3_meta_release(struct s3_meta *m);
/* Deep copy. */
void s3_meta_copy(struct s3_meta *dst, const struct s3_meta *src);

struct s3_tags {
	struct s3_kv *tags; /* owned */
	size_t n;
};
void s3_tags_release(struct s3_tags *t);
/* Append "k1=v1&k2=v2" (URL-encoded) for the x-amz-tagging header. */
void s3_tags_to_query(const struct s3_tags *t, struct buf *out);

struct s3_object_head {
	uint64_t size;		/* Content-Length of what was asked (a part with part_number) */
	uint64_t total_size;	/* size of the whole object */
	char etag[S3_ETAG_MAX]; /* without quotes */
	int64_t last_modified;	/* Unix seconds */
	unsigned parts_count;	/* x-amz-mp-parts-count, 0 when absent */
	unsigned tag_count;	/* x-amz-tagging-count, 0 when absent */
	char storage_class[32];
	struct s3_meta meta; /* owned */
};
void s3_object_head_release(struct s3_object_head *h);

/* HeadBucket: checks the bucket exists and the credentials are accepted. */
int s3_head_bucket(struct s3_client *c, const char *bucket, struct dth_err *err) WUR;
/* CreateBucket (LocationConstraint from the region unless us-east-1). -EEXIST
 * when it exists already and is ours. */
int s3_create_bucket(struct s3_client *c, const char *bucket, struct dth_err *err) WUR;

/* ListBuckets (GET / on the endpoint): fn is called with each bucket's name
 * (borrowed for the call) in the answer's order; a non-zero return from fn
 * stops and is returned. -ENOTSUP for a local directory. */
int s3_list_buckets(struct s3_client *c, int (*fn)(void *ctx, const char *name), void *ctx,
		    struct dth_err *err) WUR;

/* HeadObject; part_number > 0 adds ?partNumber=N (size is then the part's).
 * out is initialised by the call; release it with s3_object_head_release. */
int s3_head_object(struct s3_client *c, const char *bucket, const char *key, unsigned part_number,
		   struct s3_object_head *out, struct dth_err *err) WUR;

/* GetObject of [offset, offset+length) (length > 0), streamed into sink as it
 * arrives. A transfer that breaks off is resumed from the first byte not yet
 * given (Range, with If-Match on if_match, which should be given), so sink
 * sees every byte exactly once, in order; a sink error stops at once. The
 * server must send exactly length bytes. With if_match, a length over the
 * client's get_range_max is asked for in several ranges, one after another. */
int s3_get_object_to(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
		     uint64_t length, const char *if_match, http_sink_fn sink, void *sink_ctx,
		     struct dth_err *err) WUR;

/* GetObject of [offset, offset+length) (length 0: to the end). The body is
 * appended to out. if_match: ETag (no quotes) the object must still have,
 * else -ESTALE; NULL for none. head_out (optional) receives the response's
 * headers (release it). A body shorter than asked is an error (-EIO). With
 * if_match, a length over the client's get_range_max is asked for in several
 * ranges; head_out then holds the first answer's headers, with size the whole
 * length. On an error out is as it was before the call. */
int s3_get_object(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
		  uint64_t length, const char *if_match, struct buf *out,
		  struct s3_object_head *head_out, struct dth_err *err) WUR;

/* Destination options of a write. Every field may be NULL. */
struct s3_put_opts {
	const struct s3_meta *meta; /* headers to set */
	const char *tagging;	    /* x-amz-tagging value ("k=v&..."), NULL for none */
	const char *storage_class;  /* x-amz-storage-class */
	const char *acl;	    /* x-amz-acl */
	const char *sse;	    /* x-amz-server-side-encryption: AES256 | aws:kms */
	const char *sse_kms_key_id; /* x-amz-server-side-encryption-aws-kms-key-id */
	const char *content_md5;    /* base64 MD5 of the body (PutObject, UploadPart) */
};

/* What the server answered about an object it wrote (PutObject, UploadPart,
 * CompleteMultipartUpload, CopyObject, UploadPartCopy). */
struct s3_written {
	char etag[S3_ETAG_MAX]; /* without quotes; "" when the answer had none */
	/* False when the answer says the object is stored with SSE-KMS or a
	 * customer key (asked for, or a bucket's default): its ETag is then not an
	 * MD5 of the bytes and cannot be compared with one. */
	bool etag_is_digest;
};

/* PutObject from memory. out (may be NULL) gets what the server answered. */
int s3_put_object(struct s3_client *c, const char *bucket, const char *key, const void *body,
		  size_t len, const struct s3_put_opts *opts, struct s3_written *out,
		  struct dth_err *err) WUR;
/* PutObject of exactly len bytes read from source (http.h), sent as they come,
 * never whole in memory. The body cannot be sent twice, so this makes one
 * attempt: on failure the caller starts the copy again. Give opts->content_md5
 * when known, so the server checks the bytes. */
int s3_put_object_from(struct s3_client *c, const char *bucket, const char *key, uint64_t len,
		       http_source_fn source, void *source_ctx, const struct s3_put_opts *opts,
		       struct s3_written *out, struct dth_err *err) WUR;

/* CopyObject within one endpoint. opts NULL or opts->meta NULL: metadata
 * directive COPY; else REPLACE with opts->meta. opts->tagging non-NULL: tagging
 * directive REPLACE. src_if_match: x-amz-copy-source-if-match. */
int s3_copy_object(struct s3_client *c, const char *dst_bucket, const char *dst_key,
		   const char *src_bucket, const char *src_key, const char *src_if_match,
		   const struct s3_put_opts *opts, struct s3_written *out, struct dth_err *err) WUR;

/* DeleteObject (a missing key is success, as in S3). */
int s3_delete_object(struct s3_client *c, const char *bucket, const char *key,
		     struct dth_err *err) WUR;

/* Object tagging. out is initialised by the call. */
int s3_get_tagging(struct s3_client *c, const char *bucket, const char *key, struct s3_tags *out,
		   struct dth_err *err) WUR;
int s3_put_tagging(struct s3_client *c, const char *bucket, const char *key,
		   const struct s3_tags *tags, struct dth_err *err) WUR;

/* Multipart upload. */
struct s3_part {
	unsigned number;
	char etag[S3_ETAG_MAX]; /* without quotes */
	uint64_t size;
};
/* CreateMultipartUpload; the upload id is appended to upload_id. */
int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
		  const struct s3_put_opts *opts, struct buf *upload_id, struct dth_err *err) WUR;
/* UploadPart from memory. content_md5 (base64, may be NULL) makes the server
 * check the bytes. body_proven: the caller proves the bytes another way (the
 * completed upload's ETag must equal a known one), so the body's SHA-256 is
 * neither computed nor signed (UNSIGNED-PAYLOAD); else, without content_md5,
 * it is signed. */
int s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key,
		       const char *upload_id, unsigned part_number, const void *body, size_t len,
		       const char *content_md5, bool body_proven, struct s3_written *out,
		       struct dth_err *err) WUR;
/* UploadPart of exactly len bytes from source, one attempt (as
 * s3_put_object_from). content_md5 may be NULL. */
int s3_mpu_upload_part_from(struct s3_client *c, const char *bucket, const char *key,
			    const char *upload_id, unsigned part_number, uint64_t len,
			    http_source_fn source, void *source_ctx, const char *content_md5,
			    struct s3_written *out, struct dth_err *err) WUR;
/* UploadPartCopy of src bytes [offset, offset+length). */
int s3_mpu_upload_part_copy(struct s3_client *c, const char *bucket, const char *key,
			    const char *upload_id, unsigned part_number, const char *src_bucket,
			    const char *src_key, uint64_t offset, uint64_t length,
			    const char *src_if_match, struct s3_written *out,
			    struct dth_err *err) WUR;
/* CompleteMultipartUpload with parts in ascending order. A 200 response that
 * carries an <Error> document is reported as an error. */
int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
		    const struct s3_part *parts, size_t n, struct s3_written *out,
		    struct dth_err *err) WUR;
/* AbortMultipartUpload; -ENOENT when the upload is unknown. */
int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
		 struct dth_err *err) WUR;
/* ListParts, all pages; fn is called per part in order; a non-zero return from
 * fn stops and is returned. */
int s3_mpu_list_parts(struct s3_client *c, const char *bucket, const char *key,
		      const char *upload_id, int (*fn)(void *ctx, const struct s3_part *p),
		      void *ctx, struct dth_err *err) WUR;
struct s3_upload {
	const char *key;       /* borrowed for the callback */
	const char *upload_id; /* borrowed for the callback */
	int64_t initiated;     /* Unix seconds */
};
/* ListMultipartUploads under prefix, all pages. */
int s3_mpu_list_uploads(struct s3_client *c, const char *bucket, const char *prefix,
			int (*fn)(void *ctx, const struct s3_upload *u), void *ctx,
			struct dth_err *err) WUR;

/* Listing (ListObjectsV2), streamed: one page (<= 1000 entries) in memory at a
 * time, parsed with expat as it arrives; encoding-type=url is always asked
 * and undone, so any key bytes survive. */
struct s3_list_opts {
	const char *prefix;	 /* NULL: none */
	const char *delimiter;	 /* NULL: none */
	const char *start_after; /* NULL: from the start */
	const char *end_before;	 /* NULL: to the end; else stop before the first key >= it */
	unsigned max_keys;	 /* page size; 0: 1000 */
};
struct s3_list_entry {
	const char *key; /* decoded key, NUL-terminated, borrowed until the next call */
	size_t key_len;
	uint64_t size;
	char etag[S3_ETAG_MAX]; /* without quotes; "" for a prefix */
	int64_t last_modified;	/* Unix seconds */
	bool is_prefix;		/* a CommonPrefixes entry (key is the prefix) */
	char storage_class[32];
	/* The last entry of a page the server said is truncated: the source's
	 * own page boundary (a listing starting after this key asks for the
	 * same pages as the rest of this one). */
	bool page_last;
};
struct s3_lister;
/* Strings in opts are copied. No request is made until the first next. */
struct s3_lister *s3_lister_new(struct s3_client *c, const char *bucket,
				const struct s3_list_opts *opts);
/* 1 with *e set, 0 at the end, or a negative errno (err filled). Entries come
 * in ascending byte order. Each page is checked whole before its first entry
 * is returned, and refused (-EPROTO) when its keys are not in ascending byte
 * order, not after the previous page's (or start_after), or outside the
 * prefix; when it has no IsTruncated; when its continuation token repeats the
 * last one; or after 100 truncated pages in a row without a key. After an
 * error every later call returns the same error (never 0): a listing that
 * failed is never taken as complete. */
int s3_lister_next(struct s3_lister *l, const struct s3_list_entry **e, struct dth_err *err) WUR;
void s3_lister_free(struct s3_lister *l);

/* Presigned GET URL (query-string SigV4), appended to out. */
int s3_presign_get(struct s3_client *c, const char *bucket, const char *key, unsigned expires,
		   struct buf *out, struct dth_err *err) WUR;

/* True when etag looks like a plain MD5 (32 hex digits); *parts = 0. True with
 * *parts = N for a multipart "hex-N" ETag. False for anything else. */
bool s3_etag_parse(const char *etag, unsigned *parts);

#endif
