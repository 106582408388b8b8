/* Unit tests of remote/sqs.c and remote/sns.c against the fake peer: the
 * requests they send (target, content type, body), the answers they read,
 * batch failures, regions from queue URLs and topic ARNs, and SNS's query
 * protocol (form body, MessageId, XML errors). */
#include "common/compat.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "remote/http.h"
#include "remote/sns.h"
#include "remote/sqs.h"
#include "remote/xmltree.h"
#include "common/util.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

static struct peer *peer;
static struct http_engine *http;

static void script1(int status, const char *body)
{
	struct peer_answer a = {.status = status, .body = body};
	peer_script(peer, &a, 1);
}

static json_t *req_json(size_t i)
{
	const struct peer_request *rq = peer_request(peer, i);
	return rq ? json_loadb(rq->body, rq->body_len, 0, NULL) : NULL;
}

static void test_regions(void)
{
	struct buf b = BUF_INIT;
	is_int(sqs_region_of_url("https://sqs.eu-west-3.amazonaws.com/1/q", &b), 0, "sqs region");
	is_str(buf_str(&b), "eu-west-3", "sqs.REGION.amazonaws.com");
	buf_reset(&b);
	is_int(sqs_region_of_url("https://sqs.cn-north-1.amazonaws.com.cn/1/q", &b), 0, "china");
	is_str(buf_str(&b), "cn-north-1", "china region");
	buf_reset(&b);
	is_int(sqs_region_of_url("https://us-east-2.queue.amazonaws.com/1/q", &b), 0, "legacy");
	is_str(buf_str(&b), "us-east-2", "REGION.queue.amazonaws.com");
	buf_reset(&b);
	is_int(sqs_region_of_url("http://127.0.0.1:5000/1/q", &b), -ENOENT, "none in an IP");
	is_int(sns_topic_region("arn:aws:sns:ap-south-1:123:t", &b), 0, "topic region");
	is_str(buf_str(&b), "ap-south-1", "from the ARN");
	buf_reset(&b);
	is_int(sns_topic_region("arn:aws:sqs:ap-south-1:123:t", &b), -EINVAL, "not sns");
	is_int(sns_topic_region("arn:aws:sns:ap-south-1", &b), -EINVAL, "too short");
	buf_release(&b);
}

static struct sqs_client *sqs_open(void)
{
	struct buf u = BUF_INIT;
	buf_addf(&u, "%s/123456789012/q", peer_url(peer));
	struct sqs_config c = {"t", buf_str(&u), NULL, NULL, http, {1, 1, 1}};
	struct sqs_client *q = sqs_client_new(&c);
	buf_release(&u);
	return q;
}

static void test_receive(void)
{
	struct sqs_client *q = sqs_open();
	ok(q != NULL, "client");
	script1(200, "{\"Messages\":[{\"MessageId\":\"m1\",\"ReceiptHandle\":\"r1\",\"Body\":\"b"
		     "\\u00e9\",\"Attributes\":{\"ApproximateReceiveCount\":\"3\"}},"
		     "{\"MessageId\":\"m2\",\"Body\":\"no receipt\"}]}");
	struct sqs_message *m;
	size_t n;
	struct dth_err err;
	is_int(sqs_receive(q, 10, 20, 0, &m, &n, &err), 0, "receive");
	ok(n == 1 && !strcmp(m[0].id, "m1") && !strcmp(m[0].receipt, "r1") && m[0].body_len == 3 &&
	       m[0].receives == 3,
	   "one whole message, the broken one skipped");
	sqs_messages_free(m, n);
	char v[128];
	const struct peer_request *rq = peer_request(peer, 0);
	ok(rq && !strcmp(rq->method, "POST") &&
	       !strcmp(peer_req_header(rq, "X-Amz-Target", v, sizeof(v)),
		       "AmazonSQS.ReceiveMessage"),
	   "X-Amz-Target");
	ok(!strcmp(peer_req_header(rq, "Content-Type", v, sizeof(v)), "application/x-amz-json-1.0"),
	   "JSON 1.0");
	json_t *j = req_json(0);
	ok(json_integer_value(json_object_get(j, "WaitTimeSeconds")) == 20 &&
	       json_integer_value(json_object_get(j, "MaxNumberOfMessages")) == 10 &&
	       !json_object_get(j, "VisibilityTimeout") &&
	       strstr(json_string_value(json_object_get(j, "QueueUrl")), "/123456789012/q"),
	   "the request's fields");
	json_decref(j);
	script1(200, "{}");
	is_int(sqs_receive(q, 10, 1, 0, &m, &n, &err), 0, "an empty answer");
	is_int((int)n, 0, "no message");
	sqs_messages_free(m, n);
	script1(400, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}");
	ok(sqs_receive(q, 10, 1, 0, &m, &n, &err) < 0 && strstr(err.message, "gone"),
	   "an error names the service's message (%s)", err.message);
	sqs_client_free(q);
}

