/* agent/console: the embedded table (every file of web/ and Chart.js, byte
 * for byte, with its type and ETag), the lookup, If-None-Match, and the
 * answers console_serve makes. Runs from the source root (meson's workdir). */
#include "common/compat.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/console.h"
#include "common/buf.h"
#include "tests/unit/tap.h"

#define CHARTJS "/usr/share/javascript/chart.js/chart.min.js"

static bool read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char b[65536];
	size_t n;
	while ((n = fread(b, 1, sizeof(b), f)) > 0)
		buf_add(out, b, n);
	fclose(f);
	return true;
}

/* The asset has the bytes of path, and its ETag is their SHA-256. */
static void same_as_file(const struct console_asset *a, const char *path)
{
	struct buf want = BUF_INIT;
	ok(read_file(path, &want), "%s can be read", path);
	ok(a && a->len == want.len && !memcmp(a->data, want.data ? want.data : "", want.len),
	   "%s holds the bytes of %s", a ? a->path : "?", path);
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)(want.data ? want.data : ""), want.len, md);
	char hex[2 * SHA256_DIGEST_LENGTH + 1], tag[2 * SHA256_DIGEST_LENGTH + 3];
	hex_encode(md, sizeof(md), hex);
	xsnprintf(tag, sizeof(tag), "\"%s\"", hex);
	is_str(a ? a->etag : NULL, tag, "  its ETag is the quoted SHA-256");
	buf_release(&want);
}

static void test_table(void)
{
	ok(console_n_assets >= 3, "the table has files (%zu)", console_n_assets);
	bool sorted = true, typed = true;
	for (size_t i = 0; i < console_n_assets; i++) {
		const struct console_asset *a = &console_assets[i];
		if (i && strcmp(console_assets[i - 1].path, a->path) >= 0)
			sorted = false;
		if (!a->content_type || !*a->content_type)
			typed = false;
		if (strcmp(a->path, "/vendor/chart.min.js")) {
			struct buf p = BUF_INIT;
			buf_addf(&p, "web%s", a->path);
			same_as_file(a, p.data);
			buf_release(&p);
		}
		ok(!str_startswith(a->path, "/api/") && strcmp(a->path, "/metrics") &&
		       strcmp(a->path, "/healthz"),
		   "%s is not a path of the API", a->path);
	}
	ok(sorted, "sorted by path (for the lookup)");
	ok(typed, "every file has a content type");
	same_as_file(console_find("/vendor/chart.min.js"), CHARTJS);
}

static void test_find(void)
{
	const struct console_asset *index = console_find("/index.html");
	ok(index != NULL, "/index.html is there");
	ok(console_find("/") == index, "/ is /index.html");
	is_str(index ? index->content_type : NULL, "text/html; charset=utf-8", "  as HTML");
	const struct console_asset *js = console_find("/js/app.js");
	is_str(js ? js->content_type : NULL, "text/javascript; charset=utf-8",
	       "/js/app.js is JavaScript");
	const struct console_asset *css = console_find("/style.css");
	is_str(css ? css->content_type : NULL, "text/css; charset=utf-8", "/style.css is CSS");
	ok(!console_find("/nope.html") && !console_find("/js") && !console_find("/js/") &&
	       !console_find("") && !console_find("/index.html/") && !console_find("/INDEX.HTML"),
	   "other paths are not found");
	ok(!console_find("/api/v1/tasks") && !console_find("/metrics"), "nor the API's");
}

static void test_etag_match(void)
{
	const char *e = "\"abc\"";
	ok(console_etag_match("\"abc\"", e), "the same tag matches");
	ok(console_etag_match("W/\"abc\"", e), "its weak form too");
	ok(console_etag_match("\"x\", \"abc\"", e), "one of a list");
	ok(console_etag_match("\"x\",W/\"abc\" ", e), "one of a list without spaces");
	ok(console_etag_match("*", e), "*");
	ok(!console_etag_match("\"abcd\"", e) && !console_etag_match("\"ab\"", e),
	   "another tag does not");
	ok(!console_etag_match("abc", e), "nor the tag without its quotes");
	ok(!console_etag_match("", e) && !console_etag_match(NULL, e) &&
	       !console_etag_match(" , ", e),
	   "nor nothing");
	ok(!console_etag_match("\"abc", e), "nor a tag cut short");
}

static const char *header_of(const struct httpd_resp *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (!strcasecmp(r->hname[i], name))
			return r->hvalue[i];
	return NULL;
}

static void resp_free(struct httpd_resp *r)
{
	buf_release(&r->body);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->hname[i]);
		free(r->hvalue[i]);
	}
}

static void test_serve(void)
{
	struct httpd_req req = {.method = "GET", .path = "/", .query = "", .body = ""};
	struct httpd_resp r = {0};
	ok(console_serve(&req, &r), "GET / is served");
	const struct console_asset *index = console_find("/");
	is_int(r.status, 200, "  200");
	ok(r.body_static == index->data && r.body_static_len == index->len,
	   "  the file's bytes, without a copy");
	is_str(r.content_type, index->content_type, "  its type");
	is_str(header_of(&r, "ETag"), index->etag, "  its ETag");
	is_str(header_of(&r, "Content-Security-Policy"), CONSOLE_CSP, "  the console's CSP");
	is_str(header_of(&r, "X-Frame-Options"), "DENY", "  X-Frame-Options");
	is_str(header_of(&r, "Referrer-Policy"), "no-referrer", "  Referrer-Policy");
	is_str(header_of(&r, "Cache-Control"), "no-cache", "  Cache-Control: no-cache");
	resp_free(&r);

	memset(&r, 0, sizeof(r));
	req.method = "HEAD";
	req.path = "/js/app.js";
	ok(console_serve(&req, &r) && r.status == 200, "HEAD is served");
	resp_free(&r);

	const char *no[][2] = {
	    {"POST", "/"},	 {"PUT", "/index.html"}, {"GET", "/api/v1/tasks"},
	    {"GET", "/metrics"}, {"GET", "/healthz"},	 {"GET", "/favicon.ico"}};
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		memset(&r, 0, sizeof(r));
		req.method = no[i][0];
		req.path = no[i][1];
		ok(!console_serve(&req, &r) && r.status == 0 && !r.n_headers,
		   "%s %s is not the console's", no[i][0], no[i][1]);
	}
}

int main(void)
{
	test_table();
	test_find();
	test_etag_match();
	test_serve();
	return tap_done();
}
