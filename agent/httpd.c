/* The agent's HTTP server on libmicrohttpd (see httpd.h for the contract).
 *
 * Design notes.
 * - We bind the listen socket ourselves and hand it over with
 *   MHD_OPTION_LISTEN_SOCKET: a Unix socket made 0600 before it listens, and
 *   for TCP SO_REUSEADDR, IPV6_V6ONLY and a port-0 bind read back with
 *   getsockname. libmicrohttpd closes it in MHD_stop_daemon.
 * - One struct httpd_conn per request, made in the URI log callback (which
 *   sees the request target exactly as sent, query included: we decode it
 *   ourselves rather than take libmicrohttpd's decoding, which cuts at a %00)
 *   and freed in the completion callback, which also writes the access log.
 * - The access handler is called first with the headers (the checks that
 *   need no body happen there, so a too large Content-Length is answered
 *   before the body is read), then with each piece of the body, then once more
 *   with nothing: that last call runs the user's handler. A response can only
 *   be queued in the first or the last call, so a chunked body that passes
 *   max_body is discarded as it comes and answered 413 at its end; one that
 *   goes on past DISCARD_MAX more bytes closes the connection.
 * - The struct httpd is read-only once the daemon runs: handlers on several
 *   pool threads share it without locks. */
#include "common/compat.h"

#include "agent/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/uri.h"

#define DEFAULT_LISTEN	 "127.0.0.1:8391"
#define DEFAULT_MAX_BODY (1024 * 1024)
#define DISCARD_MAX	 (16u * 1024 * 1024)
#define PEM_MAX		 (1024 * 1024)

struct httpd {
	struct MHD_Daemon *daemon;
	httpd_handler fn, early;
	void *ctx;
	size_t max_body;
	bool require_json;
	char bound[300];
	char *unix_path; /* the socket file we made, removed at the end */
	bool loopback;	 /* bound to 127.0.0.0/8 or ::1: every client has one address */
	dev_t unix_dev;
	ino_t unix_ino;
	char *cert, *key; /* PEM text for libmicrohttpd (the key in secret memory) */
};

struct httpd_conn {
	struct httpd *h;
	struct MHD_Connection *mc;
	char *uri; /* the request target as sent */
	struct buf path;
	char *raw_path;
	const char *query;
	struct buf body;
	double start;
	int status;
	bool started;
	bool answered; /* a response was queued */
	bool too_large;
	size_t discarded;
	char method[16];
};

/* ---- small helpers ---- */

static bool method_known(const char *m)
{
	static const char *const ok[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!strcmp(m, ok[i]))
			return true;
	return false;
}

/* 0 when s[0..len) holds only well-formed %XX escapes and none is %00. */
static int check_escapes(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%')
			continue;
		if (i + 2 >= len)
			return -EINVAL;
		int a = hex_digit(s[i + 1]), b = hex_digit(s[i + 2]);
		if (a < 0 || b < 0)
			return -EINVAL;
		if (a == 0 && b == 0)
			return -EINVAL;
		i += 2;
	}
	return 0;
}

/* Decode a query component: '+' is a space, %XX a byte. */
static int query_decode(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			buf_addch(out, ' ');
		} else if (s[i] == '%') {
			if (i + 2 >= len)
				return -EINVAL;
			int a = hex_digit(s[i + 1]), b = hex_digit(s[i + 2]);
			if (a < 0 || b < 0)
				return -EINVAL;
			buf_addch(out, (char)(a * 16 + b));
			i += 2;
		} else {
			buf_addch(out, s[i]);
		}
	}
	return 0;
}