static void test_batches(void)
{
	struct sqs_client *q = sqs_open();
	const char *r[12];
	for (int i = 0; i < 12; i++)
		r[i] = "rh";
	struct peer_answer a[2] = {{.status = 200, .body = "{\"Successful\":[]}"},
				   {.status = 200, .body = "{\"Successful\":[]}"}};
	peer_script(peer, a, 2);
	struct dth_err err;
	is_int(sqs_delete(q, r, 12, &err), 0, "delete 12");
	is_int((int)peer_count(peer), 2, "in two batches of at most 10");
	json_t *j = req_json(1);
	is_int((int)json_array_size(json_object_get(j, "Entries")), 2, "the second has 2");
	json_decref(j);
	script1(200, "{\"Failed\":[{\"Id\":\"m0\",\"Code\":\"ReceiptHandleIsInvalid\"}]}");
	ok(sqs_delete(q, r, 1, &err) < 0 && strstr(err.message, "ReceiptHandleIsInvalid"),
	   "a failed entry is an error (%s)", err.message);
	script1(200, "{}");
	is_int(sqs_extend(q, r, 1, 30, &err), 0, "extend");
	j = req_json(0);
	char v[128];
	ok(!strcmp(peer_req_header(peer_request(peer, 0), "X-Amz-Target", v, sizeof(v)),
		   "AmazonSQS.ChangeMessageVisibilityBatch") &&
	       json_integer_value(json_object_get(json_array_get(json_object_get(j, "Entries"), 0),
						  "VisibilityTimeout")) == 30,
	   "ChangeMessageVisibilityBatch with the timeout");
	json_decref(j);
	script1(200, "{\"Attributes\":{\"VisibilityTimeout\":\"45\"}}");
	unsigned vis = 0;
	ok(sqs_visibility(q, &vis, &err) == 0 && vis == 45, "the queue's visibility timeout");
	script1(200, "{\"Attributes\":{}}");
	is_int(sqs_visibility(q, &vis, &err), -EPROTO, "none in the answer");
	sqs_client_free(q);
}

static void test_sns(void)
{
	struct sns_config c = {"t", peer_url(peer), "us-east-1", NULL, http, {1, 1, 1}};
	struct sns_client *s = sns_client_new(&c);
	ok(s != NULL, "sns client");
	script1(200, "<PublishResponse><PublishResult><MessageId>abc-1</MessageId></PublishResult>"
		     "</PublishResponse>");
	struct buf id = BUF_INIT;
	struct dth_err err;
	is_int(sns_publish(s, "arn:aws:sns:us-east-1:1:t", "dth: x", "{\"a\": \"b&c\"}", &id, &err),
	       0, "publish");
	is_str(buf_str(&id), "abc-1", "MessageId read");
	const struct peer_request *rq = peer_request(peer, 0);
	char v[128];
	ok(!strcmp(peer_req_header(rq, "Content-Type", v, sizeof(v)),
		   "application/x-www-form-urlencoded; charset=utf-8") &&
	       !peer_req_header(rq, "X-Amz-Target", v, sizeof(v)),
	   "a form, no X-Amz-Target");
	struct buf body = BUF_INIT;
	buf_add(&body, rq->body, rq->body_len);
	ok(strstr(buf_str(&body), "Action=Publish&Version=2010-03-31") &&
	       strstr(buf_str(&body), "TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At") &&
	       strstr(buf_str(&body), "Message=%7B%22a%22%3A%20%22b%26c%22%7D") &&
	       strstr(buf_str(&body), "Subject=dth%3A%20x"),
	   "the form's fields encoded (%s)", buf_str(&body));
	buf_release(&body);
	script1(404, "<ErrorResponse><Error><Code>NotFound</Code><Message>Topic does not "
		     "exist</Message></Error></ErrorResponse>");
	buf_reset(&id);
	ok(sns_publish(s, "arn:aws:sns:us-east-1:1:t", NULL, "m", &id, &err) == -ENOENT &&
	       strstr(err.message, "Topic does not exist"),
	   "an XML error (%s)", err.message);
	buf_release(&id);
	sns_client_free(s);
}

