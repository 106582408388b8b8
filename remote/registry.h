/* Registry client: the OCI distribution API (Docker registry v2) over the shared
 * HTTP engine, with retries (retry.h), anonymous, basic and bearer-token auth,
 * and per-kind request counters. One client per remote, shared by all threads;
 * every function is thread-safe.
 *
 * Auth. The client starts anonymous (or with what it learnt before) and learns
 * the scheme from the first 401's WWW-Authenticate challenge: Basic (the
 * configured username/password is then sent on every request) or Bearer
 * (tokens are fetched from the challenge's realm with service and scope
 * "repository:NAME:pull[,push]", with the basic credentials when configured,
 * cached per scope until expires_in (default 60 s) and refreshed; a 401 on a
 * cached token refetches once). Passwords and tokens never reach a log line or
 * an error message.
 *
 * Redirects (307/302/303/301/308 with Location) are followed, at most 5; the
 * registry's Authorization header is only sent to the registry's own origin
 * (scheme, host and port), never to the storage a blob redirects to.
 *
 * Requests (and token requests) run through the request executor (exec.h).
 * Errors: functions return 0 or a negative errno as its status table says:
 * 404 -> -ENOENT, 401/403 -> -EACCES, 400 -> -EINVAL (DIGEST_INVALID ->
 * -EBADMSG), 405/501 -> -ENOTSUP, 409 -> -EEXIST, 413 -> -EFBIG, 416 ->
 * -ERANGE, other 4xx -> -EPROTO, 429/503 (TOOMANYREQUESTS) after retries ->
 * -EBUSY, other 5xx after retries -> -EIO, transport failures as http.h
 * says. err carries the HTTP status, the registry's error code (e.g.
 * "MANIFEST_UNKNOWN") and message. Passwords and tokens are kept in secret
 * memory (common/secret.h). */
#ifndef DTH_REGISTRY_H
#define DTH_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/http.h"
#include "remote/retry.h"

struct registry_client;
struct registry_upload;

/* Media types of manifests. */
#define REGISTRY_MT_OCI_MANIFEST     "application/vnd.oci.image.manifest.v1+json"
#define REGISTRY_MT_OCI_INDEX	     "application/vnd.oci.image.index.v1+json"
#define REGISTRY_MT_DOCKER_MANIFEST  "application/vnd.docker.distribution.manifest.v2+json"
#define REGISTRY_MT_DOCKER_LIST	     "application/vnd.docker.distribution.manifest.list.v2+json"
#define REGISTRY_MT_DOCKER_V1	     "application/vnd.docker.distribution.manifest.v1+json"
#define REGISTRY_MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

#define REGISTRY_DIGEST_MAX	72 /* "sha256:" + 64 hex + NUL, rounded up */
#define REGISTRY_MEDIA_TYPE_MAX 128
#define REGISTRY_REPO_MAX	255	   /* longest repository name */
#define REGISTRY_TAG_MAX	128	   /* longest tag */
#define REGISTRY_MANIFEST_MAX	(4u << 20) /* larger manifests are refused (-EFBIG) */

struct registry_config {
	const char *name;     /* remote name, for messages */
	const char *url;      /* "https://host[:port]" ("http://" needs insecure); a bare
				 "host[:port]" means https. docker.io and index.docker.io
				 become registry-1.docker.io */
	const char *username; /* NULL or "": anonymous */
	const char *password;
	bool insecure;		   /* allow plain http (registry and token realm) */
	struct http_engine *http;  /* borrowed; must outlive the client */
	struct retry_policy retry; /* max_attempts 0: RETRY_POLICY_DEFAULT */
};

/* Copies what it needs from cfg. NULL with err set (-EINVAL) for a bad url,
 * plain http without insecure, or a username without a password. */
struct registry_client *registry_client_new(const struct registry_config *cfg, struct dth_err *err);
void registry_client_free(struct registry_client *c);
/* Borrowed; valid while c lives. */
const char *registry_client_name(const struct registry_client *c);
/* "scheme://host[:port]" as used (after Docker Hub normalisation). */
const char *registry_client_url(const struct registry_client *c);
/* True for Docker Hub (registry-1.docker.io), where a repository without '/'
 * is "library/NAME" (registry_normalize_repo does it for every call). */
bool registry_client_is_docker_hub(const struct registry_client *c);
/* Replace the basic credentials (e.g. a fresh ECR authorization token as
 * "AWS" + password); drops every cached bearer token. Strings are copied;
 * NULL user: anonymous. */
void registry_client_set_credentials(struct registry_client *c, const char *username,
				     const char *password);

enum registry_req_kind {
	REGISTRY_REQ_HEAD = 0,
	REGISTRY_REQ_GET, /* also GETs of redirected blobs at their storage */
	REGISTRY_REQ_PUT,
	REGISTRY_REQ_POST,
	REGISTRY_REQ_PATCH,
	REGISTRY_REQ_OTHER, /* DELETE, token requests */
	REGISTRY_REQ__COUNT
};
/* "head", "get", "put", "post", "patch", "other". */
const char *registry_req_kind_name(enum registry_req_kind k);
/* Requests sent so far (every attempt counts), by kind. */
void registry_client_counts(const struct registry_client *c, uint64_t out[REGISTRY_REQ__COUNT]);