int httpd_query(const struct httpd_req *r, const char *name, struct buf *out)
{
	const char *p = r->query ? r->query : "";
	while (*p) {
		size_t n = strcspn(p, "&");
		const char *eq = memchr(p, '=', n);
		size_t klen = eq ? (size_t)(eq - p) : n;
		struct buf k = BUF_INIT;
		int rc = query_decode(&k, p, klen);
		bool match = rc == 0 && !strcmp(buf_str(&k), name);
		buf_release(&k);
		if (match) {
			if (!eq)
				return 0;
			return query_decode(out, eq + 1, n - klen - 1);
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return -ENOENT;
}

const char *httpd_header(const struct httpd_req *r, const char *name)
{
	if (!r->conn || !r->conn->mc)
		return NULL;
	return MHD_lookup_connection_value(r->conn->mc, MHD_HEADER_KIND, name);
}

static bool ctype_is_json(const char *ct)
{
	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	size_t n = strlen("application/json");
	if (strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

bool httpd_is_json(const struct httpd_req *r)
{
	return ctype_is_json(httpd_header(r, "Content-Type"));
}

static bool header_ok(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

int httpd_resp_header(struct httpd_resp *resp, const char *name, const char *value)
{
	if (!header_ok(name) || !header_ok(value) || !*name || strchr(name, ':'))
		return -EINVAL;
	if (resp->n_headers >= HTTPD_MAX_EXTRA_HEADERS)
		return -ENOSPC;
	resp->hname[resp->n_headers] = xstrdup(name);
	resp->hvalue[resp->n_headers] = xstrdup(value);
	resp->n_headers++;
	return 0;
}

void httpd_resp_error(struct httpd_resp *resp, int status, const char *code, const char *field,
		      const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *e = json_object();
	json_object_set_new(e, "code", json_string(code));
	if (field)
		json_object_set_new(e, "field", json_string(field));
	/* json_string refuses text that is not UTF-8: keep the message readable. */
	json_t *m = json_string(msg);
	if (!m) {
		struct buf b = BUF_INIT;
		buf_add_printable(&b, msg, strlen(msg));
		m = json_string(buf_str(&b));
		buf_release(&b);
	}
	json_object_set_new(e, "message", m);
	json_t *doc = json_object();
	json_object_set_new(doc, "error", e);
	char *s = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	buf_reset(&resp->body);
	resp->body_static = NULL;
	resp->body_static_len = 0;
	if (s) {
		buf_adds(&resp->body, s);
		buf_addch(&resp->body, '\n');
		free(s);
	}
	resp->status = status;
	resp->content_type = NULL;
}

static void resp_init(struct httpd_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body);
}

static void resp_release(struct httpd_resp *r)
{
	buf_release(&r->body);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->hname[i]);
		free(r->hvalue[i]);
	}
	r->n_headers = 0;
}

/* ---- answering ---- */

/* Headers every answer carries unless its handler set its own. */
static const char *const default_headers[][2] = {
    {MHD_HTTP_HEADER_CACHE_CONTROL, "no-store"},
    {"X-Frame-Options", "DENY"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
};

static bool resp_has_header(const struct httpd_resp *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (!strcasecmp(r->hname[i], name))
			return true;
	return false;
}

static bool add_headers(struct MHD_Response *mr, const struct httpd_resp *r)
{
	bool ok = MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
					  r->content_type ? r->content_type : "application/json") ==
		      MHD_YES &&
		  MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff") == MHD_YES;
	for (size_t i = 0; ok && i < ARRAY_SIZE(default_headers); i++)
		if (!resp_has_header(r, default_headers[i][0]))
			ok = MHD_add_response_header(mr, default_headers[i][0],
						     default_headers[i][1]) == MHD_YES;
	for (size_t i = 0; ok && i < r->n_headers; i++)
		ok = MHD_add_response_header(mr, r->hname[i], r->hvalue[i]) == MHD_YES;
	return ok;
}

static enum MHD_Result queue(struct httpd_conn *c, struct httpd_resp *r)
{
	if (r->status < 100 || r->status > 599) {
		log_warn("http %s %s: the handler set no valid status (%d)", c->method,
			 c->raw_path ? c->raw_path : "?", r->status);
		httpd_resp_error(r, 500, "internal", NULL, "the handler gave no answer");
	}
	struct MHD_Response *mr =
	    r->body_static
		? MHD_create_response_from_buffer(r->body_static_len, (void *)r->body_static,
						  MHD_RESPMEM_PERSISTENT)
		: MHD_create_response_from_buffer(r->body.len, r->body.data, MHD_RESPMEM_MUST_COPY);
	if (!mr)
		return MHD_NO;
	enum MHD_Result rc = MHD_NO;
	if (add_headers(mr, r))
		rc = MHD_queue_response(c->mc, (unsigned)r->status, mr);
	MHD_destroy_response(mr);
	if (rc == MHD_YES) {
		c->status = r->status;
		c->answered = true;
	}
	return rc;
}

static enum MHD_Result refuse(struct httpd_conn *c, int status, const char *code, const char *msg)
{
	struct httpd_resp r;
	resp_init(&r);
	httpd_resp_error(&r, status, code, NULL, "%s", msg);
	if (status == 405 && httpd_resp_header(&r, "Allow", "GET, HEAD, POST, PUT, PATCH, DELETE"))
		log_warn("http: cannot add the Allow header");
	enum MHD_Result rc = queue(c, &r);
	resp_release(&r);
	return rc;
}

/* ---- the request's life ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct httpd_conn *c = xcalloc(1, sizeof(*c));
	c->h = cls;
	c->mc = mc;
	c->uri = xstrdup(uri ? uri : "");
	c->start = now_mono();
	buf_init(&c->path);
	buf_init(&c->body);
	return c;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)mc;
	struct httpd_conn *c = *con_cls;
	if (!c)
		return;
	*con_cls = NULL;
	if (log_threshold >= LOG_DEBUG) {
		struct buf p = BUF_INIT;
		const char *rp = c->raw_path ? c->raw_path : c->uri;
		buf_add_printable(&p, rp, strlen(rp) > 200 ? 200 : strlen(rp));
		log_debug("http %s %s %d %.1f ms%s", c->method[0] ? c->method : "-", buf_str(&p),
			  c->status, (now_mono() - c->start) * 1000.0,
			  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (cut short)");
		buf_release(&p);
	}
	free(c->uri);
	free(c->raw_path);
	buf_release(&c->path);
	buf_release(&c->body);
	free(c);
}

static void req_fill(struct httpd_conn *c, struct httpd_req *req)
{
	*req = (struct httpd_req){
	    .method = c->method,
	    .path = buf_str(&c->path),
	    .raw_path = c->raw_path,
	    .query = c->query,
	    .body = buf_str(&c->body),
	    .body_len = c->body.len,
	    .conn = c,
	};
}

/* The early handler: it may answer from the headers alone. */
static enum MHD_Result early_call(struct httpd_conn *c)
{
	struct httpd_req req;
	req_fill(c, &req);
	struct httpd_resp resp;
	resp_init(&resp);
	c->h->early(c->h->ctx, &req, &resp);
	enum MHD_Result rc = resp.status ? queue(c, &resp) : MHD_YES;
	resp_release(&resp);
	return rc;
}

/* The checks on the request line and headers. Returns MHD_YES with
 * c->answered set when it answered, MHD_YES otherwise (go on), MHD_NO to
 * close the connection. */
static enum MHD_Result first_call(struct httpd_conn *c, const char *method)
{
	struct httpd *h = c->h;
	if (str_copy(c->method, method, sizeof(c->method)) != 0 || !method_known(method))
		return refuse(c, 405, "method_not_allowed", "method not allowed");
	const char *q = strchr(c->uri, '?');
	size_t plen = q ? (size_t)(q - c->uri) : strlen(c->uri);
	c->raw_path = xstrndup(c->uri, plen);
	c->query = q ? q + 1 : "";
	if (c->raw_path[0] != '/')
		return refuse(c, 400, "bad_request", "the request path must start with /");
	if (check_escapes(c->raw_path, plen) != 0 || check_escapes(c->query, strlen(c->query)) ||
	    uri_decode(&c->path, c->raw_path, plen) != 0)
		return refuse(c, 400, "bad_request",
			      "malformed percent-escape (or %00) in the path or the query");
	const char *cl = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Length");
	const char *te = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Transfer-Encoding");
	uint64_t len = 0;
	if (cl && parse_u64(cl, &len) != 0)
		return refuse(c, 400, "bad_request", "malformed Content-Length");
	if (len > h->max_body) {
		char msg[128];
		msg_snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", h->max_body);
		return refuse(c, 413, "too_large", msg);
	}
	bool has_body = len > 0 || te != NULL;
	const char *ct = MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, "Content-Type");
	if (h->require_json && has_body && !ctype_is_json(ct))
		return refuse(c, 415, "unsupported_media_type",
			      "send the body as Content-Type: application/json");
	/* The body is not allocated ahead from Content-Length: a client that
	 * only claims one holds no memory. */
	if (h->early)
		return early_call(c);
	return MHD_YES;
}

static enum MHD_Result last_call(struct httpd_conn *c)
{
	struct httpd *h = c->h;
	if (c->too_large) {
		char msg[128];
		msg_snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", h->max_body);
		return refuse(c, 413, "too_large", msg);
	}
	struct httpd_req req;
	req_fill(c, &req);
	struct httpd_resp resp;
	resp_init(&resp);
	h->fn(h->ctx, &req, &resp);
	enum MHD_Result rc = queue(c, &resp);
	resp_release(&resp);
	return rc;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_size, void **con_cls)
{
	(void)version;
	struct httpd_conn *c = *con_cls;
	if (!c) /* no URI callback ran (should not happen): take MHD's decoded URL */
		*con_cls = c = on_uri(cls, url, mc);
	c->mc = mc;
	if (!c->started) {
		c->started = true;
		return first_call(c, method);
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (c->answered)
			return MHD_YES; /* answered early: what follows is dropped */
		if (c->too_large || c->body.len + n > c->h->max_body) {
			c->too_large = true;
			c->discarded += n;
			return c->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		buf_add(&c->body, upload_data, n);
		return MHD_YES;
	}
	if (c->answered)
		return MHD_YES;
	return last_call(c);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (log_threshold < LOG_DEBUG)
		return;
	char msg[512];
	msg_vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '.'))
		msg[--n] = '\0';
	log_debug("libmicrohttpd: %s", msg);
}