static void test_query_protocol(void)
{
	struct sqs_client *q = sqs_open();
	struct peer_answer a[5] = {
	    {.status = 400,
	     .body = "<ErrorResponse><Error><Code>MissingAction</Code><Message>no Action"
		     "</Message></Error></ErrorResponse>"},
	    {.status = 200,
	     .body = "<GetQueueAttributesResponse><GetQueueAttributesResult><Attribute><Name>"
		     "VisibilityTimeout</Name><Value>7</Value></Attribute>"
		     "</GetQueueAttributesResult></GetQueueAttributesResponse>"},
	    {.status = 200,
	     .body =
		 "<ReceiveMessageResponse><ReceiveMessageResult><Message><MessageId>q1"
		 "</MessageId><ReceiptHandle>rh&amp;1</ReceiptHandle><Body>{&quot;Records"
		 "&quot;:[]}</Body><Attribute><Name>ApproximateReceiveCount</Name><Value>2"
		 "</Value></Attribute></Message></ReceiveMessageResult></ReceiveMessageResponse>"},
	    {.status = 200,
	     .body = "<DeleteMessageBatchResponse><DeleteMessageBatchResult>"
		     "<BatchResultErrorEntry><Id>m0</Id><Code>ReceiptHandleIsInvalid</Code>"
		     "<SenderFault>true</SenderFault></BatchResultErrorEntry>"
		     "</DeleteMessageBatchResult></DeleteMessageBatchResponse>"},
	    {.status = 200, .body = "<ChangeMessageVisibilityBatchResponse/>"}};
	peer_script(peer, a, 5);
	struct dth_err err;
	unsigned vis = 0;
	is_int(sqs_visibility(q, &vis, &err), 0, "query: JSON refused, the query protocol answers");
	is_int((int)vis, 7, "query: the visibility timeout read from XML");
	const struct peer_request *rq = peer_request(peer, 1);
	struct buf body = BUF_INIT;
	buf_add(&body, rq->body, rq->body_len);
	char v[128];
	ok(strstr(rq->target, "/123456789012/q") &&
	       !peer_req_header(rq, "X-Amz-Target", v, sizeof(v)) &&
	       strstr(buf_str(&body), "Action=GetQueueAttributes&Version=2012-11-05") &&
	       strstr(buf_str(&body), "AttributeName.1=VisibilityTimeout") &&
	       !strstr(buf_str(&body), "QueueUrl"),
	   "query: a form to the queue's URL (%s)", buf_str(&body));
	buf_release(&body);
	struct sqs_message *m;
	size_t n;
	is_int(sqs_receive(q, 10, 1, 0, &m, &n, &err), 0, "query: receive");
	ok(n == 1 && !strcmp(m[0].receipt, "rh&1") && !strcmp(m[0].body, "{\"Records\":[]}") &&
	       m[0].receives == 2,
	   "query: the message, its escapes decoded");
	sqs_messages_free(m, n);
	rq = peer_request(peer, 2);
	body = (struct buf)BUF_INIT;
	buf_add(&body, rq->body, rq->body_len);
	ok(strstr(buf_str(&body), "Action=ReceiveMessage") &&
	       strstr(buf_str(&body), "MaxNumberOfMessages=10") &&
	       strstr(buf_str(&body), "WaitTimeSeconds=1") &&
	       strstr(buf_str(&body), "MessageSystemAttributeName.1=ApproximateReceiveCount"),
	   "query: ReceiveMessage's parameters (%s)", buf_str(&body));
	buf_release(&body);
	const char *r[1] = {"rh&1"};
	ok(sqs_delete(q, r, 1, &err) < 0 && strstr(err.message, "ReceiptHandleIsInvalid"),
	   "query: a failed entry is an error (%s)", err.message);
	rq = peer_request(peer, 3);
	body = (struct buf)BUF_INIT;
	buf_add(&body, rq->body, rq->body_len);
	ok(strstr(buf_str(&body), "DeleteMessageBatchRequestEntry.1.ReceiptHandle=rh%261") &&
	       strstr(buf_str(&body), "DeleteMessageBatchRequestEntry.1.Id=m0"),
	   "query: batch entries (%s)", buf_str(&body));
	buf_release(&body);
	is_int(sqs_extend(q, r, 1, 9, &err), 0, "query: extend");
	is_int((int)peer_count(peer), 5, "query: one request each after the switch");
	sqs_client_free(q);
}

