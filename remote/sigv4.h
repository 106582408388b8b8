/* AWS Signature Version 4: canonical request, string to sign, Authorization
 * header and presigned query string. Pure functions, no I/O, thread-safe.
 * Passes the AWS SigV4 test suite (tests/data/sigv4). */
#ifndef DTH_SIGV4_H
#define DTH_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string, lowercase hex. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_creds {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" when none */
};

struct sigv4_header {
	const char *name;  /* any case; canonicalised to lowercase */
	const char *value; /* trimmed and inner runs of spaces folded when canonicalised */
};

/* One request to sign. All strings are borrowed for the duration of the call. */
struct sigv4_input {
	const char *method; /* "GET", "PUT", ... */
	/* The path exactly as sent on the wire, starting with '/'. With
	 * normalize_path (every service but S3) it is normalised (dot segments
	 * removed, repeated slashes folded) and each segment encoded again; without
	 * it (S3) it is used verbatim, so the caller must already have encoded it
	 * with uri_encode(.., keep_slash=true). */
	const char *path;
	/* The query string as sent, without '?', NULL or "" when none. Parameters are
	 * decoded, re-encoded the SigV4 way and sorted for the canonical form. */
	const char *query;
	const struct sigv4_header *headers; /* every header to sign; must include "host" */
	size_t n_headers;
	/* Lowercase hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD. */
	const char *payload_hash;
	const char *region;
	const char *service; /* "s3", "ecr", "sts", ... */
	time_t when;	     /* signing time (UTC seconds) */
	bool normalize_path; /* false for S3 */
};

/* "YYYYMMDDTHHMMSSZ" for t (out must hold 17 bytes). */
void sigv4_amz_date(time_t t, char out[17]);

/* Canonical request (appended to out). 0 or -EINVAL. */
int sigv4_canonical_request(const struct sigv4_input *in, struct buf *out) WUR;
/* String to sign for the given canonical request (appended to out). */
int sigv4_string_to_sign(const struct sigv4_input *in, const char *canonical_request,
			 struct buf *out) WUR;
/* Lowercase hex signature for string_to_sign (out: 65 bytes). */
int sigv4_signature(const struct sigv4_input *in, const struct sigv4_creds *c,
		    const char *string_to_sign, char out[65]) WUR;
/* Complete Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") appended to out. The caller must have
 * put x-amz-date (and x-amz-security-token, x-amz-content-sha256 where
 * wanted) among in->headers. */
int sigv4_authorization(const struct sigv4_input *in, const struct sigv4_creds *c,
			struct buf *out) WUR;
/* Presigned form: appends to out the full query string to send (the request's
 * own query parameters plus X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
 * X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Security-Token when a session token
 * is set, and X-Amz-Signature), without a leading '?'. in->payload_hash is used
 * as given (S3 uses UNSIGNED-PAYLOAD). */
int sigv4_presign(const struct sigv4_input *in, const struct sigv4_creds *c,
		  unsigned expires_seconds, struct buf *out) WUR;

#endif
