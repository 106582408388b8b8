#include "common/compat.h"

#include "remote/http.h"

#define BULK_BYTES (1024 * 1024)	  /* a transfer this large gets big buffers */
#define PACE_LOWAT ((uint64_t)256 * 1024) /* see pace_body */

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/secret.h"
#include "remote/tcpsock.h"

#ifndef DTH_VERSION
#define DTH_VERSION "0"
#endif

#define ERROR_BODY_MAX (64 * 1024)
/* Idle easy handles kept, and connections the shared cache holds (in use
 * or idle). Both are at least the most requests one engine runs at once: a
 * sync's --concurrency (at most 1024) and its small-object lanes (at most
 * 256). Fewer, and every request beyond them frees a handle (whose buffers
 * are wiped) and closes a connection the next request opens again. Neither
 * grows past what was once in use at the same time. */
#define POOL_KEEP      1280
#define CONN_CACHE_MAX 1280

struct http_engine {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *pool[POOL_KEEP];
	size_t n_pool;
	long connect_timeout_ms;
	long stall_timeout_s;
	bool tls_verify;
	char *ca_file;
	char *user_agent;
	char *unix_socket;
	atomic_bool aborted;	   /* http_engine_abort */
	struct tcpsock_set *socks; /* the TCP sockets curl opened (tcpsock.h) */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void *wipe_malloc(size_t n)
{
	return malloc(n);
}

static char *wipe_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

static void *wipe_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

static void global_init_once(void)
{
	/* Every block libcurl or jansson frees is wiped first: curl formats
	 * the Authorization and session-token headers into buffers of its
	 * own, jansson's lexer keeps the raw text of a token answer. */
	json_set_alloc_funcs(wipe_malloc, secret_heap_free);
	global_rc = curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, secret_heap_free,
					 secret_heap_realloc, wipe_strdup, wipe_calloc);
}

int http_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_rc == CURLE_OK ? 0 : -EIO;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userptr)
{
	(void)h;
	(void)access;
	struct http_engine *e = userptr;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&e->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userptr)
{
	(void)h;
	struct http_engine *e = userptr;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&e->share_locks[data]);
}

struct http_engine *http_engine_new(const struct http_engine_opts *opts)
{
	if (http_global_init() != 0)
		return NULL;
	struct http_engine *e = xcalloc(1, sizeof(*e));
	e->share = curl_share_init();
	if (!e->share) {
		free(e);
		return NULL;
	}
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&e->share_locks[i], NULL);
	pthread_mutex_init(&e->pool_lock, NULL);
	curl_share_setopt(e->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(e->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(e->share, CURLSHOPT_USERDATA, e);
	curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(e->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

	e->connect_timeout_ms =
	    opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 10000;
	e->stall_timeout_s = opts && opts->stall_timeout_s > 0 ? opts->stall_timeout_s : 60;
	e->tls_verify = opts ? opts->tls_verify : true;
	e->ca_file = opts && opts->ca_file ? xstrdup(opts->ca_file) : NULL;
	e->user_agent =
	    opts && opts->user_agent ? xstrdup(opts->user_agent) : xstrdup("dth/" DTH_VERSION);
	e->unix_socket = opts && opts->unix_socket ? xstrdup(opts->unix_socket) : NULL;
	e->socks = tcpsock_set_new();
	return e;
}

void http_engine_free(struct http_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_pool; i++)
		curl_easy_cleanup(e->pool[i]);
	curl_share_cleanup(e->share);
	tcpsock_set_free(e->socks); /* after curl closed its sockets */
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&e->share_locks[i]);
	pthread_mutex_destroy(&e->pool_lock);
	free(e->ca_file);
	free(e->user_agent);
	free(e->unix_socket);
	free(e);
}

