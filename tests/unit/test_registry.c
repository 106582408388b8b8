/* Unit tests of the registry client: the parsing helpers, and the client's
 * auth, redirect, retry and streaming logic against the scripted peer of the
 * unit tests (tests/unit/peer.h), run in a thread of this process. */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

#define D_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D_ABC	"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_digest(void)
{
	ok(registry_digest_valid(D_EMPTY), "digest: valid sha256");
	ok(!registry_digest_valid(NULL), "digest: NULL");
	ok(!registry_digest_valid(""), "digest: empty");
	ok(!registry_digest_valid("sha256:"), "digest: no hex");
	ok(!registry_digest_valid(
	       "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
	   "digest: uppercase hex refused");
	ok(!registry_digest_valid(
	       "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"),
	   "digest: 63 hex");
	ok(!registry_digest_valid(
	       "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555"),
	   "digest: 65 hex");
	ok(!registry_digest_valid(
	       "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	   "digest: other algorithm");
	ok(!registry_digest_valid(
	       "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
	   "digest: algorithm is case-sensitive");
	ok(!registry_digest_valid(
	       "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g"),
	   "digest: non-hex char");
	char d[REGISTRY_DIGEST_MAX];
	registry_digest_of("", 0, d);
	is_str(d, D_EMPTY, "digest_of empty");
	registry_digest_of("abc", 3, d);
	is_str(d, D_ABC, "digest_of abc (FIPS 180-2 vector)");
}

static void test_repo_tag(void)
{
	const char *good[] = {"a",	"alpine",	  "library/alpine", "a/b/c",
			      "my-app", "my--app",	  "my_app",	    "my__app",
			      "my.app", "a0/b1.c2-d3_e4", "x/y__z"};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		ok(registry_repo_valid(good[i]), "repo valid: %s", good[i]);
	const char *bad[] = {"",    "A",    "Alpine", "a//b", "/a",   "a/",  "-a",
			     "a-",  "a..b", "a___b",  ".a",   "a_.b", "a b", "a:b",
			     "a@b", "a/-b", "a/b_",   "é",    "a\nb", "a/.b"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ok(!registry_repo_valid(bad[i]), "repo invalid: #%zu", i);
	char longr[300];
	memset(longr, 'a', 255);
	longr[255] = '\0';
	ok(registry_repo_valid(longr), "repo of 255 chars valid");
	longr[255] = 'a';
	longr[256] = '\0';
	ok(!registry_repo_valid(longr), "repo of 256 chars invalid");

	ok(registry_tag_valid("latest"), "tag latest");
	ok(registry_tag_valid("_x"), "tag starting with _");
	ok(registry_tag_valid("1.27.0-alpine_X"), "tag with . - _ and uppercase");
	ok(!registry_tag_valid(""), "empty tag");
	ok(!registry_tag_valid(".x"), "tag starting with .");
	ok(!registry_tag_valid("-x"), "tag starting with -");
	ok(!registry_tag_valid("a:b"), "tag with :");
	ok(!registry_tag_valid("a/b"), "tag with /");
	char t[140];
	memset(t, 'a', 128);
	t[128] = '\0';
	ok(registry_tag_valid(t), "tag of 128");
	t[128] = 'a';
	t[129] = '\0';
	ok(!registry_tag_valid(t), "tag of 129");
}

static void check_ref(const char *s, const char *repo, const char *tag, const char *digest)
{
	char *r, *t, *d;
	struct dth_err e;
	err_clear(&e);
	int rc = registry_parse_reference(s, &r, &t, &d, &e);
	is_int(rc, 0, "ref '%s' parses", s);
	if (rc == 0) {
		is_str(r, repo, "ref '%s': repo", s);
		ok(tag ? (t && !strcmp(t, tag)) : t == NULL, "ref '%s': tag %s", s,
		   tag ? tag : "absent");
		ok(digest ? (d && !strcmp(d, digest)) : d == NULL, "ref '%s': digest %s", s,
		   digest ? "given" : "absent");
	}
	free(r);
	free(t);
	free(d);
}

static void check_bad_ref(const char *s, const char *what)
{
	char *r = (char *)1, *t = (char *)1, *d = (char *)1;
	struct dth_err e;
	err_clear(&e);
	int rc = registry_parse_reference(s, &r, &t, &d, &e);
	is_int(rc, -EINVAL, "bad ref (%s) refused", what);
	ok(r == NULL && t == NULL && d == NULL, "bad ref (%s): outputs NULL", what);
	ok(e.message[0] != '\0', "bad ref (%s): message '%s'", what, e.message);
}

static void test_reference(void)
{
	check_ref("alpine", "alpine", NULL, NULL);
	check_ref("alpine:3.20", "alpine", "3.20", NULL);
	check_ref("library/alpine:latest", "library/alpine", "latest", NULL);
	check_ref("a/b/c@" D_EMPTY, "a/b/c", NULL, D_EMPTY);
	check_ref("a/b:v1@" D_EMPTY, "a/b", "v1", D_EMPTY);
	check_bad_ref("", "empty");
	check_bad_ref("Alpine", "uppercase repo");
	check_bad_ref("alpine:", "empty tag");
	check_bad_ref("alpine:-x", "tag starting with -");
	check_bad_ref("alpine@sha256:abc", "short digest");
	check_bad_ref("alpine@", "empty digest");
	check_bad_ref("localhost:5000/alpine", "host:port then a path");
	check_bad_ref(":tag", "no repo");
	check_bad_ref("a:b:c", "two colons");
	/* a message never echoes control characters */
	char *r, *t, *d;
	struct dth_err e;
	err_clear(&e);
	ok(registry_parse_reference("bad\x1b[31mname", &r, &t, &d, &e) == -EINVAL &&
	       !strchr(e.message, '\x1b'),
	   "control characters are not echoed: %s", e.message);
}

static void test_normalize(void)
{
	struct buf b = BUF_INIT;
	registry_normalize_repo("registry-1.docker.io", "alpine", &b);
	is_str(buf_str(&b), "library/alpine", "hub: alpine -> library/alpine");
	buf_reset(&b);
	registry_normalize_repo("registry-1.docker.io", "bitnami/redis", &b);
	is_str(buf_str(&b), "bitnami/redis", "hub: user repo unchanged");
	buf_reset(&b);
	registry_normalize_repo("docker.io", "nginx", &b);
	is_str(buf_str(&b), "library/nginx", "docker.io counts as hub");
	buf_reset(&b);
	registry_normalize_repo("Index.Docker.IO", "nginx", &b);
	is_str(buf_str(&b), "library/nginx", "index.docker.io (any case) counts as hub");
	buf_reset(&b);
	registry_normalize_repo("127.0.0.1:5000", "alpine", &b);
	is_str(buf_str(&b), "alpine", "other registry: unchanged");
	buf_reset(&b);
	registry_normalize_repo("quay.io", "alpine", &b);
	is_str(buf_str(&b), "alpine", "quay: unchanged");
	buf_release(&b);
}

static void test_www_authenticate(void)
{
	struct registry_challenge ch;
	int rc = registry_parse_www_authenticate(
	    "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
	    "scope=\"repository:library/alpine:pull\"",
	    &ch);
	is_int(rc, 0, "hub challenge parses");
	is_str(ch.scheme, "bearer", "scheme lowercased");
	is_str(ch.realm, "https://auth.docker.io/token", "realm");
	is_str(ch.service, "registry.docker.io", "service");
	is_str(ch.scope, "repository:library/alpine:pull", "scope");
	ok(ch.error == NULL, "no error param");
	registry_challenge_release(&ch);

	rc = registry_parse_www_authenticate("Basic realm=\"test-realm\"", &ch);
	is_int(rc, 0, "basic parses");
	is_str(ch.scheme, "basic", "basic scheme");
	is_str(ch.realm, "test-realm", "basic realm");
	registry_challenge_release(&ch);

	/* quoted commas, escapes, spaces around '=' and ',', mixed case names */
	rc = registry_parse_www_authenticate(
	    "BEARER  Realm = \"https://a.example/t?x=1,y=2\" ,  SERVICE=\"svc \\\"q\\\" \\\\ "
	    "end\", scope=\"repository:a/b:pull,push repository:c:pull\",error=insufficient_scope",
	    &ch);
	is_int(rc, 0, "odd spacing and escapes parse");
	is_str(ch.realm, "https://a.example/t?x=1,y=2", "quoted comma kept in realm");
	is_str(ch.service, "svc \"q\" \\ end", "escapes undone");
	is_str(ch.scope, "repository:a/b:pull,push repository:c:pull", "scope with comma");
	is_str(ch.error, "insufficient_scope", "unquoted token value");
	registry_challenge_release(&ch);

	/* several challenges: Bearer preferred wherever it is */
	rc = registry_parse_www_authenticate(
	    "Basic realm=\"b\", Bearer realm=\"https://t/x\",service=s", &ch);
	is_int(rc, 0, "two challenges parse");
	is_str(ch.scheme, "bearer", "bearer picked over basic");
	is_str(ch.realm, "https://t/x", "its realm");
	is_str(ch.service, "s", "its service");
	registry_challenge_release(&ch);

	rc = registry_parse_www_authenticate("Negotiate abc==, Basic realm=\"r\"", &ch);
	is_int(rc, 0, "token68 challenge then basic");
	is_str(ch.scheme, "negotiate", "first kept when no bearer");
	ok(ch.realm == NULL, "token68 gives no realm");
	registry_challenge_release(&ch);

	rc = registry_parse_www_authenticate("Bearer", &ch);
	is_int(rc, 0, "bare scheme parses");
	ok(ch.realm == NULL, "bare scheme: no realm");
	registry_challenge_release(&ch);

	rc = registry_parse_www_authenticate("Bearer realm=\"a\",realm=\"b\"", &ch);
	is_int(rc, 0, "duplicate param");
	is_str(ch.realm, "a", "first of a duplicate param wins");
	registry_challenge_release(&ch);

	rc = registry_parse_www_authenticate("Bearer realm=\"\"", &ch);
	is_int(rc, 0, "empty quoted value");
	is_str(ch.realm, "", "empty realm");
	registry_challenge_release(&ch);

	const char *bad[] = {
	    "",
	    "   ",
	    "Bearer realm=\"unterminated",
	    "Bearer realm=\"ends in backslash\\",
	    "Bearer realm=\"a\",service=",
	    "Bearer realm=\"a\" junk\"",
	    "=\"x\"",
	    "\"quoted\"",
	    "Bearer realm=\"a\"\"b\"",
	    "Bearerrrrrrrrrrrrrrrrrrrrrrr realm=x",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&ch, 0x55, sizeof(ch));
		rc = registry_parse_www_authenticate(bad[i], &ch);
		ok(rc == -EINVAL && ch.realm == NULL && ch.scope == NULL,
		   "malformed challenge %zu refused cleanly", i);
		registry_challenge_release(&ch);
	}
	ok(registry_parse_www_authenticate(NULL, &ch) == -EINVAL, "NULL refused");
}

static void test_link(void)
{
	struct buf b = BUF_INIT;
	is_int(registry_parse_link_next("</v2/_catalog?last=b&n=2>; rel=\"next\"", &b), 0,
	       "distribution link");
	is_str(buf_str(&b), "/v2/_catalog?last=b&n=2", "its target");
	is_int(registry_parse_link_next(
		   "<https://x/v2/a/tags/list?last=1>; rel=\"prev\", <https://x/v2/a/tags/"
		   "list?last=9>;rel=next",
		   &b),
	       0, "prev then next");
	is_str(buf_str(&b), "https://x/v2/a/tags/list?last=9", "next picked");
	is_int(registry_parse_link_next("<https://x/p,q>; title=\"a, b; c\"; REL=\"prefetch NEXT\"",
					&b),
	       0, "rel list, comma in url and quoted param");
	is_str(buf_str(&b), "https://x/p,q", "comma inside <> kept");
	is_int(registry_parse_link_next("</a>; rel=\"prev\"", &b), -ENOENT, "no next");
	ok(b.len == 0, "out empty when none");
	is_int(registry_parse_link_next("</a>; rel=\"nextpage\"", &b), -ENOENT,
	       "rel nextpage is not next");
	is_int(registry_parse_link_next("", &b), -ENOENT, "empty header: no next");
	is_int(registry_parse_link_next("/a; rel=next", &b), -EINVAL, "no angle brackets");
	is_int(registry_parse_link_next("</a; rel=next", &b), -EINVAL, "unterminated <");
	is_int(registry_parse_link_next("</a>; rel=\"next", &b), -EINVAL, "unterminated quote");
	is_int(registry_parse_link_next("</a> rel=next", &b), -EINVAL, "missing ';'");
	is_int(registry_parse_link_next("</a>; rel=next, </b>; rel=next", &b), 0,
	       "two nexts: first");
	is_str(buf_str(&b), "/a", "the first next wins");
	buf_release(&b);
}

static void test_resolve(void)
{
	struct buf b = BUF_INIT;
	is_int(registry_resolve_url("http://127.0.0.1:5000", "/v2/a/blobs/uploads/u?_state=x", &b),
	       0, "absolute path");
	is_str(buf_str(&b), "http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=x", "on the origin");
	is_int(registry_resolve_url("https://r.example/v2/x", "https://s3.example/b?sig=1", &b), 0,
	       "absolute url");
	is_str(buf_str(&b), "https://s3.example/b?sig=1", "kept");
	is_int(registry_resolve_url("https://r.example/v2/x", "//cdn.example/b", &b), 0,
	       "scheme-relative");
	is_str(buf_str(&b), "https://cdn.example/b", "scheme of base");
	is_int(registry_resolve_url("https://r.example/v2/a/tags/list?n=1", "list?last=z", &b), 0,
	       "relative path");
	is_str(buf_str(&b), "https://r.example/v2/a/tags/list?last=z", "against the directory");
	is_int(registry_resolve_url("https://r.example/v2/_catalog", "?last=z", &b), 0,
	       "query only");
	is_str(buf_str(&b), "https://r.example/v2/_catalog?last=z", "query replaced");
	is_int(registry_resolve_url("https://r.example", "ftp://x/y", &b), -EINVAL,
	       "other scheme refused");
	is_int(registry_resolve_url("https://r.example", "javascript:alert(1)", &b), 0,
	       "a colon in a relative path is a path");
	is_int(registry_resolve_url("https://r.example", "", &b), -EINVAL, "empty refused");
	is_int(registry_resolve_url("https://r.example", "/a b", &b), -EINVAL, "space refused");
	is_int(registry_resolve_url("https://r.example", "/a\r\nX-Evil: 1", &b), -EINVAL,
	       "CRLF refused");
	is_int(registry_resolve_url("https://r.example", "https:///nohost", &b), -EINVAL,
	       "no host refused");
	/* found by fuzz_registry_link: a scheme-relative target without a host gave
	 * "https://" or "https:///x" */
	is_int(registry_resolve_url("https://r.example", "//", &b), -EINVAL,
	       "scheme-relative without host refused");
	is_int(b.len, 0, "nothing resolved");
	is_int(registry_resolve_url("https://r.example", "///x", &b), -EINVAL,
	       "scheme-relative with an empty host refused");
	is_int(registry_resolve_url("http://r.example", "//?q", &b), -EINVAL,
	       "scheme-relative with only a query refused");
	/* found by fuzz_registry_link: a base without a host ("https://?n=2") gave
	 * "https://?n=2&last=x" for a query-only target */
	is_int(registry_resolve_url("https://?n=2", "?n=2&last=x", &b), -EINVAL,
	       "base without host refused");
	is_int(registry_resolve_url("http://", "/v2/x", &b), -EINVAL,
	       "base without host refused (path)");
	is_int(registry_resolve_url("http://", "https://r.example/v2/x", &b), 0,
	       "an absolute target needs no base");
	buf_release(&b);
}

static void test_media_types(void)
{
	is_int(registry_media_type_kind(REGISTRY_MT_OCI_MANIFEST), REGISTRY_KIND_IMAGE, "oci");
	is_int(registry_media_type_kind(REGISTRY_MT_DOCKER_MANIFEST), REGISTRY_KIND_IMAGE, "v2s2");
	is_int(registry_media_type_kind(REGISTRY_MT_OCI_INDEX), REGISTRY_KIND_INDEX, "oci index");
	is_int(registry_media_type_kind(REGISTRY_MT_DOCKER_LIST), REGISTRY_KIND_INDEX,
	       "docker list");
	is_int(registry_media_type_kind(REGISTRY_MT_DOCKER_V1_SIGNED), REGISTRY_KIND_SCHEMA1,
	       "schema1 signed");
	is_int(registry_media_type_kind(REGISTRY_MT_DOCKER_V1), REGISTRY_KIND_SCHEMA1, "schema1");
	is_int(registry_media_type_kind(" application/vnd.OCI.image.index.v1+json ; charset=x"),
	       REGISTRY_KIND_INDEX, "params, spaces and case ignored");
	is_int(registry_media_type_kind("application/json"), REGISTRY_KIND_UNKNOWN, "json");
	is_int(registry_media_type_kind(NULL), REGISTRY_KIND_UNKNOWN, "NULL");
	is_int(registry_media_type_kind(""), REGISTRY_KIND_UNKNOWN, "empty");
}

static void test_blob_unknown(void)
{
	struct dth_err e;
	err_clear(&e);
	ok(!registry_err_blob_unknown(&e), "blob unknown: no error");
	ok(!registry_err_blob_unknown(NULL), "blob unknown: NULL");
	err_set(&e, -EINVAL, "manifest put x:v1: 400 MANIFEST_BLOB_UNKNOWN: blob unknown");
	str_copy_fit(e.remote_code, "MANIFEST_BLOB_UNKNOWN", sizeof(e.remote_code));
	ok(registry_err_blob_unknown(&e), "blob unknown: MANIFEST_BLOB_UNKNOWN");
	str_copy_fit(e.remote_code, "BLOB_UNKNOWN", sizeof(e.remote_code));
	ok(registry_err_blob_unknown(&e), "blob unknown: BLOB_UNKNOWN");
	str_copy_fit(e.remote_code, "MANIFEST_INVALID", sizeof(e.remote_code));
	ok(!registry_err_blob_unknown(&e), "blob unknown: not for MANIFEST_INVALID");
	str_copy_fit(e.remote_code, "MANIFEST_BLOB_UNKNOWNX", sizeof(e.remote_code));
	ok(!registry_err_blob_unknown(&e), "blob unknown: whole code compared");
}

static void test_client_new(void)
{
	struct http_engine *h = http_engine_new(&(struct http_engine_opts){.tls_verify = true});
	struct dth_err e;
	err_clear(&e);
	struct registry_config cfg = {.name = "r", .url = "http://127.0.0.1:5000", .http = h};
	struct registry_client *c = registry_client_new(&cfg, &e);
	ok(c == NULL && e.code == -EINVAL && strstr(e.message, "insecure"),
	   "plain http without insecure refused: %s", e.message);
	cfg.insecure = true;
	c = registry_client_new(&cfg, &e);
	ok(c != NULL, "plain http with insecure");
	is_str(registry_client_url(c), "http://127.0.0.1:5000", "url kept");
	ok(!registry_client_is_docker_hub(c), "not hub");
	registry_client_free(c);

	cfg = (struct registry_config){.name = "hub", .url = "docker.io/", .http = h};
	c = registry_client_new(&cfg, &e);
	ok(c != NULL, "bare host means https");
	is_str(registry_client_url(c), "https://registry-1.docker.io", "docker.io mapped");
	ok(registry_client_is_docker_hub(c), "hub");
	registry_client_free(c);

	const char *bad[] = {"https://", "https://h/path", "https://user:pw@h", "ftp://h"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cfg = (struct registry_config){.name = "r", .url = bad[i], .http = h};
		err_clear(&e);
		c = registry_client_new(&cfg, &e);
		ok(c == NULL && e.code == -EINVAL && !strstr(e.message, "pw"), "bad url %zu: %s", i,
		   e.message);
	}
	cfg = (struct registry_config){
	    .name = "r", .url = "https://h", .username = "u", .password = NULL, .http = h};
	c = registry_client_new(&cfg, &e);
	ok(c == NULL, "username without password refused");
	for (int k = 0; k < REGISTRY_REQ__COUNT; k++)
		ok(registry_req_kind_name(k)[0] != '?', "kind %d named %s", k,
		   registry_req_kind_name(k));
	http_engine_free(h);
}

/* ---- a scripted registry on the test peer (tests/unit/peer.h) ---- */

struct fake {
	struct peer *peer;
	int port;
	pthread_mutex_t mu;
	/* scenario state */
	int mode;
	int token_fetches;
	int registry_requests;
	int blob_attempts;
	int failures_left;
	char last_token_auth[256];
	char storage_auth[256]; /* Authorization seen at the "storage" path */
	int storage_auth_seen;
	char log[8192];
};

static const char blob_data[] = "hello blob bytes, streamed and verified";

static void fake_reply(struct peer_answer *a, int status, const char *extra, const char *body,
		       size_t len)
{
	a->status = status;
	if (extra)
		buf_adds(&a->own_headers, extra);
	if (len)
		peer_add_body(a, body, len);
}

/* One request (the peer's thread). */
static void fake_handle(void *ctx, const struct peer_request *rq, struct peer_answer *a)
{
	struct fake *f = ctx;
	char auth[512] = "", range[64] = "";
	const char *method = rq->method, *path = rq->target;
	peer_req_header(rq, "Authorization", auth, sizeof(auth));
	peer_req_header(rq, "Range", range, sizeof(range));
	char extra[1024];
	pthread_mutex_lock(&f->mu);
	size_t ll = strlen(f->log);
	snprintf(f->log + ll, sizeof(f->log) - ll, "%s %s [%s]\n", method, path,
		 auth[0] ? (strncmp(auth, "Bearer", 6) == 0 ? "bearer" : "basic") : "-");
	if (strncmp(path, "/token", 6) == 0) {
		f->token_fetches++;
		str_copy_fit(f->last_token_auth, auth, sizeof(f->last_token_auth));
		char body[256];
		if (f->mode == 3 && strcmp(auth, "Basic dTpnb29k") != 0) {
			/* wrong password at the token server */
			const char *eb = "{\"details\":\"incorrect username or password\"}";
			pthread_mutex_unlock(&f->mu);
			fake_reply(a, 401, "Content-Type: application/json\r\n", eb, strlen(eb));
			return;
		}
		int n = snprintf(body, sizeof(body), "{\"token\":\"tok%d\",\"expires_in\":300}",
				 f->token_fetches);
		pthread_mutex_unlock(&f->mu);
		fake_reply(a, 200, "Content-Type: application/json\r\n", body, (size_t)n);
		return;
	}
	if (strncmp(path, "/storage/", 9) == 0) {
		f->storage_auth_seen = 1;
		str_copy_fit(f->storage_auth, auth, sizeof(f->storage_auth));
		f->blob_attempts++;
		pthread_mutex_unlock(&f->mu);
		if (f->mode == 5 && f->blob_attempts == 1) {
			/* send half of the body, then drop the connection */
			fake_reply(a, 200, NULL, blob_data, sizeof(blob_data) - 1);
			a->fault = PEER_CUT_MID_BODY;
			return;
		}
		if (range[0]) {
			unsigned long from = strtoul(range + 6, NULL, 10);
			snprintf(extra, sizeof(extra), "Content-Range: bytes %lu-%zu/%zu\r\n", from,
				 sizeof(blob_data) - 2, sizeof(blob_data) - 1);
			fake_reply(a, 206, extra, blob_data + from, sizeof(blob_data) - 1 - from);
			return;
		}
		if (f->mode == 6) {
			fake_reply(a, 200, NULL, "corrupted", 9);
			return;
		}
		fake_reply(a, 200, NULL, blob_data, sizeof(blob_data) - 1);
		return;
	}
	f->registry_requests++;
	/* bearer auth required everywhere under /v2/ */
	bool authed = strcmp(auth, "Bearer tok2") == 0 || strcmp(auth, "Bearer tok1") == 0;
	if (f->mode == 2 && strcmp(auth, "Bearer tok1") == 0)
		authed = false; /* the first token was revoked */
	if (!authed) {
		snprintf(extra, sizeof(extra),
			 "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:%d/token\","
			 "service=\"fake\",scope=\"repository:x:pull\"\r\n"
			 "Content-Type: application/json\r\n",
			 f->port);
		const char *eb =
		    "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication "
		    "required\"}]}";
		pthread_mutex_unlock(&f->mu);
		fake_reply(a, 401, extra, eb, strlen(eb));
		return;
	}
	if (f->failures_left > 0) {
		f->failures_left--;
		pthread_mutex_unlock(&f->mu);
		if (f->mode == 5) /* Docker Hub's pull limit, spent */
			fake_reply(a, 429,
				   "ratelimit-limit: 100;w=21600\r\n"
				   "ratelimit-remaining: 0;w=21600\r\n",
				   "", 0);
		else
			fake_reply(a, f->mode == 4 ? 429 : 503, "Retry-After: 0\r\n", "", 0);
		return;
	}
	pthread_mutex_unlock(&f->mu);
	if (strstr(path, "/blobs/sha256:")) {
		snprintf(extra, sizeof(extra),
			 "Location: http://localhost:%d/storage/blob?sig=1\r\n", f->port);
		fake_reply(a, 307, extra, "", 0);
		return;
	}
	if (strstr(path, "/manifests/missing")) {
		const char *eb = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":"
				 "\"manifest unknown\"}]}";
		fake_reply(a, 404, "Content-Type: application/json\r\n", eb, strlen(eb));
		return;
	}
	if (strstr(path, "/manifests/")) {
		const char *m = "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX
				"\",\"manifests\":[]}";
		fake_reply(a, 200, "Content-Type: " REGISTRY_MT_OCI_INDEX "\r\n", m, strlen(m));
		return;
	}
	if (strstr(path, "/tags/list")) {
		if (strstr(path, "last=b")) {
			const char *b = "{\"name\":\"x\",\"tags\":[\"c\"]}";
			fake_reply(a, 200, NULL, b, strlen(b));
		} else {
			const char *b = "{\"name\":\"x\",\"tags\":[\"a\",\"b\"]}";
			fake_reply(a, 200, "Link: </v2/x/tags/list?last=b&n=2>; rel=\"next\"\r\n",
				   b, strlen(b));
		}
		return;
	}
	fake_reply(a, 404, NULL, "", 0);
}

static int fake_start(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->peer = peer_start();
	if (!f->peer)
		return -1;
	f->port = peer_port(f->peer);
	peer_set_handler(f->peer, fake_handle, f);
	return 0;
}

static void fake_stop(struct fake *f)
{
	peer_stop(f->peer);
	pthread_mutex_destroy(&f->mu);
}

struct collect {
	struct buf b;
};
static int collect_sink(void *ctx, const void *d, size_t n)
{
	buf_add(&((struct collect *)ctx)->b, d, n);
	return 0;
}
static int collect_name(void *ctx, const char *name)
{
	struct buf *b = ctx;
	buf_adds(b, name);
	buf_addch(b, ',');
	return 0;
}

static struct registry_client *fake_client(struct fake *f, struct http_engine *h, const char *user,
					   const char *pass)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
	struct registry_config cfg = {.name = "fake",
				      .url = url,
				      .username = user,
				      .password = pass,
				      .insecure = true,
				      .http = h,
				      .retry = {4, 1, 5}};
	struct dth_err e;
	return registry_client_new(&cfg, &e);
}

static void test_ratelimit_parse(void)
{
	int64_t n, w;
	ok(registry_parse_ratelimit("76;w=21600", &n, &w) == 0 && n == 76 && w == 21600,
	   "ratelimit: count and window");
	ok(registry_parse_ratelimit(" 5", &n, &w) == 0 && n == 5 && w == -1,
	   "ratelimit: count alone");
	ok(registry_parse_ratelimit("x;w=1", &n, &w) == -1 && n == -1, "ratelimit: garbage");
	ok(registry_parse_ratelimit("-3;w=1", &n, &w) == -1, "ratelimit: negative refused");
	ok(registry_parse_ratelimit(NULL, &n, &w) == -1, "ratelimit: absent");
}

static void test_fake_server(void)
{
	struct fake f;
	if (fake_start(&f) != 0) {
		ok(0, "fake server started");
		return;
	}
	struct http_engine *h = http_engine_new(&(struct http_engine_opts){.tls_verify = true});
	struct dth_err e;
	char blob_digest[REGISTRY_DIGEST_MAX];
	registry_digest_of(blob_data, sizeof(blob_data) - 1, blob_digest);

	/* bearer: challenge, token with basic creds, cached for the next call */
	struct registry_client *c = fake_client(&f, h, "u", "good");
	struct registry_manifest m;
	registry_manifest_init(&m);
	err_clear(&e);
	int rc = registry_manifest_get(c, "x", "v1", &m, &e);
	is_int(rc, 0, "manifest get through a bearer challenge: %s", e.message);
	is_str(m.media_type, REGISTRY_MT_OCI_INDEX, "media type");
	ok(registry_digest_valid(m.digest) && m.size == m.body.len && m.size > 0,
	   "digest and size of the body");
	is_int(f.token_fetches, 1, "one token fetch");
	is_str(f.last_token_auth, "Basic dTpnb29k", "token fetched with basic credentials");
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, 0, "manifest head with the cached token");
	is_int(f.token_fetches, 1, "token reused (same scope)");
	uint64_t counts[REGISTRY_REQ__COUNT];
	registry_client_counts(c, counts);
	is_int(counts[REGISTRY_REQ_GET], 2, "2 GETs counted (401 + retry)");
	is_int(counts[REGISTRY_REQ_HEAD], 1, "1 HEAD counted");
	is_int(counts[REGISTRY_REQ_OTHER], 1, "token fetch counted as other");

	/* a missing manifest */
	err_clear(&e);
	rc = registry_manifest_get(c, "x", "missing", &m, &e);
	is_int(rc, -ENOENT, "missing manifest: -ENOENT");
	is_str(e.remote_code, "MANIFEST_UNKNOWN", "registry error code carried");
	is_int(e.http_status, 404, "status carried");
	ok(strstr(e.message, "manifest unknown") != NULL, "message carried: %s", e.message);

	/* digest asked for does not match the bytes */
	err_clear(&e);
	rc = registry_manifest_get(c, "x", D_EMPTY, &m, &e);
	is_int(rc, -EBADMSG, "GET by digest verifies the bytes: %s", e.message);

	/* blob: redirect to storage without the registry's Authorization */
	struct collect col = {BUF_INIT};
	uint64_t size = 0;
	err_clear(&e);
	rc = registry_blob_get(c, "x", blob_digest, sizeof(blob_data) - 1, collect_sink, &col,
			       &size, &e);
	is_int(rc, 0, "blob get via redirect: %s", e.message);
	ok(col.b.len == sizeof(blob_data) - 1 && !memcmp(col.b.data, blob_data, col.b.len),
	   "blob bytes delivered");
	is_int(size, sizeof(blob_data) - 1, "size out");
	ok(f.storage_auth_seen && f.storage_auth[0] == '\0',
	   "no Authorization sent to the storage host");

	/* the exact size is required: an answer of another size is refused before
	 * the sink sees a byte of it (a size of 0 is no exception: it means 0) */
	const uint64_t bad_sizes[] = {0, 1, sizeof(blob_data) - 2, sizeof(blob_data), 100 << 20};
	for (size_t i = 0; i < ARRAY_SIZE(bad_sizes); i++) {
		buf_reset(&col.b);
		err_clear(&e);
		rc = registry_blob_get(c, "x", blob_digest, bad_sizes[i], collect_sink, &col, &size,
				       &e);
		is_int(rc, -EBADMSG, "blob get expecting %llu bytes: -EBADMSG (%s)",
		       (unsigned long long)bad_sizes[i], e.message);
		ok(col.b.len == 0, "expecting %llu bytes: the sink saw none of the %zu",
		   (unsigned long long)bad_sizes[i], sizeof(blob_data) - 1);
		ok(strstr(e.message, "announces 39 bytes") != NULL, "the message says why");
	}

	/* a connection dropped mid-body resumes with Range; the sink sees each byte once */
	f.mode = 5;
	f.blob_attempts = 0;
	buf_reset(&col.b);
	err_clear(&e);
	rc = registry_blob_get(c, "x", blob_digest, sizeof(blob_data) - 1, collect_sink, &col,
			       &size, &e);
	is_int(rc, 0, "blob get resumed after a reset: %s", e.message);
	ok(col.b.len == sizeof(blob_data) - 1 && !memcmp(col.b.data, blob_data, col.b.len),
	   "resumed bytes exact, none repeated");
	is_int(f.blob_attempts, 2, "two storage requests");

	/* corrupted bytes (of the size asked for) */
	f.mode = 6;
	buf_reset(&col.b);
	err_clear(&e);
	rc = registry_blob_get(c, "x", blob_digest, 9, collect_sink, &col, &size, &e);
	is_int(rc, -EBADMSG, "digest mismatch: -EBADMSG (%s)", e.message);
	ok(strstr(e.message, "digest") != NULL, "the message says digest");
	/* fewer bytes than the size asked for */
	buf_reset(&col.b);
	err_clear(&e);
	rc = registry_blob_get(c, "x", blob_digest, 10, collect_sink, &col, &size, &e);
	is_int(rc, -EBADMSG, "short answer: -EBADMSG (%s)", e.message);

	/* tags with Link pagination */
	f.mode = 0;
	struct buf names = BUF_INIT;
	err_clear(&e);
	rc = registry_tags_list(c, "x", collect_name, &names, &e);
	is_int(rc, 0, "tags list: %s", e.message);
	is_str(buf_str(&names), "a,b,c,", "both pages");
	buf_release(&names);

	/* 503 then success: retried */
	f.failures_left = 2;
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, 0, "503s retried");
	is_int(f.failures_left, 0, "both failures consumed");
	/* 429 until the attempts run out: -EIO */
	f.mode = 4;
	f.failures_left = 100;
	err_clear(&e);
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, -EBUSY, "429 after retries: -EBUSY");
	is_int(100 - f.failures_left, 4, "max_attempts requests made");
	/* 429 with Docker Hub's headers saying no pull is left: no retries */
	int64_t rl_lim, rl_rem, rl_win;
	registry_client_ratelimit(c, &rl_lim, &rl_rem, &rl_win);
	ok(rl_lim == -1 && rl_rem == -1 && rl_win == -1, "rate limit unknown before any header");
	f.mode = 5;
	f.failures_left = 100;
	err_clear(&e);
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, -EBUSY, "spent pull limit: -EBUSY");
	is_int(100 - f.failures_left, 1, "no retry into a spent pull limit");
	ok(strstr(e.message, "pull rate limit") && strstr(e.message, "0 of 100 left") &&
	       strstr(e.message, "per 21600 s"),
	   "the message says so: %s", e.message);
	registry_client_ratelimit(c, &rl_lim, &rl_rem, &rl_win);
	ok(rl_lim == 100 && rl_rem == 0 && rl_win == 21600, "rate limit remembered");
	f.failures_left = 0;
	registry_client_free(c);

	/* a revoked cached token: the 401 refetches once */
	f.mode = 0;
	f.token_fetches = 0;
	c = fake_client(&f, h, NULL, NULL);
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, 0, "anonymous token accepted");
	f.mode = 2;
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, 0, "revoked token replaced: %s", e.message);
	is_int(f.token_fetches, 2, "fetched twice (tok1 refused, tok2 ok)");
	ok(f.last_token_auth[0] == '\0', "anonymous token request has no Authorization");
	registry_client_free(c);

	/* wrong password at the token server: -EACCES, no secret in the message */
	f.mode = 3;
	c = fake_client(&f, h, "u", "s3cr3t-pw");
	err_clear(&e);
	rc = registry_manifest_head(c, "x", "v1", &m, &e);
	is_int(rc, -EACCES, "wrong password: -EACCES");
	ok(strstr(e.message, "s3cr3t") == NULL && strstr(e.message, "dTpz") == NULL,
	   "no password in the message: %s", e.message);
	ok(strstr(e.message, "username and password") != NULL, "message says what to check");
	registry_client_free(c);

	registry_manifest_release(&m);
	buf_release(&col.b);
	http_engine_free(h);
	fake_stop(&f);
}

int main(void)
{
	if (http_global_init() != 0) {
		printf("Bail out! curl init\n");
		return 1;
	}
	test_digest();
	test_repo_tag();
	test_reference();
	test_normalize();
	test_www_authenticate();
	test_link();
	test_resolve();
	test_media_types();
	test_blob_unknown();
	test_client_new();
	test_ratelimit_parse();
	test_fake_server();
	return tap_done();
}
