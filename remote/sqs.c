/* Amazon SQS (sqs.h): requests sent through awsapi, in SQS's JSON protocol,
 * or in its query protocol (a form POST to the queue's URL, an XML answer)
 * for a service that does not speak JSON: the first call (sqs_visibility, or
 * whichever comes first) tries JSON, and on a 4xx or 501 tries the query
 * protocol; the one that answered is used from then on. A batch call answers
 * 200 with per-entry failures; those count as errors here. */
#include "common/compat.h"

#include "remote/sqs.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "remote/awsapi.h"
#include "remote/xmltree.h"

#define BATCH_MAX 10 /* entries per batch call (SQS's limit) */

enum { PROTO_UNKNOWN = 0, PROTO_JSON, PROTO_QUERY };

struct sqs_client {
	struct awsapi *api;  /* JSON: POST / of the queue's host */
	struct awsapi *qapi; /* query: POST to the queue's URL */
	char *name;
	char *queue_url;
	_Atomic uint64_t requests;
	_Atomic int proto;
};

#define QUERY_VERSION "2012-11-05"

/* "sqs.REGION.amazonaws.com[.cn]" or "REGION.queue.amazonaws.com[.cn]". */
int sqs_region_of_url(const char *queue_url, struct buf *out)
{
	const char *h = strstr(queue_url, "://");
	if (!h)
		return -ENOENT;
	h += 3;
	size_t hl = strcspn(h, "/:?#");
	const char *dot = memchr(h, '.', hl);
	if (!dot)
		return -ENOENT;
	const char *rest = dot + 1;
	size_t rl = hl - (size_t)(rest - h);
	if (!strncmp(h, "sqs.", 4)) {
		const char *d2 = memchr(rest, '.', rl);
		if (!d2 || strncmp(d2, ".amazonaws.com", 14))
			return -ENOENT;
		buf_add(out, rest, (size_t)(d2 - rest));
		return 0;
	}
	if (rl >= 19 && !strncmp(rest, "queue.amazonaws.com", 19)) {
		buf_add(out, h, (size_t)(dot - h));
		return 0;
	}
	return -ENOENT;
}

struct sqs_client *sqs_client_new(const struct sqs_config *cfg)
{
	if (!cfg || !cfg->queue_url || !cfg->http)
		return NULL;
	const char *u = cfg->queue_url;
	const char *h = strstr(u, "://");
	if (!h)
		return NULL;
	size_t hl = strcspn(h + 3, "/?#");
	struct buf ep = BUF_INIT, region = BUF_INIT;
	buf_add(&ep, u, (size_t)(h + 3 - u) + hl);
	if (cfg->region && *cfg->region)
		buf_adds(&region, cfg->region);
	else if (sqs_region_of_url(u, &region))
		buf_adds(&region, "us-east-1");
	struct awsapi_config ac = {
	    .name = cfg->name,
	    .client = "sqs",
	    .service = "sqs",
	    .target_prefix = "AmazonSQS.",
	    .json_version = "1.0",
	    .region = buf_str(&region),
	    .endpoint = buf_str(&ep),
	    .creds = cfg->creds,
	    .http = cfg->http,
	    .retry = cfg->retry,
	};
	struct awsapi *api = awsapi_new(&ac);
	ac.endpoint = u; /* the query protocol posts to the queue itself */
	struct awsapi *qapi = api ? awsapi_new(&ac) : NULL;
	buf_release(&ep);
	buf_release(&region);
	if (!api || !qapi) {
		awsapi_free(api);
		return NULL;
	}
	struct sqs_client *c = xcalloc(1, sizeof(*c));
	c->api = api;
	c->qapi = qapi;
	c->name = xstrdup(cfg->name ? cfg->name : u);
	c->queue_url = xstrdup(u);
	return c;
}

void sqs_client_free(struct sqs_client *c)
{
	if (!c)
		return;
	awsapi_free(c->api);
	awsapi_free(c->qapi);
	free(c->name);
	free(c->queue_url);
	free(c);
}