/* ---- manifests ---- */

enum registry_manifest_kind {
	REGISTRY_KIND_UNKNOWN = 0,
	REGISTRY_KIND_IMAGE,   /* OCI image manifest, Docker v2 schema 2 */
	REGISTRY_KIND_INDEX,   /* OCI index, Docker manifest list */
	REGISTRY_KIND_SCHEMA1, /* Docker v2 schema 1: not supported */
};
/* Kind of a media type (parameters after ';' ignored, case-insensitive). */
enum registry_manifest_kind registry_media_type_kind(const char *media_type);

struct registry_manifest {
	char media_type[REGISTRY_MEDIA_TYPE_MAX]; /* "" when the registry gave none (HEAD) */
	char digest[REGISTRY_DIGEST_MAX];	  /* "sha256:<64 hex>" */
	uint64_t size;
	struct buf body; /* the raw bytes (GET only), owned */
};
void registry_manifest_init(struct registry_manifest *m);
void registry_manifest_release(struct registry_manifest *m);

/* HEAD a manifest by tag or digest ("sha256:..."). m (initialised) gets the
 * media type, digest (Docker-Content-Digest; when absent and ref is a digest,
 * ref) and size. A schema 1 manifest is -ENOTSUP. A HEAD without a digest
 * header for a tag leaves digest "" (GET it to learn it). */
int registry_manifest_head(struct registry_client *c, const char *repo, const char *ref,
			   struct registry_manifest *m, struct dth_err *err) WUR;
/* GET a manifest by tag or digest. m gets the bytes exactly as served, their
 * SHA-256 digest (checked against ref when ref is a digest, and against
 * Docker-Content-Digest when given: -EBADMSG on a mismatch), size and media
 * type (Content-Type, or the body's mediaType field when the header is
 * generic). Schema 1 (or a body with schemaVersion 1) is -ENOTSUP. */
int registry_manifest_get(struct registry_client *c, const char *repo, const char *ref,
			  struct registry_manifest *m, struct dth_err *err) WUR;
/* PUT manifest bytes as they are to a tag or digest, Content-Type media_type.
 * digest_out (REGISTRY_DIGEST_MAX bytes, may be NULL) gets the SHA-256 of the
 * bytes; a registry answering another digest is -EBADMSG. */
int registry_manifest_put(struct registry_client *c, const char *repo, const char *ref,
			  const char *media_type, const void *body, size_t len, char *digest_out,
			  struct dth_err *err) WUR;

/* True when err is a registry's refusal of a manifest for a blob it does not
 * have (error code MANIFEST_BLOB_UNKNOWN or BLOB_UNKNOWN): the blob must be
 * uploaded (again) before the manifest. */
bool registry_err_blob_unknown(const struct dth_err *err);

/* ---- blobs ---- */

/* HEAD a blob: 0 and *size (may be NULL) when it exists, -ENOENT when not. */
int registry_blob_head(struct registry_client *c, const char *repo, const char *digest,
		       uint64_t *size, struct dth_err *err) WUR;
/* GET a blob of exactly expect_size bytes (its descriptor's size) streamed to
 * sink, which sees every byte exactly once, in order (a dropped connection
 * resumes with a Range request), and never more than expect_size bytes: an
 * answer announcing another size (Content-Length, Content-Range's total) is
 * refused before its body is read, one sending more is stopped at the first
 * byte too many, and one ending short (after the resumes) is refused, all
 * -EBADMSG. The SHA-256 of the bytes is checked against digest: -EBADMSG when
 * it differs (the sink has then seen bad bytes: discard them). *size_out (may
 * be NULL) gets the byte count. A sink's negative return aborts with that
 * value. */
int registry_blob_get(struct registry_client *c, const char *repo, const char *digest,
		      uint64_t expect_size, http_sink_fn sink, void *sink_ctx, uint64_t *size_out,
		      struct dth_err *err) WUR;

/* Start an upload session (POST /v2/REPO/blobs/uploads/). *up is owned by the
 * caller: finish it, or cancel it, then free it. */
int registry_upload_start(struct registry_client *c, const char *repo, struct registry_upload **up,
			  struct dth_err *err) WUR;
/* Cross-repository mount of digest from repo `from` into repo: *mounted true
 * (201) and *up NULL when the registry linked it; else (202) *mounted false
 * and *up is an upload session the registry started instead (use or cancel
 * it). */
int registry_blob_mount(struct registry_client *c, const char *repo, const char *digest,
			const char *from, bool *mounted, struct registry_upload **up,
			struct dth_err *err) WUR;
/* Send the next chunk (PATCH with Content-Range START-END) of an upload;
 * chunks must come in order and be non-empty. */
int registry_upload_chunk(struct registry_client *c, struct registry_upload *up, const void *data,
			  size_t len, struct dth_err *err) WUR;
