/* The agent's HTTP server: libmicrohttpd underneath, one handler on top.
 *
 * The layer listens (TCP, optionally TLS, or a Unix socket), collects each
 * request whole (path percent-decoded, body read into memory up to a bound)
 * and calls one handler with it on one of libmicrohttpd's pool threads; the
 * handler fills a response that the layer sends with the headers every answer
 * carries: X-Content-Type-Options: nosniff, and, unless the handler set a
 * header of the same name, Cache-Control: no-store, X-Frame-Options: DENY
 * and Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
 * (an answer of the API is data: it runs nothing, loads nothing and is never
 * framed). Routing, authentication and the API itself belong to the handler.
 *
 * The layer answers by itself, with a JSON error document
 * {"error":{"code":CODE,"message":MSG}}, and without calling the handler:
 *   400 bad_request      a path that is not absolute, a malformed %-escape or
 *                        a %00 in the path or the query
 *   405 method_not_allowed  a method other than GET HEAD POST PUT PATCH DELETE
 *   413 too_large        a body above max_body (from Content-Length before any
 *                        of it is read; a chunked one when it passes the bound)
 *   415 unsupported_media_type  with require_json: a body without
 *                        Content-Type application/json
 *   500 internal         a handler that set no status
 * (The layer's own checks come first, then opts.early.) Handlers answer their
 * own errors in the same form with httpd_resp_error.
 *
 * Threads: the handler runs concurrently on up to `threads` threads and must
 * be thread-safe; a handler that blocks holds its thread (and the other
 * connections that thread serves) until it returns. A client that connects and
 * sends nothing, or sends slowly, holds no thread: connections are polled, and
 * one idle for timeout_s is closed.
 *
 * SIGPIPE: libmicrohttpd sends with MSG_NOSIGNAL on its own sockets, but TLS
 * and the other connections of the process may not, so httpd_new sets SIGPIPE
 * to ignored for the whole process (a peer gone is then an EPIPE).
 *
 * Access log: one log_debug line per request when it completes (method, path
 * without query, status, duration); headers are never logged. */
#ifndef DTH_HTTPD_H
#define DTH_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

struct httpd;
struct httpd_conn; /* internal */

/* One request, borrowed by the handler for the call. */
struct httpd_req {
	const char *method;   /* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" */
	const char *path;     /* percent-decoded path ("/api/v1/tasks/a b"); no NUL inside */
	const char *raw_path; /* the path as sent, without the query */
	const char *query;    /* the query as sent, without '?' ("" when none) */
	const char *body;     /* the whole body, NUL-terminated after body_len; "" when none */
	size_t body_len;      /* at most max_body */
	struct httpd_conn *conn;
};

/* The decoded value of the first query parameter called name ('+' is a
 * space, %XX a byte), appended to out. 0, or -ENOENT when absent. A name
 * given without '=' has the value "". */
int httpd_query(const struct httpd_req *r, const char *name, struct buf *out) WUR;
/* The value of request header name (case-insensitive), or NULL when absent.
 * Borrowed for the handler's call. */
const char *httpd_header(const struct httpd_req *r, const char *name);
/* True when the request says Content-Type: application/json (parameters such
 * as charset allowed). */
bool httpd_is_json(const struct httpd_req *r);

#define HTTPD_MAX_EXTRA_HEADERS 8

/* The answer the handler fills. On entry: status 0, content_type NULL, body
 * empty. content_type NULL means "application/json". The layer owns and
 * releases it after the call. */
struct httpd_resp {
	int status;
	const char *content_type; /* static or outliving the request */
	struct buf body;
	/* Or, instead of body: bytes that outlive the server (a static table),
	 * sent without a copy. NULL: body. */
	const void *body_static;
	size_t body_static_len;
	/* internal: extra headers set with httpd_resp_header */
	char *hname[HTTPD_MAX_EXTRA_HEADERS], *hvalue[HTTPD_MAX_EXTRA_HEADERS];
	size_t n_headers;
};

/* Add a header to the answer (copied). -ENOSPC past HTTPD_MAX_EXTRA_HEADERS,
 * -EINVAL for a name or value with CR or LF. */
int httpd_resp_header(struct httpd_resp *resp, const char *name, const char *value) WUR;
/* Make resp the JSON error {"error":{"code":code,"field":field,"message":msg}}
 * ("field" only when not NULL) with this status; the body (static or not) is
 * replaced. */
void httpd_resp_error(struct httpd_resp *resp, int status, const char *code, const char *field,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

typedef void (*httpd_handler)(void *ctx, const struct httpd_req *req, struct httpd_resp *resp);

struct httpd_opts {
	/* "127.0.0.1:8391" (the default when NULL), "[::1]:8391", "host:port"
	 * (the first address the name resolves to), port 0 for any free port
	 * (see httpd_bound), or "unix:/path/agent.sock": created 0600 in a
	 * directory that must exist; a stale socket file there is replaced, a
	 * live one (another process answers) is -EADDRINUSE, another kind of file
	 * -EEXIST. The file is removed by httpd_free. */
	const char *listen;
	const char *tls_cert, *tls_key; /* PEM files, both or neither: HTTPS (not on unix:) */
	size_t max_body;		/* 0: 1 MiB */
	unsigned threads;		/* pool size; 0: 2 */
	unsigned timeout_s;		/* idle connection timeout; 0: 30 */
	unsigned max_conns; /* open connections; 0: 256 (per client address: a quarter, but
			     * no limit per address on loopback or a Unix socket) */
	bool require_json;  /* bodies must be application/json (415) */
	/* Optional: called with the request line and headers, before any of
	 * the body is read (req->body is "", body_len 0), on the same threads
	 * and with the same ctx as the handler. Setting resp->status answers
	 * the request there (the body is then not read, the handler not
	 * called): a 401 for a missing token costs no upload. Leaving it 0
	 * goes on. */
	httpd_handler early;
};

/* Listen and serve: fn(ctx, ...) is called for every request until
 * httpd_free. ctx is borrowed and must outlive the server. NULL on error, err
 * says why: -EINVAL a bad listen address, -EADDRINUSE, -EACCES, -ENOENT (a
 * socket directory or TLS file missing), -ENOTSUP (TLS asked of a
 * libmicrohttpd built without it), -EIO libmicrohttpd refused to start. */
struct httpd *httpd_new(const struct httpd_opts *o, httpd_handler fn, void *ctx,
			struct dth_err *err);
/* The address bound: "127.0.0.1:45123", "[::1]:8391" or "unix:/path".
 * Borrowed while h lives. */
const char *httpd_bound(const struct httpd *h);
/* Stop accepting, wait for the handlers in flight, close every connection,
 * remove the Unix socket file. NULL is fine. */
void httpd_free(struct httpd *h);

#endif
