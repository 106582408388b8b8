/* Unit tests of agent/evparse.c: S3 records as AWS, MinIO and Ceph radosgw
 * send them (form-encoded keys or not), SNS envelopes, test events, other
 * event types, registry notifications, and bodies that are not events. */
#include "common/compat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/evparse.h"
#include "common/buf.h"
#include "tests/unit/tap.h"

struct seen {
	unsigned n;
	char line[8][128];
};

static int cb(void *ctx, const struct evparse_item *it)
{
	struct seen *s = ctx;
	if (s->n < 8)
		snprintf(s->line[s->n], sizeof(s->line[0]), "%d %s %.*s|%s|%s|%lld|%s",
			 (int)it->kind, it->bucket, (int)it->key_len, it->key, it->sequencer,
			 it->host, (long long)it->size, it->etag);
	s->n++;
	return 0;
}

static int stop_cb(void *ctx, const struct evparse_item *it)
{
	(void)ctx;
	(void)it;
	return -ECANCELED;
}

static int s3(const char *body, struct seen *s, unsigned *ign, struct dth_err *e)
{
	memset(s, 0, sizeof(*s));
	*ign = 0;
	return evparse_s3(body, strlen(body), cb, s, ign, e);
}

#define REC(src, name, key, seq)                                                                   \
	"{\"eventSource\":\"" src "\",\"eventName\":\"" name "\",\"s3\":{\"bucket\":{\"name\":"    \
	"\"bk\"},\"object\":{\"key\":\"" key                                                       \
	"\",\"size\":3,\"eTag\":\"\\\"0a1b-2\\\"\",\"sequencer\":\"" seq "\"}}}"

static void test_s3(void)
{
	struct seen s;
	unsigned ign;
	struct dth_err e;
	const char *aws =
	    "{\"Records\":[" REC("aws:s3", "ObjectCreated:Put", "a+b%2Bc/%C3%A9", "0A1") "," REC(
		"aws:s3", "ObjectRemoved:Delete", "x",
		"0A2") "," REC("aws:s3", "ObjectRestore:Completed", "y", "") "]}";
	is_int(s3(aws, &s, &ign, &e), 2, "s3: two records given");
	is_str(s.line[0], "1 bk a b+c/\xc3\xa9|0A1||3|0a1b-2", "s3: AWS key form-decoded");
	is_str(s.line[1], "2 bk x|0A2||-1|", "s3: removed");
	is_int(ign, 1, "s3: restore ignored");
	const char *ceph = "{\"Records\":[" REC("ceph:s3", "ObjectCreated:Put", "a+b%2B", "") "]}";
	is_int(s3(ceph, &s, &ign, &e), 1, "s3: radosgw record");
	is_str(s.line[0], "1 bk a+b%2B|||3|0a1b-2", "s3: radosgw key taken as it is");
	const char *minio =
	    "{\"Records\":[" REC("minio:s3", "s3:ObjectCreated:Put", "d%2Fe", "") "]}";
	is_int(s3(minio, &s, &ign, &e), 1, "s3: MinIO record with s3: prefix");
	is_str(s.line[0], "1 bk d/e|||3|0a1b-2", "s3: MinIO key decoded");
	is_int(s3("{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"bk\"}", &s,
		  &ign, &e),
	       0, "s3: test event: nothing");
	const char *sns =
	    "{\"Type\":\"Notification\",\"Message\":\"{\\\"Records\\\":[{\\\"eventName\\\":"
	    "\\\"ObjectCreated:Copy\\\",\\\"s3\\\":{\\\"bucket\\\":{\\\"name\\\":\\\"bk\\\"},"
	    "\\\"object\\\":{\\\"key\\\":\\\"in+sns\\\"}}}]}\"}";
	is_int(s3(sns, &s, &ign, &e), 1, "s3: inside an SNS envelope");
	is_str(s.line[0], "1 bk in sns|||-1|", "s3: envelope's record");
	const char *odd =
	    "{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":"
	    "{\"name\":\"bk\"},\"object\":{\"key\":\"k\",\"size\":-4,\"eTag\":"
	    "\"0a\"}}},{\"eventName\":\"ObjectCreated:Put\",\"s3\":{\"bucket\":{\"name\":"
	    "\"bk\"},\"object\":{\"key\":\"k\",\"size\":4,\"eTag\":\"<x>\"}}}]}";
	is_int(s3(odd, &s, &ign, &e), 2, "s3: records with odd sizes or etags");
	ok(!strcmp(s.line[0], "1 bk k|||-1|") && !strcmp(s.line[1], "1 bk k|||-1|"),
	   "s3: no hint from a negative size or a non-hex etag (%s, %s)", s.line[0], s.line[1]);
	/* refused */
	is_int(s3("not json", &s, &ign, &e), -EINVAL, "s3: not JSON refused");
	ok(strstr(e.message, "not JSON") != NULL, "s3: says so (%s)", e.message);
	is_int(s3("[1]", &s, &ign, &e), -EINVAL, "s3: an array refused");
	is_int(s3("{\"Records\":{}}", &s, &ign, &e), -EINVAL, "s3: Records not an array");
	is_int(s3("{\"x\":1}", &s, &ign, &e), -EINVAL, "s3: no Records");
	is_int(s3("{\"Records\":[1]}", &s, &ign, &e), -EINVAL, "s3: a record not an object");
	is_int(s3("{\"Records\":[" REC("aws:s3", "ObjectCreated:Put", "bad%zz", "") "]}", &s, &ign,
		  &e),
	       -EINVAL, "s3: a bad escape refused");
	is_int(s3("{\"Records\":[{\"eventName\":\"ObjectCreated:Put\",\"s3\":{}}]}", &s, &ign, &e),
	       -EINVAL, "s3: no key refused");
	ok(strstr(e.message, "Records[0]") != NULL, "s3: names the record (%s)", e.message);
	is_int(s3("{\"Records\":[" REC("aws:s3", "ObjectCreated:Put", "", "") "]}", &s, &ign, &e),
	       -EINVAL, "s3: an empty key refused");
	is_int(s3("{\"Records\":[],\"Records\":[]}", &s, &ign, &e), -EINVAL,
	       "s3: duplicate members refused");
	is_int(evparse_s3(aws, strlen(aws), stop_cb, NULL, NULL, &e), -ECANCELED,
	       "s3: the callback's error stops");
	static char big[EVPARSE_BODY_MAX + 2];
	memset(big, ' ', sizeof(big));
	is_int(evparse_s3(big, sizeof(big), cb, &s, NULL, &e), -EFBIG, "s3: too large refused");
	/* a NUL in a decoded key is given with its length */
	is_int(
	    s3("{\"Records\":[" REC("aws:s3", "ObjectCreated:Put", "a%00b", "") "]}", &s, &ign, &e),
	    1, "s3: a NUL decoded");
}

