/* agent/httpd: a real server on 127.0.0.1:0, on a Unix socket and with TLS,
 * talked to with libcurl (directly, and through remote/http.c). */
#include "common/compat.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/httpd.h"
#include "common/buf.h"
#include "common/log.h"
#include "remote/http.h"
#include "tests/unit/tap.h"

#define MAX_BODY (64 * 1024)

static char dir[64];
static atomic_int handler_calls;

/* The slow handler's rendezvous. */
static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cv = PTHREAD_COND_INITIALIZER;
static bool slow_entered, slow_release, slow_done;

static void slow_handler(void)
{
	pthread_mutex_lock(&slow_mu);
	slow_entered = true;
	pthread_cond_broadcast(&slow_cv);
	while (!slow_release)
		pthread_cond_wait(&slow_cv, &slow_mu);
	slow_done = true;
	pthread_mutex_unlock(&slow_mu);
}

/* Echo what arrived as JSON. */
static void handler(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	(void)ctx;
	atomic_fetch_add(&handler_calls, 1);
	if (!strcmp(req->path, "/nostatus"))
		return;
	if (!strcmp(req->path, "/slow"))
		slow_handler();
	if (!strcmp(req->path, "/static")) { /* its own CSP and caching, a static body */
		static const char text[] = "<p>static</p>";
		resp->status = 200;
		resp->content_type = "text/html; charset=utf-8";
		resp->body_static = text;
		resp->body_static_len = sizeof(text) - 1;
		if (httpd_resp_header(resp, "Content-Security-Policy", "default-src 'self'") ||
		    httpd_resp_header(resp, "cache-control", "no-cache"))
			resp->status = 599;
		return;
	}
	if (!strcmp(req->path, "/missing")) {
		httpd_resp_error(resp, 404, "not_found", "name", "no task called %s", "x");
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "method", json_string(req->method));
	json_object_set_new(o, "path", json_string(req->path));
	json_object_set_new(o, "raw_path", json_string(req->raw_path));
	json_object_set_new(o, "query", json_string(req->query));
	json_object_set_new(o, "body_len", json_integer((json_int_t)req->body_len));
	unsigned long sum = 0;
	for (size_t i = 0; i < req->body_len; i++)
		sum = sum * 31 + (unsigned char)req->body[i];
	json_object_set_new(o, "body_sum", json_integer((json_int_t)(sum & 0x7fffffff)));
	struct buf q = BUF_INIT;
	if (httpd_query(req, "q", &q) == 0)
		json_object_set_new(o, "q", json_string(buf_str(&q)));
	buf_release(&q);
	const char *xt = httpd_header(req, "X-Test");
	if (xt)
		json_object_set_new(o, "x_test", json_string(xt));
	json_object_set_new(o, "json", json_boolean(httpd_is_json(req)));
	char *s = json_dumps(o, JSON_COMPACT);
	buf_adds(&resp->body, s);
	free(s);
	json_decref(o);
	resp->status = !strcmp(req->method, "POST") ? 201 : 200;
	if (httpd_resp_header(resp, "X-Echo", "yes") != 0)
		resp->status = 599;
}

/* The early hook: no "X-Key: yes", no entry. */
static atomic_int early_calls;
static void early(void *ctx, const struct httpd_req *req, struct httpd_resp *resp)
{
	(void)ctx;
	atomic_fetch_add(&early_calls, 1);
	const char *k = httpd_header(req, "X-Key");
	if (req->body_len != 0 || !k || strcmp(k, "yes") != 0)
		httpd_resp_error(resp, 401, "unauthorized", NULL, "no key");
}

static unsigned long body_sum(const char *b, size_t n)
{
	unsigned long sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = sum * 31 + (unsigned char)b[i];
	return sum & 0x7fffffff;
}

/* ---- a small libcurl client ---- */

struct answer {
	long status;
	struct buf body;
	struct buf hdrs;
	CURLcode cc;
};

