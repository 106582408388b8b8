#include "common/compat.h"

/* The scripted HTTP/1.1 peer of the unit tests (see peer.h). One thread
 * accepts connections on a loopback socket and serves each one in turn: read
 * the request (head, then a Content-Length body), record it, pick the answer
 * (script or handler) and send it, misbehaving as the answer's fault says.
 * The lock guards the script and the captured requests; the answer is sent
 * without it, so a stall does not block the test's peer_count. */
#include "tests/unit/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/secret.h"
#include "common/util.h"

#define HEAD_MAX   (64u * 1024)
#define BODY_MAX   (16u * 1024 * 1024)
#define STALL_DEF  10000
#define BAD_LENGTH 16

struct peer {
	int lfd;
	int port;
	char url[64];
	pthread_t th;
	int stop; /* atomic */
	pthread_mutex_t mu;
	struct peer_answer *script; /* copies; strings borrowed */
	size_t n_script, next;
	peer_handler_fn handler;
	void *handler_ctx;
	struct peer_request *reqs;
	size_t n_reqs, cap_reqs;
};

static bool stopping(struct peer *p)
{
	return __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) != 0;
}

/* Wait ms, or less: until the peer stops or the client (fd >= 0) hangs up. */
static void sleep_ms(struct peer *p, int fd, unsigned ms)
{
	for (unsigned done = 0; done < ms && !stopping(p); done += 10) {
		if (fd < 0) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
		if (poll(&pfd, 1, 10) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return; /* the client gave up */
	}
}

static bool send_all(int fd, const void *data, size_t len)
{
	const char *d = data;
	while (len > 0) {
		ssize_t n = send(fd, d, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		d += n;
		len -= (size_t)n;
	}
	return true;
}

/* Close with a reset (RST) instead of an orderly shutdown. */
static void reset_close(int fd)
{
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

const char *peer_req_header(const struct peer_request *rq, const char *name, char *out,
			    size_t outsz)
{
	size_t nl = strlen(name);
	for (const char *p = strstr(rq->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2;
		if (strncasecmp(l, name, nl) != 0 || l[nl] != ':')
			continue;
		const char *v = l + nl + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t n = strcspn(v, "\r\n");
		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (n >= outsz)
			n = outsz - 1;
		memcpy(out, v, n);
		out[n] = '\0';
		return out;
	}
	return NULL;
}

/* Read one request: 0, or -1 when the client went away or sent junk. */
static int read_request(int fd, struct peer_request *rq)
{
	struct buf in = BUF_INIT;
	char tmp[8192];
	size_t head_end = 0, want = 0;
	int rc = -1;
	memset(rq, 0, sizeof(*rq));
	buf_grow(&in, HEAD_MAX); /* a head that may hold a secret is never moved */
	for (;;) {
		if (head_end && in.len >= head_end + want)
			break;
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		buf_add(&in, tmp, (size_t)n);
		if (!head_end) {
			const char *e = strstr(buf_str(&in), "\r\n\r\n");
			if (!e) {
				if (in.len > HEAD_MAX)
					goto out;
				continue;
			}
			head_end = (size_t)(e - in.data) + 4;
			struct peer_request h = {.head = xstrndup(in.data, head_end)};
			char cl[32];
			if (peer_req_header(&h, "Content-Length", cl, sizeof(cl)))
				want = strtoul(cl, NULL, 10);
			secret_wipe_free(h.head);
			if (want > BODY_MAX)
				goto out;
		}
	}
	rq->head = xstrndup(in.data, head_end);
	rq->body = xmalloc(want + 1);
	memcpy(rq->body, in.data + head_end, want);
	rq->body[want] = '\0';
	rq->body_len = want;
	char target[4096] = "";
	if (sscanf(rq->head, "%15s %4095s", rq->method, target) != 2)
		goto out;
	rq->target = xstrdup(target);
	rc = 0;
out:
	secret_wipe(tmp, sizeof(tmp));
	secret_buf_release(&in);
	return rc;
}

static void request_release(struct peer_request *rq)
{
	secret_wipe_free(rq->head);
	if (rq->body) {
		secret_wipe(rq->body, rq->body_len);
		free(rq->body);
	}
	free(rq->target);
	memset(rq, 0, sizeof(*rq));
}

static void release_answer(struct peer_answer *a)
{
	secret_buf_release(&a->own_headers);
	secret_buf_release(&a->own_body);
}

/* Send the answer the way its fault says. Closes fd. */
static void send_answer(struct peer *p, int fd, bool head_only, const struct peer_answer *a)
{
	const char *body = a->own_body.len ? a->own_body.data : (a->body ? a->body : "");
	size_t len = a->own_body.len ? a->own_body.len : (a->body_len ? a->body_len : strlen(body));
	const char *extra =
	    a->own_headers.len ? a->own_headers.data : (a->headers ? a->headers : "");
	unsigned stall = a->stall_ms ? a->stall_ms : STALL_DEF;
	size_t half = len / 2;

	if (a->fault == PEER_RESET_BEFORE) {
		reset_close(fd);
		return;
	}
	if (a->fault == PEER_STALL) {
		sleep_ms(p, fd, stall);
		close(fd);
		return;
	}
	struct buf h = BUF_INIT;
	buf_addf(&h, "HTTP/1.1 %d Peer\r\nConnection: close\r\n", a->status);
	if (a->fault == PEER_TRUNCATE)
		buf_adds(&h, "Transfer-Encoding: chunked\r\n");
	else
		buf_addf(&h, "Content-Length: %zu\r\n",
			 len + (a->fault == PEER_BAD_LENGTH ? BAD_LENGTH : 0));
	buf_adds(&h, extra);
	buf_adds(&h, "\r\n");
	bool sent = send_all(fd, h.data, h.len);
	secret_buf_release(&h);
	if (!sent || head_only) {
		close(fd);
		return;
	}
	switch (a->fault) {
	case PEER_RESET_HEADERS:
		reset_close(fd);
		return;
	case PEER_RESET_MID_BODY:
		if (send_all(fd, body, half))
			sleep_ms(p, -1, 50); /* let the bytes go before the reset */
		reset_close(fd);
		return;
	case PEER_CUT_MID_BODY:
		send_all(fd, body, half);
		break;
	case PEER_STALL_MID_BODY:
		/* one byte: the client's average speed then drops under its
		 * limit soon after (curl averages over a few seconds) */
		if (send_all(fd, body, len ? 1 : 0))
			sleep_ms(p, fd, stall);
		close(fd);
		return;
	case PEER_TRUNCATE: {
		char cl[32];
		int n = snprintf(cl, sizeof(cl), "%zx\r\n", half ? half : 1);
		if (send_all(fd, cl, (size_t)n))
			send_all(fd, half ? body : "x", half ? half : 1);
		break; /* no "\r\n0\r\n\r\n": the body never ends */
	}
	default:
		send_all(fd, body, len);
		break;
	}
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void serve(struct peer *p, int fd)
{
	struct peer_request rq;
	if (read_request(fd, &rq) != 0) {
		request_release(&rq);
		close(fd);
		return;
	}
	struct peer_answer a;
	memset(&a, 0, sizeof(a));
	a.status = 200;
	buf_init(&a.own_headers);
	buf_init(&a.own_body);
	pthread_mutex_lock(&p->mu);
	peer_handler_fn fn = p->handler;
	void *ctx = p->handler_ctx;
	if (!fn) {
		if (p->next < p->n_script) {
			const struct peer_answer *s = &p->script[p->next++];
			a.status = s->status;
			a.fault = s->fault;
			a.stall_ms = s->stall_ms;
			buf_add(&a.own_headers, s->own_headers.data, s->own_headers.len);
			buf_add(&a.own_body, s->own_body.data, s->own_body.len);
		} else {
			a.status = 500;
			a.body = "peer: no scripted answer left";
		}
	}
	if (p->n_reqs == p->cap_reqs) {
		p->cap_reqs = p->cap_reqs ? 2 * p->cap_reqs : 16;
		p->reqs = xrealloc(p->reqs, p->cap_reqs * sizeof(*p->reqs));
	}
	p->reqs[p->n_reqs] = rq;
	p->n_reqs++;
	bool head_only = strcmp(rq.method, "HEAD") == 0;
	pthread_mutex_unlock(&p->mu);
	/* The handler sees the request the peer keeps (it stays until cleared). */
	if (fn) {
		fn(ctx, &rq, &a);
		/* the handler's strings may be gone before the answer is out */
		if (!a.own_headers.len && a.headers)
			buf_adds(&a.own_headers, a.headers);
		if (!a.own_body.len && a.body)
			buf_add(&a.own_body, a.body, a.body_len ? a.body_len : strlen(a.body));
	}
	send_answer(p, fd, head_only, &a);
	release_answer(&a);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	while (!stopping(p)) {
		struct pollfd pfd = {.fd = p->lfd, .events = POLLIN};
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		int fd = accept(p->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(p, fd);
	}
	return NULL;
}

struct peer *peer_start(void)
{
	struct peer *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(p->lfd, 64) != 0 || getsockname(p->lfd, (struct sockaddr *)&a, &al) != 0)
		goto fail;
	p->port = ntohs(a.sin_port);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	if (pthread_create(&p->th, NULL, peer_main, p) != 0)
		goto fail;
	return p;
fail:
	if (p->lfd >= 0)
		close(p->lfd);
	pthread_mutex_destroy(&p->mu);
	free(p);
	return NULL;
}

static void clear_locked(struct peer *p)
{
	for (size_t i = 0; i < p->n_reqs; i++)
		request_release(&p->reqs[i]);
	p->n_reqs = 0;
}

static void script_free(struct peer *p)
{
	for (size_t i = 0; i < p->n_script; i++)
		release_answer(&p->script[i]);
	free(p->script);
	p->script = NULL;
	p->n_script = p->next = 0;
}

void peer_stop(struct peer *p)
{
	if (!p)
		return;
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	pthread_join(p->th, NULL);
	close(p->lfd);
	clear_locked(p);
	free(p->reqs);
	script_free(p);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int peer_port(const struct peer *p)
{
	return p->port;
}

const char *peer_url(const struct peer *p)
{
	return p->url;
}

void peer_script(struct peer *p, const struct peer_answer *answers, size_t n)
{
	pthread_mutex_lock(&p->mu);
	clear_locked(p);
	script_free(p);
	p->script = n ? xcalloc(n, sizeof(*p->script)) : NULL;
	for (size_t i = 0; i < n; i++) {
		/* copied: the test's strings may be gone before the peer answers */
		struct peer_answer *d = &p->script[i];
		const struct peer_answer *a = &answers[i];
		d->status = a->status;
		d->fault = a->fault;
		d->stall_ms = a->stall_ms;
		buf_init(&d->own_headers);
		buf_init(&d->own_body);
		buf_adds(&d->own_headers, a->headers ? a->headers : "");
		const char *body = a->body ? a->body : "";
		buf_add(&d->own_body, body, a->body_len ? a->body_len : strlen(body));
	}
	p->n_script = n;
	p->next = 0;
	pthread_mutex_unlock(&p->mu);
}

void peer_set_handler(struct peer *p, peer_handler_fn fn, void *ctx)
{
	pthread_mutex_lock(&p->mu);
	p->handler = fn;
	p->handler_ctx = ctx;
	pthread_mutex_unlock(&p->mu);
}

void peer_clear(struct peer *p)
{
	pthread_mutex_lock(&p->mu);
	clear_locked(p);
	pthread_mutex_unlock(&p->mu);
}

size_t peer_count(struct peer *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n_reqs;
	pthread_mutex_unlock(&p->mu);
	return n;
}

const struct peer_request *peer_request(struct peer *p, size_t i)
{
	pthread_mutex_lock(&p->mu);
	const struct peer_request *r = i < p->n_reqs ? &p->reqs[i] : NULL;
	pthread_mutex_unlock(&p->mu);
	return r;
}

void peer_add_header(struct peer_answer *ans, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&ans->own_headers, fmt, ap);
	va_end(ap);
	buf_adds(&ans->own_headers, "\r\n");
}

void peer_add_body(struct peer_answer *ans, const void *data, size_t len)
{
	buf_add(&ans->own_body, data, len);
}
