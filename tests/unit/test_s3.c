/* Pure helpers of the S3 client (ETag shapes, the x-amz-tagging value), and
 * against the scripted peer: the lister, and reads split into ranges. */
#include "common/compat.h"

#include <errno.h>
#include <signal.h>

#include <string.h>

#include "remote/s3.h"
#include "remote/http.h"
#include "remote/retry.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

static void test_etag_parse(void)
{
	unsigned n = 99;
	ok(s3_etag_parse("0123456789abcdef0123456789abcdef", &n) && n == 0, "plain md5");
	ok(s3_etag_parse("0123456789ABCDEF0123456789ABCDEF", &n) && n == 0, "upper-case md5");
	ok(s3_etag_parse("0123456789abcdef0123456789abcdef-128", &n) && n == 128,
	   "multipart etag with its part count");
	ok(s3_etag_parse("0123456789abcdef0123456789abcdef-1", &n) && n == 1, "one part");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcde", &n), "31 digits is no md5");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdefa", &n), "33 digits is no md5");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdeg", &n), "a non-hex digit");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdef-", &n), "a dash without a count");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdef-x1", &n), "a count that is no number");
	ok(!s3_etag_parse("", &n), "empty");
	ok(!s3_etag_parse("W/\"abc\"", &n), "a weak etag");
}

static void test_tags_query(void)
{
	struct s3_kv kv[] = {{(char *)"project", (char *)"dth"},
			     {(char *)"stage", (char *)"two words"},
			     {(char *)"a&b=c", (char *)"ü/+%"}};
	struct s3_tags t = {kv, 3};
	struct buf b = BUF_INIT;
	s3_tags_to_query(&t, &b);
	is_str(b.data, "project=dth&stage=two%20words&a%26b%3Dc=%C3%BC%2F%2B%25",
	       "tags as a url-encoded x-amz-tagging value");
	buf_release(&b);
	struct s3_tags none = {NULL, 0};
	s3_tags_to_query(&none, &b);
	is_str(buf_str(&b), "", "no tags, empty value");
	buf_release(&b);
}

/* ---- the lister against the scripted peer: pages checked whole ---- */

static struct http_engine *http;
static struct peer *peer;

static void no_wait(unsigned ms)
{
	(void)ms;
}

/* A client of the peer: get_range_max as given, attempts per request. */
static struct s3_client *client_with(uint64_t get_range_max, unsigned attempts)
{
	struct s3_config sc = {.name = "peer",
			       .endpoint = peer_url(peer),
			       .region = "us-east-1",
			       .path_style = true,
			       .get_range_max = get_range_max,
			       .http = http,
			       .retry = {attempts, 1, 10}};
	return s3_client_new(&sc);
}

static struct s3_client *client(void)
{
	return client_with(0, 3);
}

/* A ListBucketResult page with keys (NULL-terminated); trunc: "true",
 * "false" or NULL (no IsTruncated); token: NextContinuationToken or NULL. */
static struct peer_answer page(struct buf *b, const char *const *keys, const char *trunc,
			       const char *token)
{
	buf_reset(b);
	buf_adds(b, "<ListBucketResult><EncodingType>url</EncodingType>");
	if (trunc)
		buf_addf(b, "<IsTruncated>%s</IsTruncated>", trunc);
	if (token)
		buf_addf(b, "<NextContinuationToken>%s</NextContinuationToken>", token);
	for (size_t i = 0; keys[i]; i++)
		buf_addf(b,
			 "<Contents><Key>%s</Key><Size>1</Size><ETag>&quot;x&quot;</ETag>"
			 "</Contents>",
			 keys[i]);
	buf_adds(b, "</ListBucketResult>");
	struct peer_answer a = {.status = 200, .body = b->data, .body_len = b->len};
	return a;
}

/* List everything; returns the final rc, *n the entries seen before it. */
static int list_all(const struct s3_list_opts *o, unsigned *n, struct dth_err *err)
{
	struct s3_client *c = client();
	struct s3_lister *l = s3_lister_new(c, "bkt", o);
	const struct s3_list_entry *e;
	int rc;
	*n = 0;
	err_clear(err);
	while ((rc = s3_lister_next(l, &e, err)) == 1)
		(*n)++;
	/* a failed listing stays failed: never 0 afterwards */
	struct dth_err e2;
	err_clear(&e2);
	int again = s3_lister_next(l, &e, &e2);
	if (rc < 0 && again != rc)
		rc = 999;
	s3_lister_free(l);
	s3_client_free(c);
	return rc;
}