uint64_t sqs_client_requests(const struct sqs_client *c)
{
	return atomic_load(&((struct sqs_client *)c)->requests);
}

void sqs_messages_free(struct sqs_message *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].id);
		free(m[i].receipt);
		free(m[i].body);
	}
	free(m);
}

/* ---- the query protocol: the JSON request as form parameters, the XML
 * answer as the JSON one would be ---- */

/* "AttributeNames" -> "AttributeName.N", "Entries" -> "<Op>RequestEntry.N.F". */
static void query_params(const char *op, const json_t *req, struct buf *store)
{
	const char *name;
	const json_t *v;
	json_object_foreach((json_t *)req, name, v)
	{
		if (!strcmp(name, "QueueUrl"))
			continue; /* the request goes to the queue's URL */
		if (json_is_array(v) && !strcmp(name, "Entries")) {
			for (size_t i = 0; i < json_array_size(v); i++) {
				const char *f;
				const json_t *fv;
				json_object_foreach(json_array_get(v, i), f, fv)
				{
					buf_addf(store, "%sRequestEntry.%zu.%s", op, i + 1, f);
					buf_addch(store, '\0');
					if (json_is_integer(fv))
						buf_addf(store, "%lld",
							 (long long)json_integer_value(fv));
					else
						buf_adds(store, json_string_value(fv));
					buf_addch(store, '\0');
				}
			}
		} else if (json_is_array(v)) {
			size_t nl = strlen(name) - (name[strlen(name) - 1] == 's');
			for (size_t i = 0; i < json_array_size(v); i++) {
				buf_addf(store, "%.*s.%zu", (int)nl, name, i + 1);
				buf_addch(store, '\0');
				buf_adds(store, json_string_value(json_array_get(v, i)));
				buf_addch(store, '\0');
			}
		} else {
			buf_adds(store, name);
			buf_addch(store, '\0');
			if (json_is_integer(v))
				buf_addf(store, "%lld", (long long)json_integer_value(v));
			else
				buf_adds(store, json_string_value(v));
			buf_addch(store, '\0');
		}
	}
}

/* <Attribute><Name/><Value/></Attribute>... under n as an object. */
static json_t *query_attributes(const struct xmlnode *n)
{
	json_t *a = json_object();
	for (const struct xmlnode *x = xmlnode_child(n, "Attribute"); x;
	     x = xmlnode_next(x, "Attribute")) {
		const char *k = xmlnode_text_at(x, "Name"), *v = xmlnode_text_at(x, "Value");
		if (k && v)
			json_object_set_new(a, k, json_string(v));
	}
	return a;
}

static json_t *query_answer(const char *op, const struct xmlnode *root)
{
	struct buf path = BUF_INIT;
	buf_addf(&path, "%sResult", op);
	const struct xmlnode *res = xmlnode_at(root, buf_str(&path));
	buf_release(&path);
	json_t *ans = json_object();
	if (!strcmp(op, "ReceiveMessage")) {
		json_t *msgs = json_array();
		for (const struct xmlnode *m = xmlnode_child(res, "Message"); m;
		     m = xmlnode_next(m, "Message")) {
			json_t *j = json_pack("{s:o}", "Attributes", query_attributes(m));
			const char *f[] = {"MessageId", "ReceiptHandle", "Body"};
			for (size_t i = 0; i < 3; i++) {
				const char *t = xmlnode_text_at(m, f[i]);
				if (t)
					json_object_set_new(j, f[i], json_string(t));
			}
			json_array_append_new(msgs, j);
		}
		json_object_set_new(ans, "Messages", msgs);
	} else if (!strcmp(op, "GetQueueAttributes")) {
		json_object_set_new(ans, "Attributes", query_attributes(res));
	} else {
		json_t *failed = json_array();
		for (const struct xmlnode *e = xmlnode_child(res, "BatchResultErrorEntry"); e;
		     e = xmlnode_next(e, "BatchResultErrorEntry"))
			json_array_append_new(
			    failed, json_pack("{s:s?, s:s?}", "Code", xmlnode_text_at(e, "Code"),
					      "Message", xmlnode_text_at(e, "Message")));
		json_object_set_new(ans, "Failed", failed);
	}
	return ans;
}