static void test_registry(void)
{
	struct seen s;
	unsigned ign = 0;
	struct dth_err e;
	const char *body =
	    "{\"events\":[{\"action\":\"push\",\"target\":{\"repository\":\"lib/a\",\"tag\":\"v1\","
	    "\"digest\":\"sha256:00\"},\"request\":{\"host\":\"127.0.0.1:5011\"}},"
	    "{\"action\":\"push\",\"target\":{\"repository\":\"lib/a\",\"digest\":\"sha256:01\"}},"
	    "{\"action\":\"pull\",\"target\":{\"repository\":\"lib/a\",\"tag\":\"v1\"}},"
	    "{\"action\":\"delete\",\"target\":{\"repository\":\"lib/a\",\"tag\":\"v1\"}}]}";
	memset(&s, 0, sizeof(s));
	is_int(evparse_registry(body, strlen(body), cb, &s, &ign, &e), 1, "registry: one push");
	is_str(s.line[0], "3 lib/a v1||127.0.0.1:5011|-1|", "registry: repo, tag and host");
	is_int(ign, 3, "registry: untagged push, pull and delete ignored");
	const char *bad = "{\"events\":[{\"action\":\"push\",\"target\":{\"tag\":\"v1\"}}]}";
	is_int(evparse_registry(bad, strlen(bad), cb, &s, &ign, &e), -EINVAL,
	       "registry: no repository refused");
	is_int(evparse_registry("{}", 2, cb, &s, &ign, &e), -EINVAL, "registry: no events refused");
	is_int(evparse_registry("{\"events\":[]}", 13, cb, &s, &ign, &e), 0,
	       "registry: no event, nothing");
}

int main(void)
{
	test_s3();
	test_registry();
	return tap_done();
}
