/* Amazon ECR API client (the control plane, not the registry itself): the
 * JSON 1.1 protocol (POST / with X-Amz-Target:
 * AmazonEC2ContainerRegistry_V20150921.<Op>, Content-Type:
 * application/x-amz-json-1.1), signed with SigV4 for service "ecr", over the
 * shared HTTP engine, with retries (retry.h) and per-kind request counters.
 * One client per remote, shared by all threads; every function is
 * thread-safe. Returns 0 or a negative errno as the status table of
 * remote/exec.h says, which reads ECR's error types first:
 * RepositoryNotFoundException, ImageNotFoundException and 404 -> -ENOENT;
 * RepositoryAlreadyExistsException -> -EEXIST; authentication and permission
 * errors (401, 403, UnrecognizedClientException, InvalidSignatureException,
 * AccessDenied...) -> -EACCES; InvalidParameterException,
 * ValidationException, other 400 -> -EINVAL; LimitExceededException ->
 * -ENOSPC; throttling (ThrottlingException, 429, 503) after retries ->
 * -EBUSY; other 5xx after retries -> -EIO; other 4xx -> -EPROTO; transport
 * failures as http.h says. An expired session token makes the credentials
 * provider fetch new ones (once); a clock-skew refusal corrects the signing
 * clock (once). err carries the HTTP status, the error type (the JSON
 * "__type" after '#') and the service's message.
 * No token, key or signature ever reaches a log line or err. */
#ifndef DTH_ECR_H
#define DTH_ECR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/retry.h"

struct http_engine;
struct creds_provider;
struct ecr_client;

struct ecr_config {
	const char *name;	      /* remote name, for messages */
	const char *region;	      /* e.g. "us-east-1", "cn-north-1"; required */
	const char *account;	      /* registry id (12 digits); NULL or "": the caller's own */
	const char *endpoint;	      /* API URL override ("scheme://host[:port]"), NULL: derived
					 from the region (see ecr_api_endpoint) */
	struct creds_provider *creds; /* borrowed; must outlive the client; NULL: unsigned */
	struct http_engine *http;     /* borrowed; must outlive the client */
	struct retry_policy retry;
};

/* True for the AWS China partition (regions "cn-*": cn-north-1, cn-northwest-1). */
bool ecr_region_is_china(const char *region);
/* "https://api.ecr.<region>.amazonaws.com", ".com.cn" in China, appended to
 * out. 0, or -EINVAL for an empty or malformed region. */
int ecr_api_endpoint(const char *region, struct buf *out) WUR;
/* Registry host "<account>.dkr.ecr.<region>.amazonaws.com(.cn)" appended to
 * out. 0, or -EINVAL for a malformed account (not 12 digits) or region. */
int ecr_registry_host(const char *account, const char *region, struct buf *out) WUR;

/* Copies what it needs from cfg (strings too). NULL on a bad config (no
 * region, no http engine, malformed account or endpoint). */
struct ecr_client *ecr_client_new(const struct ecr_config *cfg);
void ecr_client_free(struct ecr_client *c);
/* Borrowed; valid while c lives. The API URL used (override or derived). */
const char *ecr_client_endpoint(const struct ecr_client *c);
const char *ecr_client_name(const struct ecr_client *c);
const char *ecr_client_region(const struct ecr_client *c);
/* The account given in the config, "" when none. */
const char *ecr_client_account(const struct ecr_client *c);

enum ecr_req_kind {
	ECR_REQ_AUTH = 0,	 /* GetAuthorizationToken */
	ECR_REQ_CREATE,		 /* CreateRepository */
	ECR_REQ_DESCRIBE_REPOS,	 /* DescribeRepositories (one per page) */
	ECR_REQ_DESCRIBE_IMAGES, /* DescribeImages (one per page) */
	ECR_REQ__COUNT
};
/* "auth", "create", "repos", "images". */
const char *ecr_req_kind_name(enum ecr_req_kind k);
/* Requests sent so far (every attempt counts), by kind. */
void ecr_client_counts(const struct ecr_client *c, uint64_t out[ECR_REQ__COUNT]);

/* Registry credentials from GetAuthorizationToken: the base64 token
 * "AWS:<password>" decoded. password is a secret: never log it. */
struct ecr_auth {
	char user[64];		  /* "AWS" */
	char *password;		  /* owned, NUL-terminated, in secret memory (secret.h) */
	char proxy_endpoint[256]; /* "https://<account>.dkr.ecr.<region>.amazonaws.com" */
	int64_t expires;	  /* Unix seconds (0 when the answer has none) */
};
/* Wipes and frees the password; a zeroed or released struct is fine. */
void ecr_auth_release(struct ecr_auth *a);

/* GetAuthorizationToken for the configured account (registryIds) or the
 * caller's own registry. out is initialised by the call; release it with
 * ecr_auth_release. A token that does not decode to "user:password" is
 * -EPROTO. */
int ecr_get_authorization_token(struct ecr_client *c, struct ecr_auth *out,
				struct dth_err *err) WUR;

/* The GetAuthorizationToken answer (its JSON document, borrowed) into out,
 * which is initialised by the call (release it with ecr_auth_release): the
 * first authorizationData's authorizationToken decoded, its proxyEndpoint and
 * expiresAt. what names the call in messages. 0, or -EPROTO (out then empty)
 * with err saying why, never quoting the token: no token, one that is not
 * base64 of "user:password" (user 1-63 bytes, no NUL), or a proxyEndpoint
 * that does not fit. Pure; exposed for tests. */
struct json_t;
int ecr_parse_authorization(const struct json_t *ans, const char *what, struct ecr_auth *out,
			    struct dth_err *err) WUR;

/* CreateRepository (in the configured registry). uri_out (may be NULL) gets
 * the new repository's URI appended. -EEXIST when it exists already. */
int ecr_create_repository(struct ecr_client *c, const char *repo, struct buf *uri_out,
			  struct dth_err *err) WUR;

struct ecr_repo {
	const char *name;   /* borrowed for the callback */
	const char *uri;    /* borrowed for the callback; "" if absent */
	int64_t created_at; /* Unix seconds, 0 if absent */
};
/* DescribeRepositories, all pages (nextToken); page_size is maxResults (1..1000,
 * 0: 1000). fn is called per repository; a non-zero return from fn stops and
 * is returned. */
int ecr_describe_repositories(struct ecr_client *c, unsigned page_size,
			      int (*fn)(void *ctx, const struct ecr_repo *r), void *ctx,
			      struct dth_err *err) WUR;

struct ecr_image {
	const char *digest;	 /* "sha256:..."; borrowed for the callback */
	const char *const *tags; /* borrowed for the callback; n_tags entries */
	size_t n_tags;
	uint64_t size;		/* imageSizeInBytes, 0 if absent */
	int64_t pushed_at;	/* Unix seconds, 0 if absent */
	const char *media_type; /* imageManifestMediaType; "" if absent */
};
/* DescribeImages of repo, all pages; page_size as above. -ENOENT when the
 * repository does not exist. fn as above. */
int ecr_describe_images(struct ecr_client *c, const char *repo, unsigned page_size,
			int (*fn)(void *ctx, const struct ecr_image *im), void *ctx,
			struct dth_err *err) WUR;

#endif
