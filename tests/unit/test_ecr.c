/* Unit tests: ECR API client. Endpoint naming (pure); the wire format, SigV4
 * signature, paging, retries and error mapping against a scripted loopback
 * server; and the real API against moto's ECR with moto's SigV4 verification
 * switched on (INITIAL_NO_AUTH_ACTION_COUNT), so wrong keys are refused. */
#include "common/compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/creds.h"
#include "remote/ecr.h"
#include "remote/http.h"
#include "remote/sigv4.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

#define AKID	    "AKIDEXAMPLE"
#define SECRET	    "Sup3rS3cretKeyValue+abc/xyz0123456789ABC"
#define SESSION_TOK "SessionTokenValue+qwerty/123"

static void skip(const char *reason)
{
	printf("ok %d # SKIP %s\n", ++tap_n, reason);
	fflush(stdout);
}

static bool has(const char *hay, const char *needle)
{
	return hay && needle && strstr(hay, needle) != NULL;
}

static struct http_engine *http;

static struct creds_provider *static_creds(const char *ak, const char *sk, const char *tok)
{
	struct dth_err err;
	struct creds_spec spec = {.mode = CREDS_STATIC,
				  .access_key_id = ak,
				  .secret_access_key = sk,
				  .session_token = tok};
	return creds_provider_new(&spec, &err);
}

static struct ecr_client *client(const char *endpoint, const char *region, const char *account,
				 struct creds_provider *cp, unsigned attempts)
{
	struct ecr_config cfg = {.name = "test",
				 .region = region,
				 .account = account,
				 .endpoint = endpoint,
				 .creds = cp,
				 .http = http,
				 .retry = {attempts, 1, 5}};
	return ecr_client_new(&cfg);
}

/* ---- pure: endpoint naming ------------------------------------------------ */

static void test_names(void)
{
	struct buf b = BUF_INIT;
	ok(ecr_region_is_china("cn-north-1") && ecr_region_is_china("cn-northwest-1") &&
	       !ecr_region_is_china("us-east-1") && !ecr_region_is_china("ca-central-1"),
	   "china partition detected by region");
	ok(ecr_api_endpoint("us-east-1", &b) == 0, "api endpoint us-east-1");
	is_str(buf_str(&b), "https://api.ecr.us-east-1.amazonaws.com", "api endpoint global");
	buf_reset(&b);
	ok(ecr_api_endpoint("cn-north-1", &b) == 0, "api endpoint cn-north-1");
	is_str(buf_str(&b), "https://api.ecr.cn-north-1.amazonaws.com.cn", "api endpoint china");
	buf_reset(&b);
	ok(ecr_api_endpoint("cn-northwest-1", &b) == 0, "api endpoint cn-northwest-1");
	is_str(buf_str(&b), "https://api.ecr.cn-northwest-1.amazonaws.com.cn",
	       "api endpoint china (ningxia)");
	buf_reset(&b);
	ok(ecr_registry_host("123456789012", "cn-northwest-1", &b) == 0, "registry host china");
	is_str(buf_str(&b), "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn",
	       "registry host name china");
	buf_reset(&b);
	ok(ecr_registry_host("123456789012", "eu-west-1", &b) == 0, "registry host global");
	is_str(buf_str(&b), "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
	       "registry host name global");
	buf_reset(&b);
	ok(ecr_registry_host("12345", "eu-west-1", &b) == -EINVAL &&
	       ecr_registry_host("12345678901x", "eu-west-1", &b) == -EINVAL &&
	       ecr_registry_host("123456789012", "eu west", &b) == -EINVAL &&
	       ecr_api_endpoint("", &b) == -EINVAL && ecr_api_endpoint("x/y", &b) == -EINVAL &&
	       b.len == 0,
	   "malformed account or region refused");

	struct ecr_client *c = client(NULL, "cn-north-1", "123456789012", NULL, 1);
	ok(c != NULL, "client for cn-north-1");
	is_str(c ? ecr_client_endpoint(c) : NULL, "https://api.ecr.cn-north-1.amazonaws.com.cn",
	       "client endpoint derived for china");
	is_str(c ? ecr_client_account(c) : NULL, "123456789012", "client account");
	ecr_client_free(c);
	c = client("http://127.0.0.1:9/", "us-east-1", NULL, NULL, 1);
	is_str(c ? ecr_client_endpoint(c) : NULL, "http://127.0.0.1:9", "endpoint override used");
	is_str(c ? ecr_client_account(c) : NULL, "", "no account");
	ecr_client_free(c);
	ok(client(NULL, "us-east-1", "1234", NULL, 1) == NULL, "bad account: no client");
	ok(client(NULL, NULL, NULL, NULL, 1) == NULL, "no region: no client");
	ok(client("ftp://x", "us-east-1", NULL, NULL, 1) == NULL, "bad scheme: no client");
	is_str(ecr_req_kind_name(ECR_REQ_AUTH), "auth", "kind name auth");
	is_str(ecr_req_kind_name(ECR_REQ_DESCRIBE_IMAGES), "images", "kind name images");
	buf_release(&b);
}