static CURL *pool_get(struct http_engine *e)
{
	CURL *h = NULL;
	pthread_mutex_lock(&e->pool_lock);
	if (e->n_pool > 0)
		h = e->pool[--e->n_pool];
	pthread_mutex_unlock(&e->pool_lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void pool_put(struct http_engine *e, CURL *h)
{
	pthread_mutex_lock(&e->pool_lock);
	if (e->n_pool < POOL_KEEP) {
		e->pool[e->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

void http_resp_init(struct http_resp *r)
{
	r->status = 0;
	buf_init(&r->body);
	buf_init(&r->hdrs);
}

void http_resp_wipe(struct http_resp *r)
{
	secret_buf_release(&r->body);
	secret_buf_release(&r->hdrs);
}

void http_resp_release(struct http_resp *r)
{
	buf_release(&r->body);
	buf_release(&r->hdrs);
	r->status = 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void http_resp_each_header(const struct http_resp *r,
			   void (*fn)(void *ctx, const char *name, size_t nlen, const char *value,
				      size_t vlen),
			   void *ctx)
{
	const char *p = buf_str(&r->hdrs);
	const char *end = p + r->hdrs.len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && !str_startswith(p, "HTTP/")) {
			const char *n = p, *ne = colon;
			while (n < ne && is_space(*n))
				n++;
			while (ne > n && is_space(ne[-1]))
				ne--;
			const char *v = colon + 1, *ve = eol;
			while (v < ve && is_space(*v))
				v++;
			while (ve > v && is_space(ve[-1]))
				ve--;
			if (ne > n)
				fn(ctx, n, (size_t)(ne - n), v, (size_t)(ve - v));
		}
		p = eol + 1;
	}
}

struct find_ctx {
	const char *name;
	size_t nlen;
	struct buf *out;
	bool found;
};

static void find_cb(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
	struct find_ctx *f = ctx;
	if (f->found || nlen != f->nlen || strncasecmp(name, f->name, nlen) != 0)
		return;
	f->found = true;
	buf_add(f->out, value, vlen);
}

int http_resp_header(const struct http_resp *r, const char *name, struct buf *out)
{
	struct find_ctx f = {name, strlen(name), out, false};
	http_resp_each_header(r, find_cb, &f);
	return f.found ? 0 : -ENOENT;
}

/* One request in flight. */
struct xfer {
	const struct http_req *req;
	struct http_resp *resp;
	size_t read_off;
	long status;
	int sink_err;
	int source_err;
	bool too_big;
	bool not_partial; /* want_partial, and the answer was a whole 2xx */
	bool canceled;	  /* the engine was aborted */
	struct http_engine *e;
	CURL *h;
	/* receive pacing of a bulk answer's body (see pace_body) */
	int pace_fd;	   /* the connection's socket; -1: not found yet or none */
	bool pace_off;	   /* no pacing for this answer */
	uint64_t body_len; /* the answer's Content-Length */
	uint64_t body_got; /* body bytes handed to on_write so far */
	uint64_t lowat;	   /* SO_RCVLOWAT of pace_fd now */
};

/* CURLOPT_OPENSOCKETFUNCTION and CLOSESOCKETFUNCTION: the engine's sockets
 * are recorded, so a transfer can find its own (tcpsock.h). */
static curl_socket_t open_sock(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)purpose;
	struct http_engine *e = ud;
	int fd = tcpsock_open(e->socks, a->family, a->socktype, a->protocol);
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static int close_sock(void *ud, curl_socket_t fd)
{
	struct http_engine *e = ud;
	return tcpsock_close(e->socks, fd);
}

/* The socket of the transfer's connection (borrowed, valid while the
 * transfer runs), or -1 for a Unix socket or a socket not found. */
static int xfer_sock(struct xfer *x)
{
	char *lip = NULL, *pip = NULL;
	long lport = 0, pport = 0;
	if (x->e->unix_socket || curl_easy_getinfo(x->h, CURLINFO_LOCAL_IP, &lip) != CURLE_OK ||
	    curl_easy_getinfo(x->h, CURLINFO_LOCAL_PORT, &lport) != CURLE_OK ||
	    curl_easy_getinfo(x->h, CURLINFO_PRIMARY_IP, &pip) != CURLE_OK ||
	    curl_easy_getinfo(x->h, CURLINFO_PRIMARY_PORT, &pport) != CURLE_OK)
		return -1;
	return tcpsock_find(x->e->socks, lip, lport, pip, pport);
}

/* Acknowledge the answer's first bytes now rather than up to 40 ms later
 * (see tcpsock.h: a server with Nagle on holds the rest of the answer until
 * then). */
static void ack_now(struct xfer *x)
{
	int fd = xfer_sock(x);
	if (fd >= 0)
		tcpsock_ack_now(fd);
}

/* Whether the answer may be paced; sets x->body_len. Only plain HTTP/1.x
 * with a Content-Length: over TLS the library may hold part of a record, and
 * over HTTP/2 other streams share the socket, so the bytes in the socket do
 * not tell how much of this body is left. */
static bool pace_fits(struct xfer *x)
{
	curl_off_t cl = -1;
	long ver = 0;
	char *scheme = NULL;
	if (curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) != CURLE_OK ||
	    cl <= 0 || curl_easy_getinfo(x->h, CURLINFO_HTTP_VERSION, &ver) != CURLE_OK ||
	    (ver != CURL_HTTP_VERSION_1_0 && ver != CURL_HTTP_VERSION_1_1) ||
	    curl_easy_getinfo(x->h, CURLINFO_SCHEME, &scheme) != CURLE_OK || !scheme ||
	    strcasecmp(scheme, "http") != 0)
		return false;
	x->body_len = (uint64_t)cl;
	return true;
}

/* Receive pacing of a bulk answer's body: with SO_RCVLOWAT the socket only
 * becomes readable (and the thread waiting in poll is only woken) once
 * PACE_LOWAT bytes are queued, not for every segment that arrives, so a
 * large body is read in fewer, larger reads with fewer wakeups (measured on
 * the mount's 5 MiB GETs from a local radosgw: 0.15-0.25 s less client CPU
 * per GiB). The low mark never exceeds the body bytes still to come, so the
 * last ones are not held back, and it is back at 1 once the body is complete,
 * before the connection serves its next request (a transfer that ends early
 * leaves its connection closed by libcurl). An answer without a
 * Content-Length is not paced. */
static void pace_body(struct xfer *x, size_t n)
{
	if (x->pace_off)
		return;
	if (x->pace_fd < 0) {
		if (x->req->expect_len < BULK_BYTES || !pace_fits(x) ||
		    (x->pace_fd = xfer_sock(x)) < 0) {
			x->pace_off = true;
			return;
		}
		x->lowat = 1; /* the kernel's default */
	}
	x->body_got += n;
	uint64_t left = x->body_got < x->body_len ? x->body_len - x->body_got : 0;
	uint64_t want = left < PACE_LOWAT ? left : PACE_LOWAT;
	if (want == 0)
		want = 1;
	if (want == x->lowat)
		return;
	int v = (int)want;
	if (setsockopt(x->pace_fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) != 0) {
		x->pace_off = true;
		return;
	}
	x->lowat = want;
}

/* Called by libcurl about once a second even while nothing moves. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = ud;
	(void)dt, (void)dn, (void)ut, (void)un;
	if (!atomic_load(&x->e->aborted))
		return 0;
	x->canceled = true;
	return 1;
}

void http_engine_abort(struct http_engine *e)
{
	atomic_store(&e->aborted, true);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response starts (after 100 Continue, a redirect, ...): keep only
		 * the final one's headers. */
		buf_reset(&x->resp->hdrs);
		buf_reset(&x->resp->body);
		const char *sp = memchr(data, ' ', n);
		long st = 0;
		if (sp) {
			const char *q = sp + 1, *e = data + n;
			while (q < e && *q >= '0' && *q <= '9' && st < 1000)
				st = st * 10 + (*q++ - '0');
		}
		x->status = st;
		ack_now(x);
	}
	if (x->resp->hdrs.len + n > 256 * 1024)
		return 0; /* absurd header block: abort */
	buf_add(&x->resp->hdrs, data, n);
	return n;
}

/* Make room for extra more bytes in b without leaving a copy of what it
 * holds in freed memory: a new block, the bytes moved, the old one wiped. */
static void grow_wiping(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	struct buf nb = BUF_INIT;
	size_t want = b->cap * 2 > 4096 ? b->cap * 2 : 4096;
	buf_grow(&nb, want > b->len + extra ? want : b->len + extra);
	buf_add(&nb, b->data, b->len);
	secret_buf_release(b);
	*b = nb;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	bool ok2xx = x->status >= 200 && x->status <= 299;
	if (ok2xx && x->req->want_partial && x->status != 206) {
		x->not_partial = true;
		return 0;
	}
	if (ok2xx)
		pace_body(x, n);
	if (ok2xx && x->req->sink) {
		int rc = x->req->sink(x->req->sink_ctx, data, n);
		if (rc < 0) {
			x->sink_err = rc;
			return 0;
		}
		return n;
	}
	struct buf *b = &x->resp->body;
	if (!ok2xx) {
		/* Error bodies: keep the first 64 KiB, drop the rest. */
		if (b->len < ERROR_BODY_MAX)
			buf_add(b, data, n < ERROR_BODY_MAX - b->len ? n : ERROR_BODY_MAX - b->len);
		return n;
	}
	if (x->req->max_body && b->len + n > x->req->max_body) {
		x->too_big = true;
		return 0;
	}
	if (x->req->secret)
		grow_wiping(b, n);
	buf_add(b, data, n);
	return n;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t room = size * nmemb;
	if (x->req->source) {
		size_t left = x->req->body_len - x->read_off;
		long got =
		    left ? x->req->source(x->req->source_ctx, dst, left < room ? left : room) : 0;
		if (got < 0 || (got == 0 && left) || (size_t)got > room) {
			x->source_err = got < 0 ? (int)got : -EIO;
			return CURL_READFUNC_ABORT;
		}
		x->read_off += (size_t)got;
		return (size_t)got;
	}
	size_t left = x->req->body_len - x->read_off;
	size_t n = left < room ? left : room;
	if (n)
		memcpy(dst, (const char *)x->req->body + x->read_off, n);
	x->read_off += n;
	return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct xfer *x = ud;
	if (x->req->source)
		return CURL_SEEKFUNC_CANTSEEK; /* a stream is sent once */
	if (origin != SEEK_SET || offset < 0 || (size_t)offset > x->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->read_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int map_curl(CURLcode c, const struct xfer *x)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_PARTIAL_FILE: /* closed before the Content-Length or last chunk */
		return -EIO;
	case CURLE_WRITE_ERROR:
		if (x->not_partial)
			return -ERANGE;
		if (x->sink_err)
			return x->sink_err;
		if (x->too_big)
			return -EFBIG;
		return -EIO;
	case CURLE_ABORTED_BY_CALLBACK:
		if (x->canceled)
			return -ECANCELED;
		return x->source_err ? x->source_err : -EIO;
	case CURLE_READ_ERROR:
		return x->source_err ? x->source_err : -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_HTTP3:
	case CURLE_BAD_CONTENT_ENCODING:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* Append "Name: value" (or "Name;" for an empty value, curl's way to send an
 * empty header). Returns false on allocation failure. The line may hold a
 * secret (Authorization, x-amz-security-token): it is built in a buffer of
 * its final size and wiped after curl copied it. */
static bool add_header(struct curl_slist **list, const char *name, const char *value)
{
	struct buf b = BUF_INIT;
	size_t nl = strlen(name), vl = value ? strlen(value) : 0;
	buf_grow(&b, nl + vl + 2);
	buf_add(&b, name, nl);
	if (vl) {
		buf_add(&b, ": ", 2);
		buf_add(&b, value, vl);
	} else {
		buf_addch(&b, ';');
	}
	struct curl_slist *n = curl_slist_append(*list, b.data);
	secret_buf_release(&b);
	if (!n)
		return false;
	*list = n;
	return true;
}

/* Wipe and free the header lines (curl's copies of them). */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *n = list; n; n = n->next)
		if (n->data)
			secret_wipe(n->data, strlen(n->data));
	curl_slist_free_all(list);
}

/* The URL without its query (which may hold a presigned signature). */
static void url_for_message(const char *url, char *out, size_t outsz)
{
	size_t n = strcspn(url, "?#");
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, url, n);
	out[n] = '\0';
}

