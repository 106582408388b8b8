/* HTTP engine over libcurl. One engine is shared by all threads: it keeps a
 * pool of curl easy handles and a curl share (connections, DNS, TLS sessions)
 * so connections are reused. http_perform() is thread-safe. It makes exactly
 * one attempt: retries belong to the caller (see retry.h). */
#ifndef DTH_HTTP_H
#define DTH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

struct http_engine;

struct http_engine_opts {
	long connect_timeout_ms; /* 0: 10 s */
	long stall_timeout_s;	 /* abort when below 1 byte/s for this long; 0: 60 s */
	bool tls_verify;	 /* verify peer and host name; true unless told otherwise */
	const char *ca_file;	 /* NULL: system default */
	const char *user_agent;	 /* NULL: "dth/<version>" */
	/* Connect every request to this Unix socket instead of the URL's host
	 * (the URL still gives the path and the Host header:
	 * "http://localhost/..."). NULL: TCP as the URL says. */
	const char *unix_socket;
};

struct http_header {
	const char *name;
	const char *value;
};

/* Called with response body bytes as they arrive; return 0 to go on, a negative
 * errno to abort the transfer (http_perform then returns that errno). */
typedef int (*http_sink_fn)(void *ctx, const void *data, size_t len);

/* Called for the next bytes of a request body sent from a stream: fill at
 * most room bytes of dst and return how many (0 only once the body_len bytes
 * have all been given), or a negative errno to abort the request (http_perform
 * then returns that errno). Such a body cannot be sent twice. */
typedef long (*http_source_fn)(void *ctx, void *dst, size_t room);

struct http_req {
	const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE" */
	const char *url;    /* full URL, already percent-encoded */
	const struct http_header *headers;
	size_t n_headers;
	const void *body;      /* request body (borrowed), NULL for none */
	size_t body_len;       /* its length; with source, the exact length the source gives */
	http_source_fn source; /* instead of body: the body comes from this stream */
	void *source_ctx;
	http_sink_fn sink; /* NULL: the body is collected in resp->body */
	void *sink_ctx;
	size_t max_body; /* when collecting: larger bodies fail with -EFBIG; 0: no limit */
	/* A ranged GET whose bytes go straight to a sink: a 2xx answer other than
	 * 206 (the server ignored the Range) fails with -ERANGE before the sink
	 * sees a byte. */
	bool want_partial;
	/* Expected size of the response body (0: unknown or small). A large
	 * transfer either way (this, or body_len) gets bigger socket buffers:
	 * fewer system calls per byte. Small requests keep curl's defaults. */
	size_t expect_len;
	/* The request or its answer holds a secret (a token request, the
	 * answer of an authorization call): the collected body grows without
	 * leaving partial copies behind. Header lines are always wiped; wipe
	 * the answer with http_resp_wipe before releasing it. */
	bool secret;
	/* When sink is set, it only receives the body of 2xx responses; error bodies
	 * are always collected in resp->body (capped at 64 KiB) so the caller can
	 * parse the error document. */
};

struct http_resp {
	long status;	 /* HTTP status, 0 if none arrived */
	struct buf body; /* collected body (see http_req.sink) */
	struct buf hdrs; /* raw header block of the final response */
};

void http_resp_init(struct http_resp *r);
void http_resp_release(struct http_resp *r);
/* Overwrite every byte the answer holds (body and headers), keeping it
 * initialised; for answers that carried a secret. */
void http_resp_wipe(struct http_resp *r);
/* Value of header name (case-insensitive) in the final response, copied into
 * out (trimmed); returns 0, or -ENOENT when absent. */
int http_resp_header(const struct http_resp *r, const char *name, struct buf *out);
/* Call fn for every header of the final response (name, value trimmed). */
void http_resp_each_header(const struct http_resp *r,
			   void (*fn)(void *ctx, const char *name, size_t nlen, const char *value,
				      size_t vlen),
			   void *ctx);

/* Engine lifecycle. http_engine_new returns NULL only on allocation failure of
 * libcurl itself. Call http_global_init() once at program start, before any
 * other use of libcurl or jansson: it gives both libraries a free() that
 * wipes what it frees (secret.h), as they hold copies of credentials (the
 * request head curl builds, the token text jansson's lexer keeps). */
int http_global_init(void);
struct http_engine *http_engine_new(const struct http_engine_opts *opts);
void http_engine_free(struct http_engine *e);
/* Make every request on e fail with -ECANCELED: those in flight within about
 * a second (also while waiting for an answer), later ones at once. For a
 * thread that must stop while it waits on a long poll. Thread-safe. */
void http_engine_abort(struct http_engine *e);

/* Perform one request. Returns 0 when a response arrived (whatever its
 * status: check resp->status), or a negative errno for a transport failure:
 * -ETIMEDOUT (connect timeout, or a stall of stall_timeout_s), -ECONNREFUSED,
 * -ECONNRESET (reset, or closed before any answer), -EHOSTUNREACH (DNS),
 * -EPROTO (TLS or protocol), -EFBIG, -EIO (a body cut short of its
 * Content-Length or last chunk, and anything else); err then says what
 * happened. resp must have been
 * initialised; its previous content is replaced. */
int http_perform(struct http_engine *e, const struct http_req *req, struct http_resp *resp,
		 struct dth_err *err) WUR;

#endif