static int call_query(struct sqs_client *c, const char *op, const json_t *req, json_t **out,
		      struct dth_err *err)
{
	struct buf store = BUF_INIT, answer = BUF_INIT;
	query_params(op, req, &store);
	size_t n = 0;
	for (size_t i = 0; i < store.len; i++)
		n += store.data[i] == '\0';
	const char **params = xcalloc(n ? n : 1, sizeof(*params));
	for (size_t i = 0, off = 0; i < n; i++) {
		params[i] = store.data + off;
		off += strlen(params[i]) + 1;
	}
	struct awsapi_call k = {op, c->queue_url, NULL, false, &c->requests};
	int rc = awsapi_query(c->qapi, &k, QUERY_VERSION, params, n / 2, &answer, err);
	struct xmltree *t = NULL;
	if (!rc && (rc = xmltree_parse(answer.data ? answer.data : "", answer.len, &t, err)))
		err_prefix(err, "%s %s: the answer", op, c->name);
	if (!rc)
		*out = query_answer(op, xmltree_root(t));
	xmltree_free(t);
	free(params);
	buf_release(&store);
	buf_release(&answer);
	return rc;
}

/* JSON unless the queue's service turned out to speak only the query
 * protocol; the first call finds out. req is stolen. */
static int call(struct sqs_client *c, const char *op, json_t *req, json_t **out,
		struct dth_err *err)
{
	*out = NULL;
	int proto = atomic_load(&c->proto);
	int rc;
	if (proto == PROTO_QUERY) {
		rc = call_query(c, op, req, out, err);
	} else {
		struct awsapi_call k = {op, c->queue_url, req, false, &c->requests};
		rc = awsapi_json(c->api, &k, out, err);
		int st = err->http_status;
		if (rc && proto == PROTO_UNKNOWN && ((st >= 400 && st < 500) || st == 501)) {
			struct dth_err qe;
			err_clear(&qe);
			if (call_query(c, op, req, out, &qe) == 0) {
				atomic_store(&c->proto, PROTO_QUERY);
				log_info("sqs: %s: the queue's service speaks the query protocol",
					 c->name);
				rc = 0;
			}
		} else if (!rc) {
			atomic_store(&c->proto, PROTO_JSON);
		}
	}
	json_decref(req);
	return rc;
}

/* One message of a ReceiveMessage answer; false when it lacks a part. */
static bool message_of(const json_t *j, struct sqs_message *m)
{
	const char *id = json_string_value(json_object_get(j, "MessageId"));
	const char *rh = json_string_value(json_object_get(j, "ReceiptHandle"));
	const json_t *body = json_object_get(j, "Body");
	if (!id || !rh || !json_is_string(body))
		return false;
	m->id = xstrdup(id);
	m->receipt = xstrdup(rh);
	m->body_len = json_string_length(body);
	m->body = xmalloc(m->body_len + 1);
	memcpy(m->body, json_string_value(body), m->body_len);
	m->body[m->body_len] = '\0';
	const char *rc = json_string_value(
	    json_object_get(json_object_get(j, "Attributes"), "ApproximateReceiveCount"));
	m->receives = rc ? (unsigned)strtoul(rc, NULL, 10) : 0;
	return true;
}