int http_perform(struct http_engine *e, const struct http_req *req, struct http_resp *resp,
		 struct dth_err *err)
{
	resp->status = 0;
	buf_reset(&resp->body);
	buf_reset(&resp->hdrs);

	char where[300];
	url_for_message(req->url ? req->url : "", where, sizeof(where));
	const char *method = req->method ? req->method : "GET";
	if (atomic_load(&e->aborted))
		return err_set(err, -ECANCELED, "%s %s: canceled", method, where);

	CURL *h = pool_get(e);
	if (!h)
		return err_set(err, -ENOMEM, "%s %s: cannot create a curl handle", method, where);

	struct xfer x = {.req = req, .resp = resp, .e = e, .h = h, .pace_fd = -1};
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;
	bool has_ctype = false;

	for (size_t i = 0; i < req->n_headers; i++) {
		if (str_ieq(req->headers[i].name, "Content-Type"))
			has_ctype = true;
		if (!add_header(&hl, req->headers[i].name, req->headers[i].value))
			goto oom;
	}
	/* No "Expect: 100-continue" round trip; no content type of curl's own. */
	struct curl_slist *n = curl_slist_append(hl, "Expect:");
	if (!n)
		goto oom;
	hl = n;
	if (!has_ctype) {
		n = curl_slist_append(hl, "Content-Type:");
		if (!n)
			goto oom;
		hl = n;
	}