static void test_xmltree(void)
{
	static const struct {
		const char *xml;
		int rc;
		const char *what;
	} cases[] = {
	    {"<a><b>x</b><b>y</b></a>", 0, "fine"},
	    {"<a><b>x</a>", -EPROTO, "malformed"},
	    {"<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", -EPROTO, "a DOCTYPE"},
	    {"", -EPROTO, "empty"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct xmltree *t = NULL;
		struct dth_err err;
		err_clear(&err);
		is_int(xmltree_parse(cases[i].xml, strlen(cases[i].xml), &t, &err), cases[i].rc,
		       "xmltree: %s (%s)", cases[i].what, err.message);
		if (t) {
			const struct xmlnode *b = xmlnode_child(xmltree_root(t), "b");
			ok(b && !strcmp(xmlnode_text(b, NULL), "x") &&
			       !strcmp(xmlnode_text(xmlnode_next(b, "b"), NULL), "y") &&
			       !xmlnode_next(xmlnode_next(b, "b"), "b"),
			   "xmltree: children in order");
		}
		xmltree_free(t);
	}
	struct buf deep = BUF_INIT;
	for (int i = 0; i < XMLTREE_DEPTH_MAX + 1; i++)
		buf_adds(&deep, "<a>");
	for (int i = 0; i < XMLTREE_DEPTH_MAX + 1; i++)
		buf_adds(&deep, "</a>");
	struct xmltree *t = NULL;
	struct dth_err err;
	is_int(xmltree_parse(deep.data, deep.len, &t, &err), -EPROTO, "xmltree: too deep refused");
	buf_release(&deep);
	const char *mixed = "<r><a>one<c/>two</a><x><y>z</y></x></r>";
	is_int(xmltree_parse(mixed, strlen(mixed), &t, &err), 0, "xmltree: mixed text");
	is_str(xmlnode_text_at(xmltree_root(t), "a"), "onetwo",
	       "xmltree: text around a child joined");
	is_str(xmlnode_text_at(xmltree_root(t), "x/y"), "z", "xmltree: a path");
	ok(xmlnode_text_at(xmltree_root(t), "x/q") == NULL, "xmltree: no such path");
	xmltree_free(t);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (http_global_init() != 0)
		return 1;
	struct http_engine_opts ho = {.connect_timeout_ms = 5000, .stall_timeout_s = 5};
	http = http_engine_new(&ho);
	peer = peer_start();
	if (!http || !peer) {
		printf("Bail out! no http engine or peer\n");
		return 1;
	}
	test_regions();
	test_receive();
	test_batches();
	test_sns();
	test_query_protocol();
	test_xmltree();
	peer_stop(peer);
	http_engine_free(http);
	return tap_done();
}
