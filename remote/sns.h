/* Amazon SNS Publish (the query protocol through awsapi.h, SigV4 service
 * "sns"): how the agent sends notifications to a topic (AWS's, or any
 * SNS-compatible service's such as moto's). Thread-safe. */
#ifndef DTH_SNS_H
#define DTH_SNS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/retry.h"

struct http_engine;
struct creds_provider;
struct sns_client;

struct sns_config {
	const char *name;     /* for messages */
	const char *endpoint; /* "scheme://host[:port]"; NULL: AWS's for the topic's region */
	const char *region;   /* NULL: the topic ARN's */
	struct creds_provider *creds; /* borrowed; NULL: unsigned */
	struct http_engine *http;     /* borrowed */
	struct retry_policy retry;
};

/* The region of a topic ARN (arn:PARTITION:sns:REGION:ACCOUNT:NAME) appended
 * to out: 0, or -EINVAL for anything else. */
int sns_topic_region(const char *arn, struct buf *out) WUR;

/* NULL on a bad config. */
struct sns_client *sns_client_new(const struct sns_config *cfg);
void sns_client_free(struct sns_client *c);

/* Publish message (subject may be NULL; at most 100 printable ASCII
 * characters) to the topic. message_id (may be NULL) gets the MessageId. */
int sns_publish(struct sns_client *c, const char *topic_arn, const char *subject,
		const char *message, struct buf *message_id, struct dth_err *err) WUR;

#endif