static size_t on_body(char *d, size_t s, size_t n, void *ud)
{
	buf_add(ud, d, s * n);
	return s * n;
}

struct chunk_src {
	const char *data;
	size_t len, off;
};

static size_t on_read(char *dst, size_t s, size_t n, void *ud)
{
	struct chunk_src *c = ud;
	size_t room = s * n, left = c->len - c->off;
	if (room > 1000)
		room = 1000; /* several chunks */
	size_t k = left < room ? left : room;
	memcpy(dst, c->data + c->off, k);
	c->off += k;
	return k;
}

struct call {
	const char *base;     /* "http://127.0.0.1:PORT" */
	const char *unix_at;  /* or a Unix socket path */
	const char *ca;	      /* TLS: the CA file */
	const char *method;   /* NULL: GET */
	const char *path;     /* "/..." as sent */
	const char *body;     /* NULL: none */
	size_t body_len;      /* */
	bool chunked;	      /* send body chunked */
	const char *hdr;      /* an extra header line */
	const char *hdr2;     /* another */
	bool expect_continue; /* let curl wait for 100 Continue */
};

static void call(const struct call *c, struct answer *a)
{
	a->status = 0;
	buf_init(&a->body);
	buf_init(&a->hdrs);
	CURL *h = curl_easy_init();
	struct buf url = BUF_INIT;
	buf_addf(&url, "%s%s", c->base ? c->base : "http://localhost", c->path);
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	if (c->unix_at)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_at);
	if (c->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	struct curl_slist *hl = NULL;
	if (c->hdr)
		hl = curl_slist_append(hl, c->hdr);
	if (c->hdr2)
		hl = curl_slist_append(hl, c->hdr2);
	if (!c->expect_continue)
		hl = curl_slist_append(hl, "Expect:");
	struct chunk_src src = {c->body, c->body_len, 0};
	if (c->chunked) {
		hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &src);
	} else if (c->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
	}
	if (c->method)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &a->hdrs);
	a->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	buf_release(&url);
}

static void answer_release(struct answer *a)
{
	buf_release(&a->body);
	buf_release(&a->hdrs);
}

/* A string member of the answer's JSON (or of its "error" object). */
static char *jstr(const struct answer *a, const char *key, bool in_error)
{
	json_t *o = json_loads(buf_str(&a->body), 0, NULL);
	json_t *from = in_error ? json_object_get(o, "error") : o;
	json_t *v = json_object_get(from, key);
	char *r = NULL;
	if (json_is_string(v))
		r = xstrdup(json_string_value(v));
	else if (json_is_integer(v)) {
		char n[32];
		xsnprintf(n, sizeof(n), "%lld", (long long)json_integer_value(v));
		r = xstrdup(n);
	} else if (json_is_boolean(v))
		r = xstrdup(json_is_true(v) ? "true" : "false");
	json_decref(o);
	return r;
}

#define is_json(a, key, want, ...)                                                                 \
	do {                                                                                       \
		char *got_ = jstr((a), (key), false);                                              \
		is_str(got_, (want), __VA_ARGS__);                                                 \
		free(got_);                                                                        \
	} while (0)

#define is_error(a, st_, code_, ...)                                                               \
	do {                                                                                       \
		is_int((a)->status, (st_), __VA_ARGS__);                                           \
		char *got_ = jstr((a), "code", true);                                              \
		is_str(got_, (code_), "  error code %s", (code_));                                 \
		free(got_);                                                                        \
	} while (0)

static bool has_header(const struct answer *a, const char *line)
{
	return strcasestr(buf_str(&a->hdrs), line) != NULL;
}

/* ---- tests ---- */

static struct httpd *start(const struct httpd_opts *o, char *base, size_t basesz)
{
	struct dth_err err;
	err_clear(&err);
	struct httpd *h = httpd_new(o, handler, NULL, &err);
	ok(h != NULL, "httpd on %s starts (%s)", o->listen, err.message);
	if (h && base)
		xsnprintf(base, basesz, "%s://%s", o->tls_cert ? "https" : "http", httpd_bound(h));
	return h;
}

