/* A client of an AWS API, signed with SigV4, over the shared HTTP engine,
 * with retries through remote/exec.h, in either of AWS's two RPC protocols:
 * JSON (POST / with X-Amz-Target: <prefix><Operation>, Content-Type:
 * application/x-amz-json-<version>, a JSON object each way: ECR's control
 * plane, SQS) or query (a form POST of Action=...&Version=..., an XML answer:
 * SNS). One client per endpoint, shared by all threads; every function is
 * thread-safe.
 *
 * Errors: the status table of remote/exec.h, reading the service's error
 * type first (the JSON "__type" or "code" after '#' and before ':', else the
 * x-amzn-ErrorType header, else an XML <Code>); err carries the HTTP status,
 * that type and the service's message (at most 300 printable bytes). An
 * expired session token makes the credentials provider fetch new ones (once);
 * a clock-skew refusal corrects the signing clock (once). No key, token or
 * signature ever reaches a log line or err. */
#ifndef DTH_AWSAPI_H
#define DTH_AWSAPI_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/retry.h"

struct http_engine;
struct creds_provider;
struct awsapi;

struct awsapi_config {
	const char *name;	   /* the remote's name, for messages; NULL: the endpoint */
	const char *client;	   /* exec.h's client name and the log prefix: "ecr", "sqs" */
	const char *service;	   /* SigV4 service: "ecr", "sqs" */
	const char *target_prefix; /* JSON: "AmazonEC2ContainerRegistry_V20150921.", "AmazonSQS." */
	const char *json_version;  /* JSON: "1.1" or "1.0" (NULL: "1.0") */
	const char *region;	   /* required */
	const char *endpoint;	   /* "scheme://host[:port][/path]" (http or https), required */
	struct creds_provider *creds; /* borrowed, must outlive the client; NULL: unsigned */
	struct http_engine *http;     /* borrowed, must outlive the client */
	struct retry_policy retry;
};

/* Copies what it needs from cfg. NULL on a bad config (missing field, an
 * endpoint that is not http(s)://host...). */
struct awsapi *awsapi_new(const struct awsapi_config *cfg);
void awsapi_free(struct awsapi *c);
/* The endpoint without a trailing '/' (borrowed while c lives). */
const char *awsapi_endpoint(const struct awsapi *c);

struct awsapi_call {
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
int awsapi_json(struct awsapi *c, const struct awsapi_call *k, json_t **out,
		struct dth_err *err) WUR;

/* The same in the query protocol (SNS, and SQS's older one): a form POST of
 * Action=k->op, Version=version and n name/value pairs (params[2i],
 * params[2i+1]), no X-Amz-Target. 0 with answer holding the 2xx body (XML),
 * or a negative errno with err filled as for JSON (the error's type from the
 * XML <Code>). k->req is not used. */
int awsapi_query(struct awsapi *c, const struct awsapi_call *k, const char *version,
		 const char *const *params, size_t n, struct buf *answer, struct dth_err *err) WUR;

#endif
