/* Amazon SNS Publish (sns.h). */
#include "common/compat.h"

#include "remote/sns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "remote/awsapi.h"
#include "remote/xmltree.h"

struct sns_client {
	struct awsapi *api;
};

int sns_topic_region(const char *arn, struct buf *out)
{
	/* arn : partition : sns : region : account : name */
	const char *p = arn;
	if (strncmp(p, "arn:", 4))
		return -EINVAL;
	p = strchr(p + 4, ':');
	if (!p || strncmp(p + 1, "sns:", 4))
		return -EINVAL;
	const char *region = p + 5;
	const char *end = strchr(region, ':');
	if (!end || end == region || !strchr(end + 1, ':'))
		return -EINVAL;
	buf_add(out, region, (size_t)(end - region));
	return 0;
}

struct sns_client *sns_client_new(const struct sns_config *cfg)
{
	if (!cfg || !cfg->http || !cfg->region || !*cfg->region)
		return NULL;
	struct buf ep = BUF_INIT;
	if (cfg->endpoint && *cfg->endpoint)
		buf_adds(&ep, cfg->endpoint);
	else
		buf_addf(&ep, "https://sns.%s.amazonaws.com%s", cfg->region,
			 strncmp(cfg->region, "cn-", 3) ? "" : ".cn");
	struct awsapi_config ac = {.name = cfg->name,
				   .client = "sns",
				   .service = "sns",
				   .region = cfg->region,
				   .endpoint = buf_str(&ep),
				   .creds = cfg->creds,
				   .http = cfg->http,
				   .retry = cfg->retry};
	struct awsapi *api = awsapi_new(&ac);
	buf_release(&ep);
	if (!api)
		return NULL;
	struct sns_client *c = xcalloc(1, sizeof(*c));
	c->api = api;
	return c;
}

void sns_client_free(struct sns_client *c)
{
	if (!c)
		return;
	awsapi_free(c->api);
	free(c);
}

int sns_publish(struct sns_client *c, const char *topic_arn, const char *subject,
		const char *message, struct buf *message_id, struct dth_err *err)
{
	const char *params[6] = {"TopicArn", topic_arn, "Message", message, "Subject", subject};
	struct awsapi_call k = {.op = "Publish", .what = topic_arn};
	struct buf ans = BUF_INIT;
	int rc = awsapi_query(c->api, &k, "2010-03-31", params, subject ? 3 : 2, &ans, err);
	struct xmltree *t = NULL;
	if (!rc && message_id && !xmltree_parse(ans.data ? ans.data : "", ans.len, &t, err)) {
		const char *id = xmlnode_text_at(xmltree_root(t), "PublishResult/MessageId");
		if (id && *id)
			buf_adds(message_id, id);
		else
			rc = err_set(err, -EPROTO, "Publish %s: no MessageId in the answer",
				     topic_arn);
	} else if (!rc && message_id) {
		rc = err->code;
		err_prefix(err, "Publish %s: the answer", topic_arn);
	}
	xmltree_free(t);
	buf_release(&ans);
	return rc;
}