static void test_routing(const char *base)
{
	struct answer a;
	call(&(struct call){.base = base,
			    .path = "/api/v1/tasks/a%20b%2Fc?x=1&q=a+b%2Bc%26d&q=2",
			    .hdr = "X-Test: hello"},
	     &a);
	is_int(a.status, 200, "GET with a query");
	is_json(&a, "method", "GET", "the method");
	is_json(&a, "path", "/api/v1/tasks/a b/c", "the path, percent-decoded");
	is_json(&a, "raw_path", "/api/v1/tasks/a%20b%2Fc", "the path as sent");
	is_json(&a, "query", "x=1&q=a+b%2Bc%26d&q=2", "the query as sent");
	is_json(&a, "q", "a b+c&d", "a query value: + is a space, %%2B a plus, the first one");
	is_json(&a, "x_test", "hello", "a request header");
	ok(has_header(&a, "Cache-Control: no-store\r\n"), "Cache-Control: no-store");
	ok(has_header(&a, "X-Content-Type-Options: nosniff\r\n"), "X-Content-Type-Options");
	ok(has_header(&a, "Content-Type: application/json\r\n"), "Content-Type defaults to JSON");
	ok(has_header(&a, "X-Echo: yes\r\n"), "an extra header from the handler");
	ok(has_header(&a, "X-Frame-Options: DENY\r\n"), "X-Frame-Options: DENY");
	ok(has_header(&a,
		      "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"),
	   "the API's Content-Security-Policy");
	answer_release(&a);

	call(&(struct call){.base = base, .path = "/static"}, &a);
	is_int(a.status, 200, "a static body");
	ok(a.body.len == 13 && !memcmp(a.body.data, "<p>static</p>", 13), "  sent whole");
	ok(has_header(&a, "Content-Security-Policy: default-src 'self'\r\n") &&
	       !has_header(&a, "frame-ancestors"),
	   "  the handler's own CSP replaces the layer's");
	ok(has_header(&a, "cache-control: no-cache\r\n") && !has_header(&a, "no-store"),
	   "  and its Cache-Control (names compared without case)");
	ok(has_header(&a, "X-Frame-Options: DENY\r\n"), "  X-Frame-Options still there");
	answer_release(&a);

	call(&(struct call){.base = base, .path = "/plain?q"}, &a);
	is_json(&a, "q", "", "a query name without = has the value \"\"");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/plain?qq=1"}, &a);
	char *q = jstr(&a, "q", false);
	ok(q == NULL, "an absent query parameter is absent");
	free(q);
	answer_release(&a);

	call(&(struct call){.base = base, .path = "/x", .method = "DELETE"}, &a);
	is_json(&a, "method", "DELETE", "DELETE reaches the handler");
	answer_release(&a);

	int before = atomic_load(&handler_calls);
	const char *bad[] = {"/a%00b", "/a?q=%00", "/a%zz", "/a%2", "/a?q=%G1", "/a?q=1%"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		call(&(struct call){.base = base, .path = bad[i]}, &a);
		is_error(&a, 400, "bad_request", "%s is refused 400", bad[i]);
		ok(has_header(&a, "Cache-Control: no-store\r\n") &&
		       has_header(&a, "X-Content-Type-Options: nosniff\r\n") &&
		       has_header(&a, "X-Frame-Options: DENY\r\n") &&
		       has_header(&a, "Content-Security-Policy: default-src 'none'"),
		   "  with the common headers");
		answer_release(&a);
	}
	call(&(struct call){.base = base, .path = "/x", .method = "TRACE"}, &a);
	is_error(&a, 405, "method_not_allowed", "TRACE is refused 405");
	ok(has_header(&a, "Allow: GET, HEAD, POST, PUT, PATCH, DELETE"), "  with Allow");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/x", .method = "OPTIONS"}, &a);
	is_error(&a, 405, "method_not_allowed", "OPTIONS is refused 405");
	answer_release(&a);
	is_int(atomic_load(&handler_calls), before, "none of the refused reached the handler");

	call(&(struct call){.base = base, .path = "/nostatus"}, &a);
	is_error(&a, 500, "internal", "a handler that sets no status gives 500");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/missing"}, &a);
	is_error(&a, 404, "not_found", "httpd_resp_error");
	char *f = jstr(&a, "field", true), *m = jstr(&a, "message", true);
	is_str(f, "name", "  names the field");
	is_str(m, "no task called x", "  and says why");
	free(f);
	free(m);
	answer_release(&a);
}