/* ---- against the scripted peer (tests/unit/peer.h) ----------------------- */

struct fake_resp {
	int status;
	const char *body;
	const char *extra; /* extra header lines ("X: y\r\n"), or NULL */
};

/* Script the peer with JSON 1.1 answers. */
static void fake_script(struct peer *p, const struct fake_resp *r, size_t n)
{
	struct peer_answer a[16];
	memset(a, 0, sizeof(a));
	for (size_t i = 0; i < n && i < ARRAY_SIZE(a); i++) {
		a[i].status = r[i].status;
		a[i].body = r[i].body;
		a[i].headers = r[i].extra;
	}
	peer_script(p, a, n < ARRAY_SIZE(a) ? n : ARRAY_SIZE(a));
}

/* Value of header name in a captured request head (malloc'd), or NULL. */
static char *req_header(const char *head, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *line = p + 2;
		if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;
			while (*v == ' ')
				v++;
			const char *e = strstr(v, "\r\n");
			return xstrndup(v, e ? (size_t)(e - v) : strlen(v));
		}
	}
	return NULL;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

static int collect_repo(void *ctx, const struct ecr_repo *r)
{
	struct buf *b = ctx;
	buf_addf(b, "%s|", r->name);
	return 0;
}

static int count_image(void *ctx, const struct ecr_image *im)
{
	(void)im;
	(*(int *)ctx)++;
	return 0;
}

/* Recompute the SigV4 Authorization of a captured request from its own
 * headers and body; true when it equals what was sent. */
static bool signature_matches(const struct peer_request *r, const char *region)
{
	static const char *const names[] = {"content-type", "host", "x-amz-date",
					    "x-amz-security-token", "x-amz-target"};
	char *vals[ARRAY_SIZE(names)];
	struct sigv4_header sh[ARRAY_SIZE(names)];
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		vals[i] = req_header(r->head, names[i]);
		if (vals[i])
			sh[n++] = (struct sigv4_header){names[i], vals[i]};
	}
	char *sent = req_header(r->head, "authorization");
	char *date = req_header(r->head, "x-amz-date");
	struct tm tm = {0};
	bool good = false;
	if (sent && date && strptime(date, "%Y%m%dT%H%M%SZ", &tm)) {
		char payload[65];
		sha256_hex(r->body, strlen(r->body), payload);
		struct sigv4_input in = {.method = "POST",
					 .path = "/",
					 .headers = sh,
					 .n_headers = n,
					 .payload_hash = payload,
					 .region = region,
					 .service = "ecr",
					 .when = timegm(&tm),
					 .normalize_path = true};
		struct sigv4_creds sc = {AKID, SECRET, SESSION_TOK};
		struct buf a = BUF_INIT;
		good = sigv4_authorization(&in, &sc, &a) == 0 && strcmp(buf_str(&a), sent) == 0;
		if (!good)
			printf("#   sent:     %s\n#   computed: %s\n", sent, buf_str(&a));
		buf_release(&a);
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		free(vals[i]);
	free(sent);
	free(date);
	return good;
}

/* ecr_parse_authorization on answers given as JSON text. */
static int parse_auth(const char *json, struct ecr_auth *a, struct dth_err *err)
{
	json_t *ans = json_loads(json, 0, NULL);
	if (!ans)
		return -999;
	err_clear(err);
	int rc = ecr_parse_authorization(ans, "(test)", a, err);
	json_decref(ans);
	return rc;
}