	curl_easy_setopt(h, CURLOPT_SHARE, e->share);
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_USERAGENT, e->user_agent);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, e->stall_timeout_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Bigger socket reads and writes for bulk transfers: fewer system calls
	 * per byte moved. */
	if (req->expect_len >= BULK_BYTES)
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
	if (req->body_len >= BULK_BYTES)
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
	/* Idle connections the shared cache keeps (curl's default of 5 makes
	 * concurrent threads close and reopen connections all the time). */
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)CONN_CACHE_MAX);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, e->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, e->tls_verify ? 2L : 0L);
	if (e->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_file);
	if (e->unix_socket)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, e->unix_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_sock);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, e);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_sock);
	curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, e);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);

	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0 && !req->body) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
	} else if (strcmp(method, "PUT") == 0 || req->body || req->source) {
		/* PUT (or any method with a body): stream from memory with a known size. */
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		if (strcmp(method, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}

	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status ? status : x.status;
	rc = map_curl(cc, &x);
	if (rc != 0) {
		if (rc == -EFBIG)
			err_set(err, rc, "%s %s: response body larger than %zu bytes", method,
				where, req->max_body);
		else if (x.not_partial)
			err_set(err, rc, "%s %s: the server ignored the range (status %ld)", method,
				where, x.status);
		else if (x.sink_err)
			err_set(err, rc, "%s %s: body consumer failed (%s)", method, where,
				strerror(-rc));
		else if (x.canceled)
			err_set(err, rc, "%s %s: canceled", method, where);
		else if (x.source_err)
			err_set(err, rc, "%s %s: the body's source failed (%s)", method, where,
				strerror(-rc));
		else
			err_set(err, rc, "%s %s: %s", method, where,
				errbuf[0] ? errbuf : curl_easy_strerror(cc));
		if (err)
			err->http_status = (int)resp->status;
	}
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	free_headers(hl);
	if (req->secret)
		curl_easy_cleanup(h); /* its receive buffer holds the answer: freed (wiped) */
	else
		pool_put(e, h);
	return rc;

oom:
	free_headers(hl);
	pool_put(e, h);
	return err_set(err, -ENOMEM, "%s %s: out of memory", method, where);
}
