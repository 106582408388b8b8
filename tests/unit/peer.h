/* A scripted HTTP/1.1 peer for the unit tests of the remote clients: a
 * loopback server run by one thread of the test process. It answers each
 * request from a script (one answer per request, in order) or from a handler
 * function, records every request (request line, headers, body) for the
 * test's assertions, and can misbehave on purpose: reset the connection
 * before the answer, after its headers or in the middle of its body, stall
 * past the client's timeout, cut a body short (closed mid-body, or a chunked
 * body without its last chunk) or announce a Content-Length the body does
 * not reach.
 *
 * One connection per request (every answer says Connection: close), served
 * one after the other. The peer's memory (captured requests, answers sent)
 * is wiped when freed, as it may hold the test's secrets. Not for use by
 * several test threads at once, except peer_count. */
#ifndef DTH_TESTS_PEER_H
#define DTH_TESTS_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

enum peer_fault {
	PEER_NORMAL = 0,
	PEER_RESET_BEFORE,   /* read the request, then reset the connection (RST) */
	PEER_RESET_HEADERS,  /* send the status line and headers, then reset */
	PEER_RESET_MID_BODY, /* headers and half the body, then reset */
	PEER_STALL,	     /* send nothing for stall_ms (or until the client hangs up) */
	PEER_STALL_MID_BODY, /* headers and the body's first byte, then as PEER_STALL */
	PEER_CUT_MID_BODY,   /* Content-Length of the body, half of it, then close */
	PEER_TRUNCATE,	     /* chunked body: the first half, then close without the last chunk */
	PEER_BAD_LENGTH,     /* Content-Length 16 bytes more than the body, then close */
};

struct peer_answer {
	int status;
	const char *headers; /* extra header lines ("Name: value\r\n..."), or NULL */
	const char *body;    /* NULL: empty */
	size_t body_len;     /* 0: strlen(body) */
	enum peer_fault fault;
	unsigned stall_ms; /* PEER_STALL*: 0 means 10 s */
	/* A handler may build the headers and the body here instead (both
	 * empty when it is called; used when non-empty; freed by the peer). */
	struct buf own_headers;
	struct buf own_body;
};

struct peer_request {
	char method[16];
	char *target; /* path and query as sent */
	char *head;   /* the request line and headers, as received */
	char *body;
	size_t body_len;
};

/* Decide the answer to rq (the peer thread calls it; ans comes zeroed with
 * status 200). */
typedef void (*peer_handler_fn)(void *ctx, const struct peer_request *rq, struct peer_answer *ans);

struct peer;

/* Start a peer on 127.0.0.1 (a free port). NULL when it cannot listen. */
struct peer *peer_start(void);
void peer_stop(struct peer *p);
int peer_port(const struct peer *p);
/* "http://127.0.0.1:PORT" */
const char *peer_url(const struct peer *p);

/* Replace the script with n answers (copied) and forget the captured
 * requests. Requests beyond the script get a 500. */
void peer_script(struct peer *p, const struct peer_answer *answers, size_t n);
/* Answer with fn instead of the script (NULL: the script again). */
void peer_set_handler(struct peer *p, peer_handler_fn fn, void *ctx);
/* Forget (and wipe) the captured requests; the script stays. */
void peer_clear(struct peer *p);

/* Requests received since the last peer_script/peer_clear. */
size_t peer_count(struct peer *p);
/* The i-th captured request (borrowed until the next peer_script, peer_clear
 * or peer_stop), NULL when there is none. */
const struct peer_request *peer_request(struct peer *p, size_t i);
/* Value of header name in rq (case-insensitive), copied into out (outsz
 * bytes, trimmed); NULL when absent, else out. */
const char *peer_req_header(const struct peer_request *rq, const char *name, char *out,
			    size_t outsz);

/* Append a header line / body text to a handler's answer. */
void peer_add_header(struct peer_answer *ans, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void peer_add_body(struct peer_answer *ans, const void *data, size_t len);

#endif