static void test_lister(void)
{
	struct buf b1 = BUF_INIT, b2 = BUF_INIT;
	struct dth_err err;
	unsigned n;
	static const char *const p1[] = {"a", "b", NULL}, *const p2[] = {"c", "d", NULL};

	struct peer_answer ok2[] = {page(&b1, p1, "true", "t1"), page(&b2, p2, "false", NULL)};
	peer_script(peer, ok2, 2);
	ok(list_all(NULL, &n, &err) == 0 && n == 4, "two good pages: 4 keys");

	/* Defect 3: a page without IsTruncated is not taken as the last. */
	struct peer_answer nt[] = {page(&b1, p1, NULL, "t1")};
	peer_script(peer, nt, 1);
	int rc = list_all(NULL, &n, &err);
	ok(rc == -EPROTO && n == 0 && strstr(err.message, "IsTruncated"),
	   "no IsTruncated: refused before a key is handed out (%d, %u: %s)", rc, n, err.message);

	/* Defect 2: a page in the wrong order is refused before any of its keys. */
	static const char *const bad[] = {"a", "B", NULL};
	struct peer_answer un[] = {page(&b1, bad, "false", NULL)};
	peer_script(peer, un, 1);
	rc = list_all(NULL, &n, &err);
	ok(rc == -EPROTO && n == 0 && strstr(err.message, "order"),
	   "a, B: refused whole, no key handed out (%d, %u)", rc, n);

	static const char *const back[] = {"b", "c", NULL};
	struct peer_answer gb[] = {page(&b1, p1, "true", "t1"), page(&b2, back, "false", NULL)};
	peer_script(peer, gb, 2);
	rc = list_all(NULL, &n, &err);
	ok(rc == -EPROTO && n == 2,
	   "a page that starts at or before the last key: refused (%d, %u)", rc, n);

	/* A repeated continuation token would loop for ever. */
	struct peer_answer rep[] = {page(&b1, p1, "true", "t1"), page(&b2, p2, "true", "t1")};
	peer_script(peer, rep, 2);
	rc = list_all(NULL, &n, &err);
	ok(rc == -EPROTO && strstr(err.message, "continuation token"),
	   "a repeated continuation token: refused (%s)", err.message);

	/* A key outside the prefix. */
	static const char *const out[] = {"p/a", "q/b", NULL};
	struct peer_answer op[] = {page(&b1, out, "false", NULL)};
	peer_script(peer, op, 1);
	struct s3_list_opts lo = {.prefix = "p/"};
	rc = list_all(&lo, &n, &err);
	ok(rc == -EPROTO && n == 0 && strstr(err.message, "prefix"), "a key outside the prefix");

	/* A page cut short under a matching Content-Length: asked for again. */
	struct buf cut = BUF_INIT;
	struct peer_answer whole = page(&b1, p1, "false", NULL);
	buf_add(&cut, b1.data, b1.len / 2);
	struct peer_answer cs[] = {{.status = 200, .body = cut.data, .body_len = cut.len}, whole};
	peer_script(peer, cs, 2);
	rc = list_all(NULL, &n, &err);
	ok(rc == 0 && n == 2 && peer_count(peer) == 2, "a page cut short is fetched again (%d)",
	   rc);
	buf_release(&cut);
	buf_release(&b1);
	buf_release(&b2);
}

/* ---- reads in ranges (get_range_max) ---- */

#define OBJ_LEN	 (250 * 1024 + 7)
#define OBJ_ETAG "0123456789abcdef0123456789abcdef"

static unsigned char obj[OBJ_LEN];
static int fail_at = -1; /* answer the request with this index 412 */
static unsigned served;

/* A versioned object: ranges honoured, If-Match checked. */
static void serve_ranges(void *ctx, const struct peer_request *rq, struct peer_answer *ans)
{
	(void)ctx;
	char range[64], ifm[64];
	unsigned long long a = 0, b = OBJ_LEN - 1;
	bool ranged = peer_req_header(rq, "Range", range, sizeof(range)) &&
		      sscanf(range, "bytes=%llu-%llu", &a, &b) == 2;
	if ((int)served++ == fail_at || (peer_req_header(rq, "If-Match", ifm, sizeof(ifm)) &&
					 strcmp(ifm, "\"" OBJ_ETAG "\""))) {
		ans->status = 412;
		return;
	}
	if (b >= OBJ_LEN)
		b = OBJ_LEN - 1;
	ans->status = ranged ? 206 : 200;
	peer_add_header(ans, "ETag: \"%s\"", OBJ_ETAG);
	if (ranged)
		peer_add_header(ans, "Content-Range: bytes %llu-%llu/%u", a, b, OBJ_LEN);
	peer_add_body(ans, obj + a, (size_t)(b - a + 1));
}

