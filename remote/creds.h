/* Credential providers: explicit keys, the AWS environment variables, the AWS
 * shared credentials/config files with profiles, EC2 instance metadata
 * (IMDSv2), or the default chain of those. A provider is thread-safe and
 * refreshes expiring credentials (instance metadata) before they lapse.
 * Secrets never reach a log line or an error message. */
#ifndef DTH_CREDS_H
#define DTH_CREDS_H

#include <stdbool.h>
#include <time.h>

#include "common/err.h"
#include "common/util.h"

struct http_engine;
struct creds_provider;

enum creds_mode {
	CREDS_CHAIN = 0, /* explicit keys if given, then env, then profile "default"
			    (or $AWS_PROFILE), then instance metadata */
	CREDS_STATIC,	 /* access_key_id + secret_access_key (+ session_token) */
	CREDS_ENV,	 /* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN */
	CREDS_PROFILE,	 /* ~/.aws/credentials and ~/.aws/config, profile named below */
	CREDS_INSTANCE,	 /* EC2 instance metadata, IMDSv2 token first */
	CREDS_ANONYMOUS, /* no signing */
};

struct creds_spec {
	enum creds_mode mode;
	const char *access_key_id;     /* STATIC/CHAIN */
	const char *secret_access_key; /* STATIC/CHAIN */
	const char *session_token;     /* optional */
	const char *profile;	       /* PROFILE: NULL means $AWS_PROFILE or "default" */
	const char *credentials_file; /* NULL: $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials */
	const char *config_file;      /* NULL: $AWS_CONFIG_FILE or ~/.aws/config */
	const char *imds_endpoint;    /* NULL: $AWS_EC2_METADATA_SERVICE_ENDPOINT or
					 http://169.254.169.254 */
	struct http_engine *http;     /* borrowed; may be NULL. Instance metadata uses
					 the provider's own engine (1 s connect timeout) */
};

struct creds_value {
	char access_key_id[128];
	char secret_access_key[128];
	char session_token[4096]; /* "" when none */
	time_t expires;		  /* 0: does not expire */
	bool anonymous;
};

/* Parse "env", "profile:NAME", "instance", "anonymous" (the config file's
 * `credentials =` value) into spec->mode/profile. spec->profile then points
 * into s. 0 or -EINVAL. */
int creds_parse_mode(const char *s, struct creds_spec *spec) WUR;

/* New provider; strings in spec are copied. Does not fetch yet. NULL + err on
 * a bad spec. Free with creds_provider_free. */
struct creds_provider *creds_provider_new(const struct creds_spec *spec, struct dth_err *err);
void creds_provider_free(struct creds_provider *p);
/* Current credentials, fetching or refreshing (5 minutes before expiry) when
 * needed. 0, or -EACCES/-ENOENT with err naming the source that failed (never
 * a secret). */
int creds_provider_get(struct creds_provider *p, struct creds_value *out, struct dth_err *err) WUR;
/* The credentials were refused as expired (ExpiredToken): forget the cached
 * ones, so the next get fetches them again. True when their source can give
 * new ones (environment, profile, instance metadata), false for explicit keys
 * and anonymous access (nothing to renew). Thread-safe. */
bool creds_provider_refresh(struct creds_provider *p);
/* Short description of where the credentials come from, for messages
 * ("explicit keys", "environment", "profile prod", "instance metadata"). */
const char *creds_provider_describe(const struct creds_provider *p);

/* ---- instance metadata answers (pure; exposed for tests and fuzzing) ---- */

struct buf;
/* The role name in the answer to GET .../iam/security-credentials/ (its first
 * line, trimmed) into role (reset first). 0, or -EACCES (role then empty) when
 * that is not a role name: 1 to 128 of A-Z a-z 0-9 + = , . @ _ -. */
int creds_parse_imds_role(const struct buf *body, struct buf *role) WUR;
/* The answer to GET .../iam/security-credentials/ROLE (JSON: Code,
 * AccessKeyId, SecretAccessKey, Token, Expiration as ISO 8601) into out,
 * which is written only on success. 0, or -EACCES with err saying why (naming
 * role, never quoting a secret). */
int creds_parse_imds(const char *role, const struct buf *body, struct creds_value *out,
		     struct dth_err *err) WUR;

#endif
