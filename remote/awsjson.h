/* A client of an AWS API that speaks the JSON protocol (POST / with
 * X-Amz-Target: <prefix><Operation>, Content-Type:
 * application/x-amz-json-<version>, a JSON object each way), signed with
 * SigV4, over the shared HTTP engine, with retries through remote/exec.h.
 * ECR's control plane (JSON 1.1) and SQS (JSON 1.0) use it. One client per
 * endpoint, shared by all threads; every function is thread-safe.
 *
 * Errors: the status table of remote/exec.h, reading the service's error
 * type first (the JSON "__type" or "code" after '#' and before ':', else the
 * x-amzn-ErrorType header, else an XML <Code>); err carries the HTTP status,
 * that type and the service's message (at most 300 printable bytes). An
 * expired session token makes the credentials provider fetch new ones (once);
 * a clock-skew refusal corrects the signing clock (once). No key, token or
 * signature ever reaches a log line or err. */
#ifndef DTH_AWSJSON_H
#define DTH_AWSJSON_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "remote/retry.h"

struct http_engine;
struct creds_provider;
struct awsjson;

struct awsjson_config {
	const char *name;	      /* the remote's name, for messages; NULL: the endpoint */
	const char *client;	      /* exec.h's client name and the log prefix: "ecr", "sqs" */
	const char *service;	      /* SigV4 service: "ecr", "sqs" */
	const char *target_prefix;    /* "AmazonEC2ContainerRegistry_V20150921.", "AmazonSQS." */
	const char *json_version;     /* "1.1" or "1.0" */
	const char *region;	      /* required */
	const char *endpoint;	      /* "scheme://host[:port][/path]" (http or https), required */
	struct creds_provider *creds; /* borrowed, must outlive the client; NULL: unsigned */
	struct http_engine *http;     /* borrowed, must outlive the client */
	struct retry_policy retry;
};

/* Copies what it needs from cfg. NULL on a bad config (missing field, an
 * endpoint that is not http(s)://host...). */
struct awsjson *awsjson_new(const struct awsjson_config *cfg);
void awsjson_free(struct awsjson *c);
/* The endpoint without a trailing '/' (borrowed while c lives). */
const char *awsjson_endpoint(const struct awsjson *c);

struct awsjson_call {
	const char *op;		 /* the operation: "ReceiveMessage" */
	const char *what;	 /* names the call's object in messages ("ecr://r/repo");
				    NULL: the client's name */
	const json_t *req;	 /* the request object (borrowed); NULL: {} */
	bool secret;		 /* the answer holds a secret: its bytes are wiped */
	_Atomic uint64_t *count; /* NULL, or incremented for every attempt */
};

/* Run the call with retries. 0 with *out the answer's JSON object (owned:
 * json_decref it; an empty 2xx body reads as {}), or a negative errno with
 * err filled (*out NULL). A 2xx answer that is not a JSON object is -EPROTO. */
int awsjson_do(struct awsjson *c, const struct awsjson_call *k, json_t **out,
	       struct dth_err *err) WUR;

#endif