static void test_parse_authorization(void)
{
	struct ecr_auth a;
	struct dth_err err;
	char tok[64], body[1024];
	base64_encode((const unsigned char *)"AWS:pw", 6, tok);
	snprintf(body, sizeof(body),
		 "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"proxyEndpoint\":"
		 "\"https://1.example\",\"expiresAt\":12.5}]}",
		 tok);
	is_int(parse_auth(body, &a, &err), 0, "auth answer: parsed");
	is_str(a.user, "AWS", "auth answer: user");
	is_str(a.password, "pw", "auth answer: password");
	is_str(a.proxy_endpoint, "https://1.example", "auth answer: proxy endpoint");
	is_int(a.expires, 12, "auth answer: expiresAt");
	ecr_auth_release(&a);

	/* found by fuzz_ecr: a proxyEndpoint longer than the field was cut short
	 * silently (and the token accepted) */
	char longep[400];
	memset(longep, 'a', sizeof(longep) - 1);
	longep[sizeof(longep) - 1] = '\0';
	memcpy(longep, "https://", 8);
	snprintf(body, sizeof(body),
		 "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"proxyEndpoint\":"
		 "\"%s\"}]}",
		 tok, longep);
	is_int(parse_auth(body, &a, &err), -EPROTO, "auth answer: too long proxyEndpoint refused");
	ok(a.password == NULL && a.user[0] == '\0' && a.proxy_endpoint[0] == '\0',
	   "auth answer: nothing kept after a refusal");
	ok(strstr(err.message, "proxyEndpoint") != NULL, "auth answer: the message says why (%s)",
	   err.message);
	longep[255] = '\0';
	snprintf(body, sizeof(body),
		 "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"proxyEndpoint\":"
		 "\"%s\"}]}",
		 tok, longep);
	is_int(parse_auth(body, &a, &err), 0, "auth answer: a 255-byte proxyEndpoint fits");
	is_int(strlen(a.proxy_endpoint), 255, "auth answer: kept whole");
	ecr_auth_release(&a);

	is_int(parse_auth("{\"authorizationData\":[]}", &a, &err), -EPROTO, "auth answer: no data");
	is_int(
	    parse_auth("{\"authorizationData\":[{\"authorizationToken\":\"QVdTcHc=\"}]}", &a, &err),
	    -EPROTO, "auth answer: no ':' in the token");
	ok(!strstr(err.message, "QVdTcHc"), "auth answer: the token is not quoted");
}