static void test_bodies(const char *base)
{
	char *big = xmalloc(MAX_BODY + 2);
	for (size_t i = 0; i < MAX_BODY + 2; i++)
		big[i] = (char)(i * 7 + 3);
	struct answer a;
	char want[32];

	call(&(struct call){.base = base, .path = "/b", .body = big, .body_len = MAX_BODY}, &a);
	is_int(a.status, 201, "a body of exactly max_body is taken");
	xsnprintf(want, sizeof(want), "%d", MAX_BODY);
	is_json(&a, "body_len", want, "  whole");
	xsnprintf(want, sizeof(want), "%lu", body_sum(big, MAX_BODY));
	is_json(&a, "body_sum", want, "  byte for byte");
	answer_release(&a);

	int before = atomic_load(&handler_calls);
	call(&(struct call){.base = base,
			    .path = "/b",
			    .body = big,
			    .body_len = MAX_BODY + 1,
			    .expect_continue = true},
	     &a);
	is_error(&a, 413, "too_large", "max_body + 1 (Content-Length, Expect) is refused 413");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/b", .body = big, .body_len = MAX_BODY + 1}, &a);
	ok(a.status == 413 || a.cc == CURLE_SEND_ERROR || a.cc == CURLE_RECV_ERROR,
	   "max_body + 1 sent at once is refused (status %ld, curl %d)", a.status, (int)a.cc);
	answer_release(&a);

	call(
	    &(struct call){
		.base = base, .path = "/b", .body = big, .body_len = 5000, .chunked = true},
	    &a);
	is_int(a.status, 201, "a chunked body is taken");
	is_json(&a, "body_len", "5000", "  whole");
	xsnprintf(want, sizeof(want), "%lu", body_sum(big, 5000));
	is_json(&a, "body_sum", want, "  byte for byte");
	answer_release(&a);
	call(
	    &(struct call){
		.base = base, .path = "/b", .body = big, .body_len = MAX_BODY, .chunked = true},
	    &a);
	is_int(a.status, 201, "a chunked body of exactly max_body is taken");
	answer_release(&a);
	int mid = atomic_load(&handler_calls);
	call(
	    &(struct call){
		.base = base, .path = "/b", .body = big, .body_len = MAX_BODY + 1, .chunked = true},
	    &a);
	is_error(&a, 413, "too_large", "a chunked body of max_body + 1 is refused 413");
	answer_release(&a);
	is_int(atomic_load(&handler_calls), mid, "the too large bodies never reached the handler");
	(void)before;

	/* The connection still serves after a refusal. */
	call(&(struct call){.base = base, .path = "/after"}, &a);
	is_int(a.status, 200, "the server still answers");
	answer_release(&a);
	free(big);
}

