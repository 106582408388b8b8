/* Versioned record codec for the manifest: the only code that knows the byte
 * layout of values (and of composite keys). Every value starts with a version
 * byte. Decoding never trusts its input: truncated or unknown records give
 * -EPROTO (bad layout) or -ENOTSUP (a newer version). */
#ifndef DTH_CODEC_H
#define DTH_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/util.h"

#define CODEC_ETAG_MAX	128
#define CODEC_ERROR_MAX 256

enum obj_status {
	OBJ_PENDING = 0,
	OBJ_COPYING = 1,
	OBJ_DONE = 2,
	OBJ_FAILED = 3,
	OBJ_SKIPPED = 4,
	OBJ_DELETED = 5,
	OBJ__COUNT
};
/* "pending", "copying", ... ; NULL for an unknown value. */
const char *obj_status_name(int s);
/* -1 when unknown. */
int obj_status_parse(const char *name);

/* objects: value of (task id, key) */
struct obj_record {
	uint64_t size;
	int64_t last_modified;	   /* source Last-Modified, Unix seconds */
	char etag[CODEC_ETAG_MAX]; /* source ETag, no quotes */
	uint64_t meta_fp;	   /* XXH3 of the copied metadata headers, 0 unknown */
	uint8_t status;		   /* enum obj_status */
	uint32_t attempts;
	char last_error[CODEC_ERROR_MAX]; /* "" when none */
	char dest_etag[CODEC_ETAG_MAX];	  /* "" until copied */
	int64_t transferred_at;		  /* Unix seconds, 0 until copied */
};
void codec_obj_encode(const struct obj_record *r, struct buf *out);
int codec_obj_decode(const void *data, size_t len, struct obj_record *r) WUR;

/* uploads: value of (task id, key): an unfinished multipart upload */
#define CODEC_UPLOAD_ID_MAX 1024
struct upload_part {
	uint32_t number;
	uint64_t size;
	char etag[CODEC_ETAG_MAX];
};
struct upload_record {
	char upload_id[CODEC_UPLOAD_ID_MAX];
	char src_etag[CODEC_ETAG_MAX]; /* the source version this upload copies */
	uint64_t object_size;
	uint64_t part_size;
	uint32_t part_count;	   /* total parts planned */
	int64_t created;	   /* Unix seconds */
	struct upload_part *parts; /* finished parts (owned, malloc'd), by number */
	uint32_t n_parts;
};
void codec_upload_encode(const struct upload_record *r, struct buf *out);
/* r->parts is malloc'd by the call; free with codec_upload_release. */
int codec_upload_decode(const void *data, size_t len, struct upload_record *r) WUR;
void codec_upload_release(struct upload_record *r);

/* stats: value of task id: counters by status, kept in step with objects */
struct task_stats {
	uint64_t count[OBJ__COUNT];
	uint64_t bytes[OBJ__COUNT];
};
void codec_stats_encode(const struct task_stats *s, struct buf *out);
int codec_stats_decode(const void *data, size_t len, struct task_stats *s) WUR;

/* tasks: value of task id: definition and lifecycle */
struct task_record {
	char name[256];
	char src[1024]; /* "REMOTE:BUCKET/PREFIX" */
	char dst[1024];
	char kind[16];	/* "s3" */
	char state[16]; /* starting, running, idle, stopping, stopped, error */
	int64_t created;
	int64_t last_run_start;
	int64_t last_run_end;
	uint32_t runs;	     /* completed runs */
	uint8_t dest_listed; /* the destination was merged on a first run */
	/* since record version 2 (a version 1 record decodes with these defaults:
	 * 0, -1, "", 0) */
	int64_t last_success; /* end of the last run that ended with nothing failed, 0 none */
	int32_t last_exit;    /* exit status of the last run as dth sync's (0 done, 1 some
				 failed, 2 usage/config, 3 unreachable), -1 none */
	char error[CODEC_ERROR_MAX]; /* the error message while state is "error", else "" */
	uint64_t last_run;	     /* sequence number of the last run (runs database), 0 none */
};
void codec_task_encode(const struct task_record *t, struct buf *out);
int codec_task_decode(const void *data, size_t len, struct task_record *t) WUR;

/* runs: value of (task id, run sequence): one run of a task. The sequence is
 * the key's: it is not stored in the value, and decoding sets seq to 0 (the
 * manifest fills it in). Text fields are short words (see manifest.h). */