static void test_fake(void)
{
	struct peer *f = peer_start();
	if (!f) {
		skip("cannot start the loopback server");
		return;
	}
	char ep[64];
	snprintf(ep, sizeof(ep), "%s", peer_url(f));
	struct creds_provider *cp = static_creds(AKID, SECRET, SESSION_TOK);
	struct ecr_client *c = client(ep, "cn-north-1", "123456789012", cp, 3);
	struct dth_err err;
	uint64_t counts[ECR_REQ__COUNT];

	/* GetAuthorizationToken: request format, signature, token decoding */
	char tok[128];
	const char *plain = "AWS:pa55:word+with/colons";
	base64_encode((const unsigned char *)plain, strlen(plain), tok);
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"expiresAt\":"
		 "1.7000000425E9,\"proxyEndpoint\":\"https://123456789012.dkr.ecr.cn-north-1."
		 "amazonaws.com.cn\"}]}",
		 tok);
	struct fake_resp r1[] = {{200, body, NULL}};
	fake_script(f, r1, 1);
	struct ecr_auth a;
	int rc = ecr_get_authorization_token(c, &a, &err);
	ok(rc == 0, "fake: GetAuthorizationToken (%s)", err.message);
	is_str(a.user, "AWS", "fake: token user");
	is_str(a.password, "pa55:word+with/colons", "fake: password keeps colons after the first");
	is_int(a.expires, 1700000042, "fake: fractional expiresAt in seconds");
	is_str(a.proxy_endpoint, "https://123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
	       "fake: proxy endpoint");
	ecr_auth_release(&a);
	ok(a.password == NULL, "fake: auth released");
	ok(peer_count(f) == 1, "fake: one request");
	if (peer_count(f) == 1) {
		const struct peer_request *q = peer_request(f, 0);
		ok(str_startswith(q->head, "POST / HTTP/1.1\r\n"), "fake: POST /");
		char *tgt = req_header(q->head, "x-amz-target");
		char *ct = req_header(q->head, "content-type");
		char *au = req_header(q->head, "authorization");
		char *st = req_header(q->head, "x-amz-security-token");
		is_str(tgt, "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
		       "fake: X-Amz-Target");
		is_str(ct, "application/x-amz-json-1.1", "fake: Content-Type");
		is_str(st, SESSION_TOK, "fake: session token sent");
		ok(au && str_startswith(au, "AWS4-HMAC-SHA256 Credential=" AKID "/") &&
		       has(au, "/cn-north-1/ecr/aws4_request, ") &&
		       has(au, "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;"
			       "x-amz-target, Signature="),
		   "fake: SigV4 scope is cn-north-1/ecr with the JSON headers signed");
		ok(signature_matches(q, "cn-north-1"), "fake: signature recomputes from the wire");
		json_t *j = json_loads(q->body, 0, NULL);
		json_t *ids = json_object_get(j, "registryIds");
		is_str(json_string_value(json_array_get(ids, 0)), "123456789012",
		       "fake: registryIds carries the account");
		json_decref(j);
		free(tgt);
		free(ct);
		free(au);
		free(st);
	}

	/* a token that is not user:password */
	char bad_tok[64];
	base64_encode((const unsigned char *)"nocolonhere", 11, bad_tok);
	snprintf(body, sizeof(body), "{\"authorizationData\":[{\"authorizationToken\":\"%s\"}]}",
		 bad_tok);
	struct fake_resp r2[] = {{200, body, NULL}};
	fake_script(f, r2, 1);
	rc = ecr_get_authorization_token(c, &a, &err);
	ok(rc == -EPROTO && !has(err.message, "nocolonhere") && !has(err.message, bad_tok),
	   "fake: undecodable token -> -EPROTO without the token in the message (%s)", err.message);
	ok(a.password == NULL, "fake: nothing returned on failure");

	/* paging through nextToken */
	struct fake_resp r3[] = {
	    {200,
	     "{\"repositories\":[{\"repositoryName\":\"a\",\"repositoryUri\":\"u/a\"},"
	     "{\"repositoryName\":\"b\"}],\"nextToken\":\"t1\"}",
	     NULL},
	    {200, "{\"repositories\":[{\"repositoryName\":\"c\"}],\"nextToken\":\"t2\"}", NULL},
	    {200, "{\"repositories\":[{\"repositoryName\":\"d\"},{\"repositoryName\":\"e\"}]}",
	     NULL},
	};
	fake_script(f, r3, 3);
	struct buf names = BUF_INIT;
	ecr_client_counts(c, counts);
	uint64_t before = counts[ECR_REQ_DESCRIBE_REPOS];
	rc = ecr_describe_repositories(c, 2, collect_repo, &names, &err);
	ok(rc == 0, "fake: DescribeRepositories over 3 pages (%s)", err.message);
	is_str(buf_str(&names), "a|b|c|d|e|", "fake: every repository once, in order");
	ecr_client_counts(c, counts);
	is_int(counts[ECR_REQ_DESCRIBE_REPOS] - before, 3, "fake: 3 page requests counted");
	if (peer_count(f) == 3) {
		json_t *j0 = json_loads(peer_request(f, 0)->body, 0, NULL);
		json_t *j1 = json_loads(peer_request(f, 1)->body, 0, NULL);
		json_t *j2 = json_loads(peer_request(f, 2)->body, 0, NULL);
		ok(json_object_get(j0, "nextToken") == NULL &&
		       json_integer_value(json_object_get(j0, "maxResults")) == 2,
		   "fake: first page: maxResults, no nextToken");
		is_str(json_string_value(json_object_get(j1, "nextToken")), "t1",
		       "fake: second page asks t1");
		is_str(json_string_value(json_object_get(j2, "nextToken")), "t2",
		       "fake: third page asks t2");
		is_str(json_string_value(json_object_get(j0, "registryId")), "123456789012",
		       "fake: registryId sent");
		json_decref(j0);
		json_decref(j1);
		json_decref(j2);
	} else {
		ok(0, "fake: expected 3 requests, got %zu", peer_count(f));
	}
	buf_release(&names);

	/* a server that repeats its token */
	struct fake_resp r4[] = {
	    {200, "{\"repositories\":[],\"nextToken\":\"same\"}", NULL},
	    {200, "{\"repositories\":[],\"nextToken\":\"same\"}", NULL},
	};
	fake_script(f, r4, 2);
	struct buf junk = BUF_INIT;
	rc = ecr_describe_repositories(c, 0, collect_repo, &junk, &err);
	ok(rc == -EPROTO && peer_count(f) == 2, "fake: repeated nextToken -> -EPROTO (%s)",
	   err.message);
	buf_release(&junk);

	/* throttling and 5xx are retried */
	struct fake_resp r5[] = {
	    {400, "{\"__type\":\"ThrottlingException\",\"message\":\"slow down\"}", NULL},
	    {503, "{\"__type\":\"ServerException\"}", NULL},
	    {200,
	     "{\"repository\":{\"repositoryName\":\"x\",\"repositoryUri\":\"123456789012.dkr.ecr."
	     "cn-north-1.amazonaws.com.cn/x\"}}",
	     NULL},
	};
	fake_script(f, r5, 3);
	struct buf uri = BUF_INIT;
	ecr_client_counts(c, counts);
	before = counts[ECR_REQ_CREATE];
	rc = ecr_create_repository(c, "x", &uri, &err);
	ok(rc == 0, "fake: CreateRepository after a throttle and a 503 (%s)", err.message);
	is_str(buf_str(&uri), "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/x",
	       "fake: repository uri");
	ecr_client_counts(c, counts);
	is_int(counts[ECR_REQ_CREATE] - before, 3, "fake: every attempt counted");
	if (peer_count(f) == 3) {
		json_t *j = json_loads(peer_request(f, 2)->body, 0, NULL);
		is_str(json_string_value(json_object_get(j, "repositoryName")), "x",
		       "fake: repositoryName sent");
		json_decref(j);
	}
	buf_release(&uri);

	/* throttling that lasts: -EAGAIN after max_attempts */
	struct fake_resp r6[] = {
	    {429, "{\"__type\":\"ThrottlingException\"}", "Retry-After: 0\r\n"},
	    {429, "{\"__type\":\"ThrottlingException\"}", NULL},
	    {429, "{\"__type\":\"ThrottlingException\"}", NULL},
	    {200, "{\"repository\":{}}", NULL},
	};
	fake_script(f, r6, 4);
	rc = ecr_create_repository(c, "x", NULL, &err);
	ok(rc == -EBUSY && peer_count(f) == 3 && err.http_status == 429 &&
	       !strcmp(err.remote_code, "ThrottlingException"),
	   "fake: persistent throttling -> -EBUSY after 3 attempts (%s)", err.message);

	/* error mapping, "__type" with a namespace */
	struct fake_resp r7[] = {
	    {400,
	     "{\"__type\":\"com.amazonaws.ecr#RepositoryNotFoundException\",\"message\":"
	     "\"no such repo here\"}",
	     NULL},
	    {400, "{\"__type\":\"UnrecognizedClientException\",\"Message\":\"bad key\"}", NULL},
	    {400, "{\"__type\":\"InvalidParameterException\",\"message\":\"bad name\"}", NULL},
	    {403, "", "x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/\r\n"},
	    {400, "{\"__type\":\"RepositoryAlreadyExistsException\"}", NULL},
	};
	fake_script(f, r7, 5);
	int nimg = 0;
	rc = ecr_describe_images(c, "gone", 0, count_image, &nimg, &err);
	ok(rc == -ENOENT && !strcmp(err.remote_code, "RepositoryNotFoundException") &&
	       err.http_status == 400 && has(err.message, "no such repo here") &&
	       has(err.message, "DescribeImages ecr://test/gone"),
	   "fake: RepositoryNotFoundException -> -ENOENT (%s)", err.message);
	rc = ecr_describe_images(c, "r", 0, count_image, &nimg, &err);
	ok(rc == -EACCES && !strcmp(err.remote_code, "UnrecognizedClientException") &&
	       has(err.message, "bad key"),
	   "fake: UnrecognizedClientException -> -EACCES (%s)", err.message);
	rc = ecr_create_repository(c, "Bad Name", NULL, &err);
	ok(rc == -EINVAL && !strcmp(err.remote_code, "InvalidParameterException"),
	   "fake: InvalidParameterException -> -EINVAL (%s)", err.message);
	rc = ecr_describe_images(c, "r", 0, count_image, &nimg, &err);
	ok(rc == -EACCES && !strcmp(err.remote_code, "AccessDeniedException"),
	   "fake: error type from x-amzn-ErrorType -> -EACCES (%s)", err.message);
	rc = ecr_create_repository(c, "x", NULL, &err);
	ok(rc == -EEXIST, "fake: RepositoryAlreadyExistsException -> -EEXIST (%s)", err.message);
	ok(nimg == 0 && peer_count(f) == 5, "fake: 4xx not retried");
	ok(!has(err.message, SECRET) && !has(err.message, SESSION_TOK),
	   "fake: no secret in messages");

	/* DescribeImages fields */
	struct fake_resp r8[] = {
	    {200,
	     "{\"imageDetails\":[{\"imageDigest\":\"sha256:abc\",\"imageTags\":[\"v1\",\"v2\"],"
	     "\"imageSizeInBytes\":12345,\"imagePushedAt\":1.6E9},{\"imageDigest\":"
	     "\"sha256:def\"}]}",
	     NULL},
	};
	fake_script(f, r8, 1);
	rc = ecr_describe_images(c, "r", 0, count_image, &nimg, &err);
	ok(rc == 0 && nimg == 2, "fake: DescribeImages, untagged image included (%d)", nimg);

	/* bad JSON answer */
	struct fake_resp r9[] = {{200, "not json", NULL}};
	fake_script(f, r9, 1);
	rc = ecr_describe_images(c, "r", 0, count_image, &nimg, &err);
	ok(rc == -EPROTO, "fake: answer not JSON -> -EPROTO (%s)", err.message);

	ecr_client_free(c);
	creds_provider_free(cp);
	peer_stop(f);
}