static void test_require_json(void)
{
	char base[320];
	struct httpd_opts o = {.listen = "127.0.0.1:0", .require_json = true};
	struct httpd *h = start(&o, base, sizeof(base));
	if (!h)
		return;
	struct answer a;
	call(&(struct call){.base = base,
			    .path = "/j",
			    .body = "{}",
			    .body_len = 2,
			    .hdr = "Content-Type: text/plain"},
	     &a);
	is_error(&a, 415, "unsupported_media_type", "require_json: text/plain is refused 415");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/j", .body = "{}", .body_len = 2}, &a);
	is_error(&a, 415, "unsupported_media_type", "require_json: a form body is refused 415");
	answer_release(&a);
	call(&(struct call){.base = base,
			    .path = "/j",
			    .body = "{}",
			    .body_len = 2,
			    .hdr = "Content-Type: Application/JSON; charset=utf-8"},
	     &a);
	is_int(a.status, 201, "require_json: application/json with a charset is taken");
	is_json(&a, "json", "true", "  and httpd_is_json says so");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/j"}, &a);
	is_int(a.status, 200, "require_json: a GET without a body is taken");
	answer_release(&a);
	httpd_free(h);

	/* The early hook answers from the headers, before the body. */
	o = (struct httpd_opts){.listen = "127.0.0.1:0", .early = early};
	h = start(&o, base, sizeof(base));
	if (!h)
		return;
	char *body = xcalloc(1, 60000);
	memset(body, 'x', 59999);
	int calls = atomic_load(&handler_calls);
	call(&(struct call){.base = base,
			    .path = "/e",
			    .body = body,
			    .body_len = 59999,
			    .expect_continue = true},
	     &a);
	is_error(&a, 401, "unauthorized", "early: refused from the headers");
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/e", .body = body, .body_len = 59999}, &a);
	ok(a.status == 401 || a.cc == CURLE_SEND_ERROR || a.cc == CURLE_RECV_ERROR,
	   "early: refused with the body sent at once (status %ld)", a.status);
	answer_release(&a);
	is_int(atomic_load(&handler_calls), calls, "  the handler was not called");
	call(
	    &(struct call){
		.base = base, .path = "/e", .body = body, .body_len = 59999, .hdr = "X-Key: yes"},
	    &a);
	is_int(a.status, 201, "early: let through, the handler gets the body");
	is_json(&a, "body_len", "59999", "  whole");
	answer_release(&a);
	ok(atomic_load(&early_calls) == 3, "early was called once per request");
	free(body);
	httpd_free(h);
}

struct worker {
	struct http_engine *e;
	const char *base;
	int id;
	int good;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct http_resp r;
	http_resp_init(&r);
	for (int i = 0; i < 100; i++) {
		char url[400], want[64];
		xsnprintf(url, sizeof(url), "%s/w/%d/%d?q=%d", w->base, w->id, i, i);
		xsnprintf(want, sizeof(want), "\"path\":\"/w/%d/%d\"", w->id, i);
		char body[32];
		int bl = xsnprintf(body, sizeof(body), "{\"n\":%d}", i);
		struct http_req req = {.method = i % 2 ? "POST" : "GET",
				       .url = url,
				       .body = i % 2 ? body : NULL,
				       .body_len = i % 2 ? (size_t)bl : 0};
		struct dth_err err;
		err_clear(&err);
		if (http_perform(w->e, &req, &r, &err) == 0 && r.status == (i % 2 ? 201 : 200) &&
		    strstr(buf_str(&r.body), want))
			w->good++;
	}
	http_resp_release(&r);
	return NULL;
}

static void test_concurrent(const char *base)
{
	struct http_engine *e = http_engine_new(NULL);
	struct worker w[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){e, base, i, 0};
		pthread_create(&t[i], NULL, worker_run, &w[i]);
	}
	int good = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		good += w[i].good;
	}
	is_int(good, 800, "8 clients x 100 requests, every answer right");
	http_engine_free(e);
}