#define RUN_ERRORS_MAX	   5   /* first errors kept per run */
#define RUN_ERROR_LEN	   256 /* each: "key: reason" or an error of the run */
#define CODEC_RUN_WORD_MAX 16
struct run_record {
	uint64_t seq;
	int64_t started;		  /* Unix seconds */
	int64_t ended;			  /* Unix seconds, 0 while running */
	char trigger[CODEC_RUN_WORD_MAX]; /* schedule, api, start, retry, event, startup */
	char result[CODEC_RUN_WORD_MAX];  /* ok, failed, stopped, error, killed ("" running) */
	int32_t exit_status;		  /* as dth sync's */
	uint64_t listed, planned, transferred, skipped, failed, deleted;
	uint64_t bytes;	       /* bytes sent */
	uint64_t object_bytes; /* bytes of the objects transferred */
	uint64_t requests, request_errors, retries;
	uint32_t n_errors; /* entries of errors in use, <= RUN_ERRORS_MAX */
	char errors[RUN_ERRORS_MAX][RUN_ERROR_LEN];
};
/* Key of a run: 4-byte big-endian task id + 8-byte big-endian sequence. */
#define CODEC_RUN_KEY_LEN 12
void codec_run_key(uint32_t task_id, uint64_t seq, unsigned char out[CODEC_RUN_KEY_LEN]);
/* -EPROTO unless len is CODEC_RUN_KEY_LEN. */
int codec_run_key_decode(const void *data, size_t len, uint32_t *task_id, uint64_t *seq) WUR;
/* At most RUN_ERRORS_MAX errors are encoded (n_errors is clamped). */
void codec_run_encode(const struct run_record *r, struct buf *out);
int codec_run_decode(const void *data, size_t len, struct run_record *r) WUR;
/* Keep msg (cut to RUN_ERROR_LEN-1 bytes at a character boundary) as the
 * next first error: true, or false when RUN_ERRORS_MAX are already kept. */
bool codec_run_add_error(struct run_record *r, const char *msg);

/* taskdefs: value of task id: version byte + the caller's opaque bytes (the
 * definition of a task created through the API). decode sets *data to point
 * into the input. */
void codec_taskdef_encode(const void *data, size_t len, struct buf *out);
int codec_taskdef_decode(const void *in, size_t in_len, const void **data, size_t *len) WUR;

/* images: value of (task id, "repo:tag"): the last copy of one tag */
#define CODEC_DIGEST_MAX 136 /* "sha512:" + 128 hex digits, NUL */
#define CODEC_MEDIA_MAX	 128
struct image_record {
	char src_digest[CODEC_DIGEST_MAX]; /* source manifest digest last copied ("" none) */
	char dst_digest[CODEC_DIGEST_MAX]; /* digest at the destination ("" until copied) */
	char media_type[CODEC_MEDIA_MAX];  /* of the source manifest */
	uint64_t size;			   /* bytes of the source manifest */
	uint8_t status;			   /* enum obj_status */
	uint32_t attempts;
	char last_error[CODEC_ERROR_MAX];
	int64_t copied_at;     /* Unix seconds, 0 until copied */
	uint64_t platforms_fp; /* hash of the --platform selection copied, 0 for all */
};
void codec_image_encode(const struct image_record *r, struct buf *out);
int codec_image_decode(const void *data, size_t len, struct image_record *r) WUR;

/* blobs: a blob known present in one repository of a destination registry.
 * Key: 8-byte hash of the registry + digest + 8-byte hash of the repository
 * (codec_blob_key), so the repositories of a registry holding one digest are
 * neighbours (cross-repository mounts look them up). */
#define CODEC_REPO_MAX 256
struct blob_record {
	uint64_t size;
	int64_t seen_at;	   /* Unix seconds it was last found or copied */
	char repo[CODEC_REPO_MAX]; /* the repository (its hash is in the key) */
};
void codec_blob_encode(const struct blob_record *r, struct buf *out);
int codec_blob_decode(const void *data, size_t len, struct blob_record *r) WUR;
/* reg_hash and repo_hash: 64-bit hashes of the names (big-endian in the key).
 * repo_hash is left out when with_repo is false: the key prefix of a digest. */
void codec_blob_key(uint64_t reg_hash, const char *digest, uint64_t repo_hash, int with_repo,
		    struct buf *out);

/* Composite key: 4-byte big-endian task id + key bytes. */
void codec_key_encode(uint32_t task_id, const char *key, size_t key_len, struct buf *out);
/* Split a composite key; *key points into data. -EPROTO when too short. */
int codec_key_decode(const void *data, size_t len, uint32_t *task_id, const char **key,
		     size_t *key_len) WUR;

#endif