/* ---- listening ---- */

static int listen_unix(struct httpd *h, const char *path, int *fd_out, struct dth_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!*path)
		return err_set(err, -EINVAL, "listen address unix: needs a path");
	if (str_copy(sa.sun_path, path, sizeof(sa.sun_path)) != 0)
		return err_set(err, -ENAMETOOLONG, "unix socket path %s is too long (at most %zu)",
			       path, sizeof(sa.sun_path) - 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, -EEXIST, "%s exists and is not a socket", path);
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0)
			return err_set(err, -errno, "socket: %s", strerror(errno));
		int rc = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		close(probe);
		if (rc == 0 || e == EAGAIN)
			return err_set(err, -EADDRINUSE, "%s: another process listens there", path);
		if (e != ECONNREFUSED)
			return err_set(err, -e, "%s: %s", path, strerror(e));
		if (unlink(path) != 0 && errno != ENOENT)
			return err_set(err, -errno, "cannot remove the stale socket %s: %s", path,
				       strerror(errno));
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(err, -errno, "socket: %s", strerror(errno));
	int rc = 0;
	/* Nobody can connect before listen(): the mode is set in between. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = err_set(err, -errno, "bind %s: %s", path, strerror(errno));
		goto fail;
	}
	if (chmod(path, 0600) != 0 || stat(path, &st) != 0) {
		rc = err_set(err, -errno, "chmod %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	if (listen(fd, 128) != 0) {
		rc = err_set(err, -errno, "listen %s: %s", path, strerror(errno));
		unlink(path);
		goto fail;
	}
	h->unix_path = xstrdup(path);
	h->unix_dev = st.st_dev;
	h->unix_ino = st.st_ino;
	msg_snprintf(h->bound, sizeof(h->bound), "unix:%s", path);
	*fd_out = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

/* Split "host:port" / "[v6]:port". */
static int split_hostport(const char *s, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon;
	const char *hs = s, *he;
	if (*s == '[') {
		he = strchr(s, ']');
		if (!he || he[1] != ':')
			return -EINVAL;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		he = colon;
	}
	size_t hl = (size_t)(he - hs);
	if (hl == 0 || hl >= hostsz)
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	uint64_t p;
	if (parse_u64(colon + 1, &p) != 0 || p > 65535 || str_copy(port, colon + 1, portsz) != 0)
		return -EINVAL;
	return 0;
}

