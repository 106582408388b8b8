/* The web console's static files, embedded into the binary at build time
 * (web/embed.py writes the table from web/meson.build's console_files and
 * Chart.js), served on GET and HEAD without the token: they hold no secret,
 * and the console asks for the token itself and sends it only to /api/v1/.
 *
 * Paths: a file web/X is served at /X, web/index.html also at /; Chart.js at
 * /vendor/chart.min.js. No file can take a path of the API (/api/...,
 * /metrics, /healthz): the generator refuses it.
 *
 * Answers carry the console's Content-Security-Policy (only its own scripts,
 * styles, images and API; no frames, no forms elsewhere), X-Frame-Options:
 * DENY, Referrer-Policy: no-referrer, the file's strong ETag (the SHA-256 of
 * its bytes) and Cache-Control: no-cache, so a browser revalidates and gets a
 * 304 without the body when its copy is current. */
#ifndef DTH_CONSOLE_H
#define DTH_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/httpd.h"

/* One embedded file (static, valid for the program's life). */
struct console_asset {
	const char *path;	  /* "/js/app.js" */
	const char *content_type; /* "text/javascript; charset=utf-8" */
	const unsigned char *data;
	size_t len;
	const char *etag; /* "\"<sha256 hex>\"", quotes included */
};

/* The generated table, sorted by path (console_files.c). */
extern const struct console_asset console_assets[];
extern const size_t console_n_assets;

#define CONSOLE_CSP                                                                                \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "               \
	"frame-ancestors 'none'"

/* The file served at path ("/" is /index.html), or NULL. */
const struct console_asset *console_find(const char *path);
/* Whether an If-None-Match header value ("*", or a list of ETags, weak ones
 * compared by their opaque part) matches etag. */
bool console_etag_match(const char *if_none_match, const char *etag);
/* Answer a GET or HEAD of a console path (200 with the file, or 304 when
 * If-None-Match matches): true when answered, false (resp untouched) for
 * another method or path. */
bool console_serve(const struct httpd_req *req, struct httpd_resp *resp);

#endif
