/* Amazon SQS, the calls a consumer of S3 event notifications needs: long
 * polling (ReceiveMessage), deleting what is done (DeleteMessageBatch) and
 * keeping what is still being worked on invisible
 * (ChangeMessageVisibilityBatch), in SQS's JSON protocol (awsapi.h), signed
 * with SigV4 for service "sqs". Thread-safe. Errors as awsapi.h says. */
#ifndef DTH_SQS_H
#define DTH_SQS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/retry.h"

struct http_engine;
struct creds_provider;
struct sqs_client;

struct sqs_config {
	const char *name;	      /* for messages (the task's) */
	const char *queue_url;	      /* "https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE" or any
					 endpoint's "scheme://host[:port]/PATH" */
	const char *region;	      /* NULL: from the queue URL's host, else us-east-1 */
	struct creds_provider *creds; /* borrowed; NULL: unsigned */
	struct http_engine *http;     /* borrowed */
	struct retry_policy retry;
};

/* The region in an AWS queue URL's host (sqs.REGION.amazonaws.com[.cn] or
 * REGION.queue.amazonaws.com) appended to out: 0, or -ENOENT. */
int sqs_region_of_url(const char *queue_url, struct buf *out) WUR;

/* NULL on a bad config (no queue URL, not http(s)). */
struct sqs_client *sqs_client_new(const struct sqs_config *cfg);
void sqs_client_free(struct sqs_client *c);
/* Requests sent (every attempt). */
uint64_t sqs_client_requests(const struct sqs_client *c);

struct sqs_message {
	char *id;      /* MessageId (owned) */
	char *receipt; /* ReceiptHandle (owned) */
	char *body;    /* owned, NUL-terminated */
	size_t body_len;
	unsigned receives; /* ApproximateReceiveCount (0 when absent) */
};
void sqs_messages_free(struct sqs_message *m, size_t n);

/* ReceiveMessage: up to max (1..10) messages, waiting up to wait_s (0..20)
 * for one, hidden from other consumers for visibility_s (0: the queue's
 * own VisibilityTimeout). *out (owned, sqs_messages_free) and *n set; none is 0 with *n 0. */
int sqs_receive(struct sqs_client *c, unsigned max, unsigned wait_s, unsigned visibility_s,
		struct sqs_message **out, size_t *n, struct dth_err *err) WUR;

/* GetQueueAttributes: the queue's VisibilityTimeout in seconds. */
int sqs_visibility(struct sqs_client *c, unsigned *seconds, struct dth_err *err) WUR;

/* DeleteMessageBatch (groups of 10) of n receipt handles. 0 when every one
 * was deleted; else the first error (the others are still tried). */
int sqs_delete(struct sqs_client *c, const char *const *receipts, size_t n,
	       struct dth_err *err) WUR;

/* ChangeMessageVisibilityBatch: hide n messages for visibility_s more seconds
 * from now. 0, or the first error (the others are still tried). */
int sqs_extend(struct sqs_client *c, const char *const *receipts, size_t n, unsigned visibility_s,
	       struct dth_err *err) WUR;

#endif