/* ---- moto ------------------------------------------------------------------ */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool okc = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return okc;
}

/* Run argv, its stdout into out (stderr to /dev/null); the exit status or -1. */
static int run_capture(char *const argv[], struct buf *out)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 2);
		}
		dup2(p[1], 1);
		close(p[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	char tmp[1024];
	ssize_t n;
	while ((n = read(p[0], tmp, sizeof(tmp))) > 0)
		if (out)
			buf_add(out, tmp, (size_t)n);
	close(p[0]);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first three actions moto lets through unauthenticated: an IAM user
 * with an allow-all policy and an access key (printed "ID SECRET"). */
static const char py_iam[] =
    "import boto3,json,sys\n"
    "iam=boto3.client('iam',endpoint_url=sys.argv[1],region_name='us-east-1',"
    "aws_access_key_id='x',aws_secret_access_key='y')\n"
    "iam.create_user(UserName='dth')\n"
    "iam.put_user_policy(UserName='dth',PolicyName='all',PolicyDocument=json.dumps("
    "{'Version':'2012-10-17','Statement':[{'Effect':'Allow','Action':'*','Resource':'*'}]}))\n"
    "k=iam.create_access_key(UserName='dth')['AccessKey']\n"
    "print(k['AccessKeyId'],k['SecretAccessKey'])\n";

/* PutImage with boto3 (signed with the key): argv endpoint key secret repo
 * manifest tag... */
static const char py_put[] =
    "import boto3,sys\n"
    "e=boto3.client('ecr',endpoint_url=sys.argv[1],region_name='us-west-2',"
    "aws_access_key_id=sys.argv[2],aws_secret_access_key=sys.argv[3])\n"
    "for t in sys.argv[6:]:\n"
    "  e.put_image(repositoryName=sys.argv[4],imageManifest=sys.argv[5],imageTag=t)\n";

#define LAYER1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define LAYER2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define CONFIG "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define MEDIA  "application/vnd.docker.distribution.manifest.v2+json"
static const char manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA "\",\"config\":{\"mediaType\":"
    "\"application/vnd.docker.container.image.v1+json\",\"size\":1469,\"digest\":\"" CONFIG
    "\"},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
    "\"size\":100,\"digest\":\"" LAYER1 "\"},{\"mediaType\":"
    "\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"size\":200,\"digest\":\"" LAYER2
    "\"}]}";

struct repo_seen {
	unsigned char page[120];
	int one, other, dups;
	char uri[256];
};

static int seen_repo(void *ctx, const struct ecr_repo *r)
{
	struct repo_seen *s = ctx;
	unsigned i;
	if (sscanf(r->name, "dth-page/r%03u", &i) == 1 && i < 120) {
		if (s->page[i]++)
			s->dups++;
	} else if (strcmp(r->name, "dth/one") == 0) {
		s->one++;
		str_copy_fit(s->uri, r->uri, sizeof(s->uri));
	} else {
		s->other++;
	}
	return 0;
}

static int stop_at_three(void *ctx, const struct ecr_repo *r)
{
	(void)r;
	return ++*(int *)ctx == 3 ? 7 : 0;
}

struct image_seen {
	int n;
	char digest[80];
	char tags[64];
	uint64_t size;
	int64_t pushed_at;
	char media[96];
};

static int seen_image(void *ctx, const struct ecr_image *im)
{
	struct image_seen *s = ctx;
	s->n++;
	str_copy_fit(s->digest, im->digest, sizeof(s->digest));
	struct buf t = BUF_INIT;
	for (size_t i = 0; i < im->n_tags; i++)
		buf_addf(&t, "%s%s", i ? "," : "", im->tags[i]);
	str_copy_fit(s->tags, buf_str(&t), sizeof(s->tags));
	buf_release(&t);
	s->size = im->size;
	s->pushed_at = im->pushed_at;
	str_copy_fit(s->media, im->media_type, sizeof(s->media));
	return 0;
}

static void test_moto_with(const char *ep, int port, const char *ak, const char *sk)
{
	struct dth_err err;
	struct creds_provider *cp = static_creds(ak, sk, NULL);
	struct ecr_client *c = client(ep, "us-west-2", "123456789012", cp, 3);
	struct ecr_auth a;
	int rc;
	(void)port;

	/* GetAuthorizationToken (moto verifies the SigV4 signature and routes by
	 * the credential scope's service, so an answer means it was "ecr") */
	rc = ecr_get_authorization_token(c, &a, &err);
	ok(rc == 0, "moto: GetAuthorizationToken, signature accepted (%s)", err.message);
	is_str(a.user, "AWS", "moto: token user");
	is_str(a.password, "123456789012-auth-token", "moto: token password decoded");
	is_str(a.proxy_endpoint, "https://123456789012.dkr.ecr.us-west-2.amazonaws.com",
	       "moto: proxy endpoint in the signed region");
	struct tm tm = {.tm_year = 115, .tm_mon = 0, .tm_mday = 1, .tm_isdst = -1};
	is_int(a.expires, (int64_t)mktime(&tm), "moto: expiresAt (moto's fixed 2015-01-01)");
	ecr_auth_release(&a);

	struct ecr_client *c2 = client(ep, "us-west-2", "210987654321", cp, 3);
	rc = ecr_get_authorization_token(c2, &a, &err);
	ok(rc == 0 && a.password && !strcmp(a.password, "210987654321-auth-token") &&
	       !strcmp(a.proxy_endpoint, "https://210987654321.dkr.ecr.us-west-2.amazonaws.com"),
	   "moto: registryIds honoured for another account (%s)", err.message);
	ecr_auth_release(&a);
	ecr_client_free(c2);

	/* CreateRepository, twice */
	struct buf uri = BUF_INIT;
	rc = ecr_create_repository(c, "dth/one", &uri, &err);
	ok(rc == 0, "moto: CreateRepository (%s)", err.message);
	is_str(buf_str(&uri), "123456789012.dkr.ecr.us-west-2.amazonaws.com/dth/one",
	       "moto: repository uri");
	rc = ecr_create_repository(c, "dth/one", NULL, &err);
	ok(rc == -EEXIST && !strcmp(err.remote_code, "RepositoryAlreadyExistsException") &&
	       err.http_status == 400 && has(err.message, "dth/one"),
	   "moto: CreateRepository again -> -EEXIST (%s)", err.message);
	rc = ecr_create_repository(c, "Bad Name!", NULL, &err);
	ok(rc == -EINVAL && !strcmp(err.remote_code, "InvalidParameterException"),
	   "moto: invalid name -> -EINVAL (%s)", err.message);
	buf_release(&uri);

	/* 120 more repositories, listed with maxResults 50 */
	int created = 0;
	for (int i = 0; i < 120; i++) {
		char name[32];
		snprintf(name, sizeof(name), "dth-page/r%03d", i);
		if (ecr_create_repository(c, name, NULL, &err) == 0)
			created++;
	}
	is_int(created, 120, "moto: 120 repositories created");
	uint64_t counts[ECR_REQ__COUNT];
	ecr_client_counts(c, counts);
	uint64_t before = counts[ECR_REQ_DESCRIBE_REPOS];
	struct repo_seen s;
	memset(&s, 0, sizeof(s));
	rc = ecr_describe_repositories(c, 50, seen_repo, &s, &err);
	ok(rc == 0, "moto: DescribeRepositories (%s)", err.message);
	int found = 0;
	for (int i = 0; i < 120; i++)
		found += s.page[i] ? 1 : 0;
	ok(found == 120 && s.one == 1 && s.dups == 0 && s.other == 0,
	   "moto: all 121 repositories listed once (found %d, one %d, dups %d, other %d)", found,
	   s.one, s.dups, s.other);
	is_str(s.uri, "123456789012.dkr.ecr.us-west-2.amazonaws.com/dth/one",
	       "moto: repository uri in the listing");
	ecr_client_counts(c, counts);
	printf("# moto answered DescribeRepositories (maxResults 50, 121 repos) in %llu page(s)\n",
	       (unsigned long long)(counts[ECR_REQ_DESCRIBE_REPOS] - before));
	int seen = 0;
	rc = ecr_describe_repositories(c, 50, stop_at_three, &seen, &err);
	ok(rc == 7 && seen == 3, "moto: a callback's non-zero return stops the listing");

	/* DescribeImages: missing repo, empty repo, a pushed image with two tags */
	struct image_seen is;
	memset(&is, 0, sizeof(is));
	rc = ecr_describe_images(c, "dth/missing", 0, seen_image, &is, &err);
	ok(rc == -ENOENT && !strcmp(err.remote_code, "RepositoryNotFoundException"),
	   "moto: DescribeImages of a missing repo -> -ENOENT (%s)", err.message);
	rc = ecr_describe_images(c, "dth/one", 0, seen_image, &is, &err);
	ok(rc == 0 && is.n == 0, "moto: DescribeImages of an empty repo (%s)", err.message);

	char *put[] = {"python3",  "-c",      (char *)py_put,	(char *)ep, (char *)ak,
		       (char *)sk, "dth/one", (char *)manifest, "v1",	    "latest",
		       NULL};
	int prc = run_capture(put, NULL);
	ok(prc == 0, "moto: PutImage with boto3 (exit %d)", prc);
	time_t t0 = time(NULL);
	rc = ecr_describe_images(c, "dth/one", 0, seen_image, &is, &err);
	ok(rc == 0 && is.n == 1, "moto: DescribeImages finds the image (%s, %d)", err.message,
	   is.n);
	/* moto's digest is SHA-256 of the layer digests joined (not of the manifest) */
	char hex[65], want[80];
	sha256_hex(LAYER1 LAYER2, strlen(LAYER1 LAYER2), hex);
	snprintf(want, sizeof(want), "sha256:%s", hex);
	is_str(is.digest, want, "moto: image digest");
	is_str(is.tags, "v1,latest", "moto: both tags");
	is_int(is.size, 1469, "moto: image size (moto reports the config size)");
	ok(is.pushed_at > t0 - 86400 && is.pushed_at < t0 + 86400, "moto: pushed-at is a date");
	is_str(is.media, MEDIA, "moto: manifest media type");

	ecr_client_counts(c, counts);
	ok(counts[ECR_REQ_AUTH] == 1 && counts[ECR_REQ_CREATE] == 123 &&
	       counts[ECR_REQ_DESCRIBE_IMAGES] == 3,
	   "moto: counters (auth %llu, create %llu, images %llu)",
	   (unsigned long long)counts[ECR_REQ_AUTH], (unsigned long long)counts[ECR_REQ_CREATE],
	   (unsigned long long)counts[ECR_REQ_DESCRIBE_IMAGES]);
	ecr_client_free(c);
	creds_provider_free(cp);

	/* wrong secret: moto's verifier refuses the signature */
	cp = static_creds(ak, SECRET, NULL);
	c = client(ep, "us-west-2", NULL, cp, 3);
	memset(&s, 0, sizeof(s));
	rc = ecr_describe_repositories(c, 0, seen_repo, &s, &err);
	ok(rc == -EACCES && !strcmp(err.remote_code, "SignatureDoesNotMatch") &&
	       err.http_status == 403 && !has(err.message, SECRET),
	   "moto: wrong secret -> -EACCES SignatureDoesNotMatch (%s)", err.message);
	ecr_client_counts(c, counts);
	is_int(counts[ECR_REQ_DESCRIBE_REPOS], 1, "moto: auth failure not retried");
	ecr_client_free(c);
	creds_provider_free(cp);

	/* unknown key */
	cp = static_creds("AKIAUNKNOWNKEY000000", SECRET, NULL);
	c = client(ep, "us-west-2", NULL, cp, 3);
	rc = ecr_get_authorization_token(c, &a, &err);
	ok(rc == -EACCES && !strcmp(err.remote_code, "InvalidClientTokenId") &&
	       !has(err.message, SECRET),
	   "moto: unknown access key -> -EACCES InvalidClientTokenId (%s)", err.message);
	ecr_client_free(c);
	creds_provider_free(cp);
}

static void test_moto(void)
{
	char *probe[] = {"python3", "-c", "import moto.server, boto3", NULL};
	if (run_capture(probe, NULL) != 0) {
		skip("python3 with moto and boto3 is not available");
		return;
	}
	int port = free_port();
	char portstr[16], ep[64];
	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", port);
	pid_t pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR);
		if (dn >= 0) {
			dup2(dn, 0);
			dup2(dn, 1);
			dup2(dn, 2);
		}
		/* signatures are checked after the first 3 actions (the IAM setup) */
		setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3", 1);
		execlp("python3", "python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", portstr,
		       (char *)NULL);
		_exit(127);
	}
	bool up = false;
	for (int i = 0; pid > 0 && i < 600 && !up; i++) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			pid = -1;
			break;
		}
		up = port_open(port);
		if (!up)
			usleep(100 * 1000);
	}
	if (!up) {
		skip("moto server did not start");
		goto stop;
	}
	struct buf keys = BUF_INIT;
	char *iam[] = {"python3", "-c", (char *)py_iam, ep, NULL};
	int prc = run_capture(iam, &keys);
	char ak[64] = "", sk[128] = "";
	ok(prc == 0 && sscanf(buf_str(&keys), "%63s %127s", ak, sk) == 2,
	   "moto: iam user and access key made");
	buf_release(&keys);
	if (ak[0] && sk[0])
		test_moto_with(ep, port, ak, sk);
stop:
	if (pid > 0) {
		kill(pid, SIGTERM);
		bool gone = false;
		for (int i = 0; i < 50 && !gone; i++) {
			if (waitpid(pid, NULL, WNOHANG) == pid)
				gone = true;
			else
				usleep(100 * 1000);
		}
		if (!gone) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (http_global_init() != 0)
		return 1;
	struct http_engine_opts ho = {.connect_timeout_ms = 5000, .stall_timeout_s = 30};
	http = http_engine_new(&ho);
	if (!http)
		return 1;
	test_names();
	test_parse_authorization();
	test_fake();
	test_moto();
	http_engine_free(http);
	return tap_done();
}