static int listen_tcp(struct httpd *h, const char *addr, int *fd_out, struct dth_err *err)
{
	char host[256], port[8];
	if (split_hostport(addr, host, sizeof(host), port, sizeof(port)) != 0)
		return err_set(err, -EINVAL,
			       "bad listen address '%s' (HOST:PORT, [IPV6]:PORT or unix:PATH)",
			       addr);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int g = getaddrinfo(host, port, &hints, &ai);
	if (g != 0 || !ai)
		return err_set(err, -EINVAL, "listen address %s: %s", addr, gai_strerror(g));
	int rc = 0;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = err_set(err, -errno, "socket: %s", strerror(errno));
		goto out;
	}
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)) {
		rc = err_set(err, -errno, "setsockopt: %s", strerror(errno));
		goto fail;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		rc = err_set(err, -errno, "bind %s: %s", addr, strerror(errno));
		goto fail;
	}
	if (listen(fd, 128) != 0) {
		rc = err_set(err, -errno, "listen %s: %s", addr, strerror(errno));
		goto fail;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned bport = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
			bport = ntohs(s4->sin_port);
			h->loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
			bport = ntohs(s6->sin6_port);
			h->loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
		}
	}
	xsnprintf(h->bound, sizeof(h->bound), ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
		  bport);
	*fd_out = fd;
	goto out;
fail:
	close(fd);
out:
	freeaddrinfo(ai);
	return rc;
}