/* Every request's range is at most max long and they tile [off, off+len). */
static bool ranges_tile(uint64_t off, uint64_t len, uint64_t max)
{
	uint64_t next = off;
	for (size_t i = 0; i < peer_count(peer); i++) {
		char range[64];
		unsigned long long a, b;
		if (!peer_req_header(peer_request(peer, i), "Range", range, sizeof(range)) ||
		    sscanf(range, "bytes=%llu-%llu", &a, &b) != 2 || a != next || b - a + 1 > max)
			return false;
		next = b + 1;
	}
	return next == off + len;
}

static int collect(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
	return 0;
}

static void test_ranged_get(void)
{
	for (size_t i = 0; i < OBJ_LEN; i++)
		obj[i] = (unsigned char)(i * 31 + i / 997);
	peer_set_handler(peer, serve_ranges, NULL);
	struct s3_client *c = client_with(100 * 1024, 1);
	struct buf out = BUF_INIT;
	struct dth_err err;
	struct s3_object_head h;

	buf_adds(&out, "kept");
	served = 0;
	peer_clear(peer);
	int rc = s3_get_object(c, "b", "k", 5, OBJ_LEN - 5, OBJ_ETAG, &out, &h, &err);
	ok(rc == 0 && peer_count(peer) == 3 && ranges_tile(5, OBJ_LEN - 5, 100 * 1024),
	   "a read over get_range_max takes the fewest ranges under it (%d, %zu requests)", rc,
	   peer_count(peer));
	ok(rc == 0 && out.len == 4 + OBJ_LEN - 5 && !memcmp(out.data, "kept", 4) &&
	       !memcmp(out.data + 4, obj + 5, OBJ_LEN - 5),
	   "the ranges' bytes are appended in order");
	ok(rc == 0 && h.size == OBJ_LEN - 5 && h.total_size == OBJ_LEN && !strcmp(h.etag, OBJ_ETAG),
	   "the head describes the whole read");
	if (rc == 0)
		s3_object_head_release(&h);

	buf_setlen(&out, 4);
	peer_clear(peer);
	rc = s3_get_object(c, "b", "k", 0, 100 * 1024, OBJ_ETAG, &out, NULL, &err);
	ok(rc == 0 && peer_count(peer) == 1, "a read of get_range_max is one request");
	buf_setlen(&out, 4);
	peer_clear(peer);
	rc = s3_get_object(c, "b", "k", 0, OBJ_LEN, NULL, &out, NULL, &err);
	ok(rc == 0 && peer_count(peer) == 1 && out.len == 4 + OBJ_LEN,
	   "without If-Match a read is one request (ranges could mix versions)");

	buf_setlen(&out, 4);
	served = 0;
	fail_at = 1;
	peer_clear(peer);
	memset(&h, 0x5a, sizeof(h));
	rc = s3_get_object(c, "b", "k", 0, OBJ_LEN, OBJ_ETAG, &out, &h, &err);
	ok(rc == -ESTALE && peer_count(peer) == 2 && out.len == 4 && h.meta.content_type == NULL &&
	       h.etag[0] == 0,
	   "a version change between ranges: -ESTALE, out and head as before (%d)", rc);

	struct buf got = BUF_INIT;
	served = 0;
	fail_at = -1;
	peer_clear(peer);
	rc = s3_get_object_to(c, "b", "k", 1, OBJ_LEN - 1, OBJ_ETAG, collect, &got, &err);
	ok(rc == 0 && peer_count(peer) == 3 && ranges_tile(1, OBJ_LEN - 1, 100 * 1024) &&
	       got.len == OBJ_LEN - 1 && !memcmp(got.data, obj + 1, OBJ_LEN - 1),
	   "a streamed read takes the same ranges, in order (%d)", rc);
	buf_release(&got);
	s3_client_free(c);

	c = client_with(0, 1);
	buf_setlen(&out, 0);
	peer_clear(peer);
	rc = s3_get_object(c, "b", "k", 0, OBJ_LEN, OBJ_ETAG, &out, NULL, &err);
	ok(rc == 0 && peer_count(peer) == 1 && out.len == OBJ_LEN, "get_range_max 0: one request");
	s3_client_free(c);
	buf_release(&out);
	peer_set_handler(peer, NULL, NULL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_etag_parse();
	test_tags_query();
	if (http_global_init() != 0)
		return 1;
	struct http_engine_opts ho = {.connect_timeout_ms = 5000, .stall_timeout_s = 5};
	http = http_engine_new(&ho);
	peer = peer_start();
	if (!http || !peer) {
		printf("Bail out! no http engine or peer\n");
		return 1;
	}
	retry_set_pause_fn(no_wait);
	test_lister();
	test_ranged_get();
	peer_stop(peer);
	http_engine_free(http);
	return tap_done();
}
