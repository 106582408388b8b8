/* One cheap call per remote (probe.h). */
#include "common/compat.h"

#include "remote/probe.h"

#include <errno.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/buf.h"
#include "remote/creds.h"
#include "remote/ecr.h"
#include "remote/exec.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "remote/remotes.h"
#include "remote/s3.h"

const char *probe_outcome_name(enum probe_outcome o)
{
	static const char *const names[] = {"ok", "refused", "unreachable", "error"};
	return (unsigned)o < ARRAY_SIZE(names) ? names[o] : "?";
}

/* A bucket name nobody has: "dth-config-check-" and 16 random hex digits. */
static void unlikely_bucket(char out[64])
{
	unsigned char r[8] = {0};
	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0x5a, sizeof(r));
	char hex[17];
	hex_encode(r, sizeof(r), hex);
	xsnprintf(out, 64, "dth-config-check-%s", hex);
}

static int probe_s3(const struct remote_def *d, struct http_engine *http, struct dth_err *err)
{
	struct creds_provider *creds = NULL;
	struct s3_client *c = NULL;
	int rc = remote_open_s3(d, http, &creds, &c, err);
	if (!rc) {
		char bucket[64];
		unlikely_bucket(bucket);
		rc = s3_head_bucket(c, bucket, err);
		if (rc == -ENOENT) { /* the signature was checked: no such bucket */
			rc = 0;
			err_clear(err);
		}
	}
	s3_client_free(c);
	creds_provider_free(creds);
	return rc;
}

static int probe_registry(const struct remote_def *d, struct http_engine *http, struct dth_err *err)
{
	struct registry_client *c = NULL;
	int rc = remote_open_registry(d, http, &c, err);
	if (!rc)
		rc = registry_ping(c, err);
	registry_client_free(c);
	return rc;
}

static int probe_ecr(const struct remote_def *d, struct http_engine *http, struct dth_err *err)
{
	struct creds_provider *creds = NULL;
	int rc = remote_open_creds(d, http, &creds, err);
	if (rc)
		return rc;
	struct ecr_config ec = {.name = d->name,
				.region = d->region,
				.account = d->account,
				.endpoint = d->endpoint,
				.creds = creds,
				.http = http,
				.retry = RETRY_POLICY_DEFAULT};
	ec.retry.max_attempts = 2;
	struct ecr_client *c = ecr_client_new(&ec);
	if (!c) {
		rc = err_set(err, -EINVAL, "bad ecr settings (region %s)",
			     d->region ? d->region : "none");
	} else {
		struct ecr_auth a;
		rc = ecr_get_authorization_token(c, &a, err);
		ecr_auth_release(&a);
	}
	ecr_client_free(c);
	creds_provider_free(creds);
	return rc;
}

void probe_remote_on(const struct remote_def *r, struct http_engine *http, struct probe_result *out)
{
	memset(out, 0, sizeof(*out));
	err_clear(&out->err);
	struct remote_def d = *r; /* shallow: strings stay the config's */
	d.retries = 1;
	const char *type = r->type ? r->type : "s3";
	double t0 = now_mono();
	int rc;
	if (!http) {
		rc = err_set(&out->err, -ENOMEM, "cannot start the http engine");
	} else if (!strcmp(type, "registry")) {
		out->call = "GET /v2/";
		rc = probe_registry(&d, http, &out->err);
	} else if (!strcmp(type, "ecr")) {
		out->call = "GetAuthorizationToken";
		rc = probe_ecr(&d, http, &out->err);
	} else {
		out->call = "HeadBucket";
		rc = probe_s3(&d, http, &out->err);
	}
	out->seconds = now_mono() - t0;
	if (!rc)
		out->outcome = PROBE_OK;
	else if (rc == -EACCES)
		out->outcome = PROBE_REFUSED;
	else if (exec_unreachable(rc))
		out->outcome = PROBE_UNREACHABLE;
	else
		out->outcome = PROBE_ERROR;
}

void probe_remote(const struct remote_def *r, struct probe_result *out)
{
	struct http_engine *http = remote_http_new(r);
	probe_remote_on(r, http, out);
	http_engine_free(http);
}