/* Read a PEM file whole; the key goes to secret memory. */
static int read_pem(const char *path, bool secret, char **out, struct dth_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, "tls file %s: %s", path, strerror(errno));
	char *b = secret ? secret_alloc(PEM_MAX + 1) : xcalloc(1, PEM_MAX + 1);
	size_t n = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, b + n, PEM_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(err, -errno, "tls file %s: %s", path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == PEM_MAX) {
			rc = err_set(err, -EFBIG, "tls file %s: too large", path);
			break;
		}
	}
	close(fd);
	if (!rc && n == 0)
		rc = err_set(err, -EINVAL, "tls file %s is empty", path);
	if (rc) {
		if (secret)
			secret_free(b);
		else
			free(b);
		return rc;
	}
	*out = b;
	return 0;
}

static int setup_tls(struct httpd *h, const struct httpd_opts *o, struct dth_err *err)
{
	if (!o->tls_cert && !o->tls_key)
		return 0;
	if (!o->tls_cert || !o->tls_key)
		return err_set(err, -EINVAL, "tls needs both a certificate and a key");
	if (h->unix_path)
		return err_set(err, -EINVAL, "tls is for TCP listen addresses, not unix sockets");
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return err_set(err, -ENOTSUP,
			       "this libmicrohttpd is built without TLS: HTTPS is not available");
	int rc = read_pem(o->tls_cert, false, &h->cert, err);
	if (!rc)
		rc = read_pem(o->tls_key, true, &h->key, err);
	return rc;
}

struct httpd *httpd_new(const struct httpd_opts *o, httpd_handler fn, void *ctx,
			struct dth_err *err)
{
	static const struct httpd_opts defaults;
	if (!o)
		o = &defaults;
	struct httpd *h = xcalloc(1, sizeof(*h));
	h->fn = fn;
	h->ctx = ctx;
	h->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
	h->require_json = o->require_json;
	h->early = o->early;
	const char *listen_at = o->listen && *o->listen ? o->listen : DEFAULT_LISTEN;
	int fd = -1;
	int rc = str_startswith(listen_at, "unix:") ? listen_unix(h, listen_at + 5, &fd, err)
						    : listen_tcp(h, listen_at, &fd, err);
	if (!rc)
		rc = setup_tls(h, o, err);
	if (rc)
		goto fail;
	/* libmicrohttpd sends with MSG_NOSIGNAL, but the TLS library and the
	 * remotes' connections in the same process may not: a peer gone must be
	 * an EPIPE, never the end of the agent. */
	signal(SIGPIPE, SIG_IGN);

	unsigned max_conns = o->max_conns ? o->max_conns : 256;
	/* A limit per client address, so one remote client cannot take every
	 * connection; none where all clients share one address (a Unix socket,
	 * a loopback address). */
	unsigned per_ip = h->unix_path || h->loopback ? 0 : (max_conns / 4 ? max_conns / 4 : 1);
	struct MHD_OptionItem tls[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
	    {MHD_OPTION_END, 0, NULL},
	};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (h->cert)
		flags |= MHD_USE_TLS;
	/* A pool of one is no pool (libmicrohttpd warns about it): its own
	 * polling thread serves then. */
	unsigned threads = o->threads ? o->threads : 2;
	h->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_access, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(o->timeout_s ? o->timeout_s : 30),
	    MHD_OPTION_CONNECTION_LIMIT, max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_ARRAY, h->cert ? tls : tls + 2, MHD_OPTION_END);
	/* libmicrohttpd owns the socket now: it closes it, also when it fails
	 * to start. */
	fd = -1;
	if (!h->daemon) {
		rc = err_set(err, -EIO, "cannot start the HTTP server on %s%s", h->bound,
			     h->cert ? " (check the TLS certificate and key)" : "");
		goto fail;
	}
	log_debug("http server listening on %s%s", h->bound, h->cert ? " (https)" : "");
	return h;
fail:
	if (fd >= 0)
		close(fd);
	httpd_free(h);
	return NULL;
}

const char *httpd_bound(const struct httpd *h)
{
	return h->bound;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	if (h->daemon)
		MHD_stop_daemon(h->daemon);
	if (h->unix_path) {
		struct stat st;
		/* Remove the file only while it is still ours. */
		if (stat(h->unix_path, &st) == 0 && st.st_dev == h->unix_dev &&
		    st.st_ino == h->unix_ino)
			unlink(h->unix_path);
		free(h->unix_path);
	}
	free(h->cert);
	secret_free(h->key);
	free(h);
}
