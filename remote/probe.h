/* Whether a remote answers and accepts its credentials, with one cheap call
 * (dth config check): an s3 remote a signed HeadBucket of a bucket name no
 * one has (a 404 means the server checked the signature and found the
 * credentials good; a 403 that it refused them; HeadBucket needs no
 * permission on any bucket, where ListBuckets would); a registry remote
 * GET /v2/ through the auth dance, as `docker login` does; an ecr remote
 * GetAuthorizationToken. No secret is ever in the result. */
#ifndef DTH_PROBE_H
#define DTH_PROBE_H

#include "common/err.h"
#include "common/util.h"

struct remote_def;

enum probe_outcome {
	PROBE_OK = 0,	   /* answers, and the credentials are accepted */
	PROBE_REFUSED,	   /* answers, and refuses the credentials (or anonymous access) */
	PROBE_UNREACHABLE, /* no answer: DNS, connection, TLS, timeout */
	PROBE_ERROR,	   /* another answer or failure (err says) */
};
/* "ok", "refused", "unreachable", "error". */
const char *probe_outcome_name(enum probe_outcome o);

struct probe_result {
	enum probe_outcome outcome;
	const char *call; /* what was sent: "HeadBucket", "GET /v2/", "GetAuthorizationToken" */
	double seconds;
	struct dth_err err; /* why, unless ok */
};

/* Probe r (retries: at most 1, so a dead endpoint is told quickly). How long
 * it may take: an endpoint that accepts the connection and never answers
 * holds it for two attempts of the engine's stall timeout (60 s) plus their
 * backoff; one that is down costs two connect timeouts (10 s) at most. */
void probe_remote(const struct remote_def *r, struct probe_result *out);
/* The same on http, an engine the caller made for r (remote_http_new) and
 * frees after the call: another thread may cut the probe short with
 * http_engine_abort(http) (it then ends within about a second, an error). */
struct http_engine;
void probe_remote_on(const struct remote_def *r, struct http_engine *http,
		     struct probe_result *out);

#endif