static int connect_tcp(const char *bound)
{
	const char *colon = strrchr(bound, ':');
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)atoi(colon + 1))};
	sa.sin_addr.s_addr = htonl(0x7f000001);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_idle_clients(void)
{
	/* One thread: a client that sends nothing or half a request must not
	 * hold it. */
	char base[320];
	struct httpd_opts o = {.listen = "127.0.0.1:0", .threads = 1};
	struct httpd *h = start(&o, base, sizeof(base));
	if (!h)
		return;
	int idle[4];
	for (int i = 0; i < 4; i++)
		idle[i] = connect_tcp(httpd_bound(h));
	const char *half = "POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
	ok(idle[0] >= 0 && write(idle[1], half, strlen(half)) == (ssize_t)strlen(half),
	   "idle clients connected");
	struct answer a;
	call(&(struct call){.base = base, .path = "/busy"}, &a);
	is_int(a.status, 200, "a request is served while clients hang on the only thread");
	answer_release(&a);
	for (int i = 0; i < 4; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	httpd_free(h);
}

struct slow_client {
	const char *base;
	long status;
};

static void *slow_client_run(void *arg)
{
	struct slow_client *s = arg;
	struct answer a;
	call(&(struct call){.base = s->base, .path = "/slow"}, &a);
	s->status = a.status;
	answer_release(&a);
	return NULL;
}

struct freer {
	struct httpd *h;
	bool done_at_return;
	atomic_bool returned;
};

static void *freer_run(void *arg)
{
	struct freer *f = arg;
	httpd_free(f->h);
	pthread_mutex_lock(&slow_mu);
	f->done_at_return = slow_done;
	pthread_mutex_unlock(&slow_mu);
	atomic_store(&f->returned, true);
	return NULL;
}

static void test_free_waits(void)
{
	char base[320];
	struct httpd_opts o = {.listen = "127.0.0.1:0"};
	struct httpd *h = start(&o, base, sizeof(base));
	if (!h)
		return;
	struct slow_client sc = {base, 0};
	pthread_t ct, ft;
	pthread_create(&ct, NULL, slow_client_run, &sc);
	pthread_mutex_lock(&slow_mu);
	while (!slow_entered)
		pthread_cond_wait(&slow_cv, &slow_mu);
	pthread_mutex_unlock(&slow_mu);
	struct freer f = {.h = h};
	pthread_create(&ft, NULL, freer_run, &f);
	/* Give httpd_free time to return early if it were to (it must not). */
	usleep(200 * 1000);
	ok(!atomic_load(&f.returned), "httpd_free has not returned while the handler runs");
	pthread_mutex_lock(&slow_mu);
	slow_release = true;
	pthread_cond_broadcast(&slow_cv);
	pthread_mutex_unlock(&slow_mu);
	pthread_join(ft, NULL);
	pthread_join(ct, NULL);
	ok(f.done_at_return, "httpd_free returned after the handler finished");
}

static void test_unix(void)
{
	struct dth_err err;
	err_clear(&err);
	char path[128], listen_at[160];
	xsnprintf(path, sizeof(path), "%s/agent.sock", dir);
	xsnprintf(listen_at, sizeof(listen_at), "unix:%s", path);

	/* A stale socket file (its process gone) is replaced. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	xsnprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "a stale socket file is there");
	close(s);

	struct httpd_opts o = {.listen = listen_at};
	struct httpd *h = start(&o, NULL, 0);
	if (!h)
		return;
	is_str(httpd_bound(h), listen_at, "bound names the socket");
	struct stat st;
	ok(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600,
	   "the socket is mode 0600 (%o)", (unsigned)(st.st_mode & 0777));

	struct answer a;
	call(&(struct call){.unix_at = path, .path = "/u%20x?q=1"}, &a);
	is_int(a.status, 200, "a request over the socket (curl)");
	is_json(&a, "path", "/u x", "  reaches the handler");
	answer_release(&a);

	struct http_engine_opts eo = {.unix_socket = path};
	struct http_engine *e = http_engine_new(&eo);
	struct http_resp r;
	http_resp_init(&r);
	struct http_req req = {.method = "PUT",
			       .url = "http://localhost/api/v1/tasks/t1",
			       .body = "{\"a\":1}",
			       .body_len = 7};
	int rc = http_perform(e, &req, &r, &err);
	ok(rc == 0 && r.status == 200 && strstr(buf_str(&r.body), "\"method\":\"PUT\"") &&
	       strstr(buf_str(&r.body), "\"body_len\":7"),
	   "remote/http.c reaches it with unix_socket (%s)", err.message);
	http_resp_release(&r);
	http_engine_free(e);

	/* A second server on the same live socket is refused. */
	struct httpd *h2 = httpd_new(&o, handler, NULL, &err);
	ok(!h2 && err.code == -EADDRINUSE, "a live socket is not taken over (%s)", err.message);
	httpd_free(h2);
	ok(stat(path, &st) == 0, "  and is left in place");

	httpd_free(h);
	ok(stat(path, &st) != 0 && errno == ENOENT, "httpd_free removes the socket file");

	/* Another kind of file is never replaced. */
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	err_clear(&err);
	h2 = httpd_new(&o, handler, NULL, &err);
	ok(!h2 && err.code == -EEXIST, "a regular file at the path is refused (%s)", err.message);
	ok(stat(path, &st) == 0 && S_ISREG(st.st_mode), "  and kept");
	unlink(path);

	char nodir[160];
	xsnprintf(nodir, sizeof(nodir), "unix:%s/nodir/agent.sock", dir);
	o.listen = nodir;
	h2 = httpd_new(&o, handler, NULL, &err);
	ok(!h2 && err.code == -ENOENT, "a socket in a missing directory: -ENOENT (%s)",
	   err.message);
}

static int run(const char *cmd)
{
	int rc = system(cmd);
	return rc == 0 ? 0 : -1;
}

static void test_tls(void)
{
	char cert[128], key[128], cmd[1024];
	xsnprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	xsnprintf(key, sizeof(key), "%s/key.pem", dir);
	xsnprintf(cmd, sizeof(cmd),
		  "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
		  "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null",
		  key, cert);
	if (run(cmd) != 0) {
		printf("# skip TLS: openssl cannot make a certificate\n");
		return;
	}
	struct dth_err err;
	err_clear(&err);
	struct httpd_opts o = {.listen = "127.0.0.1:0", .tls_cert = cert};
	struct httpd *h = httpd_new(&o, handler, NULL, &err);
	ok(!h && err.code == -EINVAL, "a certificate without a key is refused (%s)", err.message);
	o.tls_key = key;
	char base[320];
	h = start(&o, base, sizeof(base));
	if (!h)
		return;
	ok(str_startswith(base, "https://127.0.0.1:"), "served over https (%s)", base);
	struct answer a;
	call(&(struct call){.base = base, .ca = cert, .path = "/tls?q=z"}, &a);
	is_int(a.status, 200, "an https request verified against the certificate");
	is_json(&a, "q", "z", "  reaches the handler");
	answer_release(&a);
	char plain[330];
	xsnprintf(plain, sizeof(plain), "http://%s", httpd_bound(h));
	call(&(struct call){.base = plain, .path = "/tls"}, &a);
	ok(a.status != 200, "plain http to the https port gets no answer (status %ld)", a.status);
	answer_release(&a);
	httpd_free(h);

	/* A key that does not parse: the server does not start. */
	char bad[128];
	xsnprintf(bad, sizeof(bad), "%s/bad.pem", dir);
	int fd = open(bad, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	if (write(fd, "not a key\n", 10) != 10)
		printf("# short write\n");
	close(fd);
	o.tls_key = bad;
	err_clear(&err);
	h = httpd_new(&o, handler, NULL, &err);
	ok(!h && err.code == -EIO, "a bad key: the server does not start (%s)", err.message);
	o.tls_key = "/nonexistent/key.pem";
	h = httpd_new(&o, handler, NULL, &err);
	ok(!h && err.code == -ENOENT, "a missing key file: -ENOENT (%s)", err.message);
}

static void test_listen_errors(struct httpd *running)
{
	const char *bad[] = {"nonsense", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x",
			     ":80",	 "unix:",     "[::1]8080",	 "1:2:3"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dth_err err;
		err_clear(&err);
		struct httpd_opts o = {.listen = bad[i]};
		struct httpd *h = httpd_new(&o, handler, NULL, &err);
		ok(!h && err.code == -EINVAL, "listen '%s' is -EINVAL (%s)", bad[i], err.message);
		httpd_free(h);
	}
	struct dth_err err;
	err_clear(&err);
	struct httpd_opts o = {.listen = httpd_bound(running)};
	struct httpd *h = httpd_new(&o, handler, NULL, &err);
	ok(!h && err.code == -EADDRINUSE, "a port in use is -EADDRINUSE (%s)", err.message);
	httpd_free(h);

	o.listen = "[::1]:0";
	h = httpd_new(&o, handler, NULL, &err);
	if (!h) {
		printf("# skip IPv6: %s\n", err.message);
		return;
	}
	ok(str_startswith(httpd_bound(h), "[::1]:"), "IPv6: bound is %s", httpd_bound(h));
	char base[320];
	xsnprintf(base, sizeof(base), "http://%s", httpd_bound(h));
	struct answer a;
	call(&(struct call){.base = base, .path = "/six"}, &a);
	is_int(a.status, 200, "a request over IPv6");
	answer_release(&a);
	httpd_free(h);
}

static void test_access_log(void)
{
	char logp[128];
	xsnprintf(logp, sizeof(logp), "%s/log", dir);
	fflush(stderr);
	int saved = dup(2);
	int fd = open(logp, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	/* The level is set before the server's threads start and put back
	 * after they end (the logger's threshold is not to change under them). */
	log_set_level(LOG_DEBUG);
	char base[320];
	struct httpd_opts o = {.listen = "127.0.0.1:0"};
	struct httpd *h = start(&o, base, sizeof(base));
	struct answer a;
	call(&(struct call){.base = base,
			    .path = "/logged/a%20b?secret=1",
			    .hdr = "Authorization: Bearer sekrit-token-value"},
	     &a);
	answer_release(&a);
	call(&(struct call){.base = base, .path = "/bad%00"}, &a);
	answer_release(&a);
	httpd_free(h); /* every request's completion (and log line) is done */
	log_set_level(LOG_WARN);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char text[8192] = "";
	fd = open(logp, O_RDONLY);
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	ok(strstr(text, "http GET /logged/a%20b 200 ") != NULL,
	   "the access log has method, path, status");
	ok(strstr(text, "http GET /bad%00 400 ") != NULL, "and the refused ones");
	ok(!strstr(text, "sekrit") && !strstr(text, "secret=1"),
	   "never the Authorization header nor the query");
	if (!strstr(text, "http GET /logged"))
		printf("# log: %s\n", text);
}

int main(void)
{
	if (http_global_init() != 0)
		return 1;
	xsnprintf(dir, sizeof(dir), "/tmp/dth-httpd-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	log_set_level(LOG_WARN);

	char base[320];
	struct httpd_opts o = {.listen = "127.0.0.1:0", .max_body = MAX_BODY};
	struct httpd *h = start(&o, base, sizeof(base));
	if (!h)
		return tap_done();
	ok(str_startswith(httpd_bound(h), "127.0.0.1:") &&
	       strcmp(httpd_bound(h), "127.0.0.1:0") != 0,
	   "port 0: the bound port is read back (%s)", httpd_bound(h));
	test_routing(base);
	test_bodies(base);
	test_concurrent(base);
	test_listen_errors(h);
	httpd_free(h);
	test_require_json();
	test_idle_clients();
	test_free_waits();
	test_unix();
	test_tls();
	test_access_log();

	char cmd[128];
	xsnprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