/* Finish an upload: PUT ?digest=DIGEST with the last bytes (data may be NULL
 * with len 0 after chunks; all the bytes for a monolithic upload). */
int registry_upload_finish(struct registry_client *c, struct registry_upload *up,
			   const char *digest, const void *data, size_t len,
			   struct dth_err *err) WUR;
/* Abandon an upload (DELETE, best effort). */
void registry_upload_cancel(struct registry_client *c, struct registry_upload *up);
/* Bytes sent so far in chunks. */
uint64_t registry_upload_offset(const struct registry_upload *up);
void registry_upload_free(struct registry_upload *up);
/* Monolithic upload from memory: POST then PUT ?digest=. */
int registry_blob_put(struct registry_client *c, const char *repo, const char *digest,
		      const void *data, size_t len, struct dth_err *err) WUR;

/* ---- listings ---- */

/* GET /v2/ with the client's credentials, through the auth dance (Basic, or
 * a Bearer token without a scope), as `docker login` checks them: 0 when the
 * registry accepts them (or lets anonymous clients in), -EACCES when it
 * refuses them, transport errors as http.h says. */
int registry_ping(struct registry_client *c, struct dth_err *err) WUR;

/* Called once per name; return 0 to go on, a negative errno to stop (the
 * listing then returns it). name is borrowed for the call only. */
typedef int (*registry_name_fn)(void *ctx, const char *name);
/* Every tag of repo (GET /v2/REPO/tags/list, following Link rel="next"). */
int registry_tags_list(struct registry_client *c, const char *repo, registry_name_fn fn, void *ctx,
		       struct dth_err *err) WUR;
/* Every repository (GET /v2/_catalog, following Link rel="next"). */
int registry_catalog(struct registry_client *c, registry_name_fn fn, void *ctx,
		     struct dth_err *err) WUR;

/* ---- parsing helpers (pure; exposed for unit tests) ---- */

/* One authentication challenge of a WWW-Authenticate header. Strings are
 * malloc'd (NULL when absent); scheme is lowercased ("bearer", "basic"). */
struct registry_challenge {
	char scheme[16];
	char *realm;
	char *service;
	char *scope;
	char *error; /* e.g. "insufficient_scope" */
};
/* Parse a WWW-Authenticate value (RFC 7235: several challenges, params as
 * token or quoted-string with backslash escapes). Picks the first Bearer
 * challenge, else the first one. 0, or -EINVAL for a malformed value or
 * none. out is zeroed first; release it with registry_challenge_release. */
int registry_parse_www_authenticate(const char *value, struct registry_challenge *out) WUR;
void registry_challenge_release(struct registry_challenge *ch);

/* The target of the rel="next" link of a Link header value (several links
 * may be comma-separated) into out (reset first). 0, or -ENOENT when there is
 * none, -EINVAL when malformed. */
int registry_parse_link_next(const char *value, struct buf *out) WUR;

/* Resolve a Location or Link target against base ("scheme://host[:port]" or
 * any absolute URL): absolute URLs are kept, "/path" is put on base's origin.
 * 0, or -EINVAL for an unusable target (empty, another scheme). */
int registry_resolve_url(const char *base, const char *target, struct buf *out) WUR;

/* True for "sha256:" followed by exactly 64 lowercase hex digits. */
bool registry_digest_valid(const char *digest);
/* True for a repository name as the distribution spec defines it:
 * components of [a-z0-9]+ joined by '.', '_', '__' or '-'s, separated by '/';
 * at most REGISTRY_REPO_MAX. */
bool registry_repo_valid(const char *repo);
/* True for a tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
bool registry_tag_valid(const char *tag);

/* Parse "repo[:tag|@sha256:...]" (also "repo:tag@sha256:...", where the digest
 * wins and the tag is kept). *repo is malloc'd; *tag and *digest are malloc'd
 * or NULL when absent. 0, or -EINVAL with err saying why. */
int registry_parse_reference(const char *s, char **repo, char **tag, char **digest,
			     struct dth_err *err) WUR;

/* Docker Hub normalisation: for host registry-1.docker.io (also docker.io,
 * index.docker.io), a repository without '/' becomes "library/REPO". Appends
 * the result to out. */
void registry_normalize_repo(const char *host, const char *repo, struct buf *out);

/* SHA-256 of data as "sha256:<64 hex>" into out (REGISTRY_DIGEST_MAX). */
void registry_digest_of(const void *data, size_t len, char *out);

/* Docker Hub's pull limit as its ratelimit-* headers last told it (-1 when no
 * response carried them). A 429 while no pull is left fails at once with
 * -EBUSY (as any throttling does after its retries) and a message saying so,
 * instead of retrying into the limit. */
void registry_client_ratelimit(const struct registry_client *c, int64_t *limit, int64_t *remaining,
			       int64_t *window);
/* Parse a ratelimit header value "76;w=21600": 0 with *count (and *window,
 * -1 when absent) set, or -1. */
int registry_parse_ratelimit(const char *v, int64_t *count, int64_t *window);

#endif
