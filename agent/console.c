/* The web console's embedded files (see console.h). */
#include "common/compat.h"

#include "agent/console.h"

#include <stdlib.h>
#include <string.h>

static int cmp_path(const void *key, const void *elem)
{
	return strcmp(key, ((const struct console_asset *)elem)->path);
}

const struct console_asset *console_find(const char *path)
{
	if (!strcmp(path, "/"))
		path = "/index.html";
	return bsearch(path, console_assets, console_n_assets, sizeof(console_assets[0]), cmp_path);
}

/* The next entity tag of an If-None-Match list at *p: its opaque part
 * ("\"...\"", quotes included) without a W/ prefix; *p moves past it. false
 * at the end. */
static bool next_tag(const char **p, const char **tag, size_t *len)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (!*s)
		return false;
	if (s[0] == 'W' && s[1] == '/')
		s += 2;
	const char *end = s;
	if (*s == '"') {
		const char *q = strchr(s + 1, '"');
		end = q ? q + 1 : s + strlen(s);
	} else {
		end = s + strcspn(s, ", \t");
	}
	*tag = s;
	*len = (size_t)(end - s);
	*p = end;
	return true;
}

bool console_etag_match(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	size_t want = strlen(etag), len;
	const char *tag;
	while (next_tag(&inm, &tag, &len))
		if ((len == 1 && *tag == '*') || (len == want && !memcmp(tag, etag, len)))
			return true;
	return false;
}

bool console_serve(const struct httpd_req *req, struct httpd_resp *resp)
{
	if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD"))
		return false;
	const struct console_asset *a = console_find(req->path);
	if (!a)
		return false;
	bool fresh = console_etag_match(httpd_header(req, "If-None-Match"), a->etag);
	resp->status = fresh ? 304 : 200;
	resp->content_type = a->content_type;
	if (!fresh) {
		resp->body_static = a->data;
		resp->body_static_len = a->len;
	}
	static const char *const headers[][2] = {
	    {"Content-Security-Policy", CONSOLE_CSP},
	    {"X-Frame-Options", "DENY"},
	    {"Referrer-Policy", "no-referrer"},
	    {"Cache-Control", "no-cache"},
	};
	int rc = httpd_resp_header(resp, "ETag", a->etag);
	for (size_t i = 0; !rc && i < ARRAY_SIZE(headers); i++)
		rc = httpd_resp_header(resp, headers[i][0], headers[i][1]);
	if (rc)
		httpd_resp_error(resp, 500, "internal", NULL, "cannot set the console's headers");
	return true;
}