int sqs_receive(struct sqs_client *c, unsigned max, unsigned wait_s, unsigned visibility_s,
		struct sqs_message **out, size_t *n, struct dth_err *err)
{
	*out = NULL;
	*n = 0;
	json_t *req = json_pack(
	    "{s:s, s:i, s:i, s:[s], s:[s]}", "QueueUrl", c->queue_url, "MaxNumberOfMessages",
	    (int)(max < 1    ? 1
		  : max > 10 ? 10
			     : max),
	    "WaitTimeSeconds", (int)(wait_s > 20 ? 20 : wait_s), "AttributeNames",
	    "ApproximateReceiveCount", "MessageSystemAttributeNames", "ApproximateReceiveCount");
	if (visibility_s)
		json_object_set_new(req, "VisibilityTimeout", json_integer(visibility_s));
	json_t *ans;
	int rc = call(c, "ReceiveMessage", req, &ans, err);
	if (rc)
		return rc;
	const json_t *msgs = json_object_get(ans, "Messages");
	size_t k = json_array_size(msgs);
	struct sqs_message *m = xcalloc(k ? k : 1, sizeof(*m));
	size_t got = 0;
	for (size_t i = 0; i < k; i++)
		if (message_of(json_array_get(msgs, i), &m[got]))
			got++;
		else
			log_warn("sqs: %s: a message without id, receipt or body: skipped",
				 c->name);
	json_decref(ans);
	*out = m;
	*n = got;
	return 0;
}

int sqs_visibility(struct sqs_client *c, unsigned *seconds, struct dth_err *err)
{
	json_t *req = json_pack("{s:s, s:[s]}", "QueueUrl", c->queue_url, "AttributeNames",
				"VisibilityTimeout");
	json_t *ans;
	int rc = call(c, "GetQueueAttributes", req, &ans, err);
	if (rc)
		return rc;
	const char *v = json_string_value(
	    json_object_get(json_object_get(ans, "Attributes"), "VisibilityTimeout"));
	char *end = NULL;
	unsigned long n = v ? strtoul(v, &end, 10) : 0;
	if (!v || end == v || *end || n > 43200)
		rc = err_set(err, -EPROTO,
			     "GetQueueAttributes %s: no VisibilityTimeout in the answer", c->name);
	else
		*seconds = (unsigned)n;
	json_decref(ans);
	return rc;
}

/* The entries that failed in a batch answer: the first one's error in err. */
static int batch_failed(const struct sqs_client *c, const char *op, const json_t *ans,
			struct dth_err *err)
{
	const json_t *failed = json_object_get(ans, "Failed");
	if (!json_array_size(failed))
		return 0;
	const json_t *f = json_array_get(failed, 0);
	const char *code = json_string_value(json_object_get(f, "Code"));
	const char *msg = json_string_value(json_object_get(f, "Message"));
	return err_set(err, -EIO, "%s %s: %zu entries failed, the first: %s%s%s", op, c->name,
		       json_array_size(failed), code ? code : "?", msg ? ": " : "", msg ? msg : "");
}

static int batch(struct sqs_client *c, const char *op, const char *const *receipts, size_t n,
		 int visibility_s, struct dth_err *err)
{
	int first = 0;
	for (size_t off = 0; off < n; off += BATCH_MAX) {
		json_t *entries = json_array();
		for (size_t i = off; i < n && i < off + BATCH_MAX; i++) {
			char id[24];
			xsnprintf(id, sizeof(id), "m%zu", i - off);
			json_t *e = json_pack("{s:s, s:s}", "Id", id, "ReceiptHandle", receipts[i]);
			if (visibility_s >= 0)
				json_object_set_new(e, "VisibilityTimeout",
						    json_integer(visibility_s));
			json_array_append_new(entries, e);
		}
		json_t *req = json_pack("{s:s, s:o}", "QueueUrl", c->queue_url, "Entries", entries);
		json_t *ans = NULL;
		struct dth_err e1;
		err_clear(&e1);
		int rc = call(c, op, req, &ans, &e1);
		if (!rc)
			rc = batch_failed(c, op, ans, &e1);
		json_decref(ans);
		if (rc && !first) {
			first = rc;
			*err = e1;
		}
	}
	return first;
}

int sqs_delete(struct sqs_client *c, const char *const *receipts, size_t n, struct dth_err *err)
{
	err_clear(err);
	return batch(c, "DeleteMessageBatch", receipts, n, -1, err);
}

int sqs_extend(struct sqs_client *c, const char *const *receipts, size_t n, unsigned visibility_s,
	       struct dth_err *err)
{
	err_clear(err);
	return batch(c, "ChangeMessageVisibilityBatch", receipts, n, (int)visibility_s, err);
}
