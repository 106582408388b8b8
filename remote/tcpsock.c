#include "common/compat.h"

#include "remote/tcpsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

/* An entry's addresses are read (getsockname, getpeername) the first time a
 * lookup needs them after the socket connected; until then known is false. */
struct entry {
	int fd;
	bool known;
	long lport, pport;
	char lip[INET6_ADDRSTRLEN];
	char pip[INET6_ADDRSTRLEN];
};

struct tcpsock_set {
	pthread_mutex_t lock;
	struct entry *v;
	size_t n, cap;
};

struct tcpsock_set *tcpsock_set_new(void)
{
	struct tcpsock_set *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void tcpsock_set_free(struct tcpsock_set *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->v);
	free(s);
}

int tcpsock_open(struct tcpsock_set *s, int family, int type, int protocol)
{
	int fd = socket(family, type | SOCK_CLOEXEC, protocol);
	if (fd < 0 || (family != AF_INET && family != AF_INET6))
		return fd;
	pthread_mutex_lock(&s->lock);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	memset(&s->v[s->n], 0, sizeof(s->v[s->n]));
	s->v[s->n++].fd = fd;
	pthread_mutex_unlock(&s->lock);
	return fd;
}

int tcpsock_close(struct tcpsock_set *s, int fd)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		if (s->v[i].fd == fd) {
			s->v[i] = s->v[--s->n];
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return close(fd);
}

/* Numeric text and port of a socket address; false when it is not IP. */
static bool addr_text(const struct sockaddr_storage *a, char ip[INET6_ADDRSTRLEN], long *port)
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)a;
		*port = ntohs(in->sin_port);
		return inet_ntop(AF_INET, &in->sin_addr, ip, INET6_ADDRSTRLEN) != NULL;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
		*port = ntohs(in6->sin6_port);
		return inet_ntop(AF_INET6, &in6->sin6_addr, ip, INET6_ADDRSTRLEN) != NULL;
	}
	return false;
}

/* Read e's addresses once it is connected. */
static bool learn(struct entry *e)
{
	struct sockaddr_storage l, p;
	socklen_t ll = sizeof(l), pl = sizeof(p);
	if (getsockname(e->fd, (struct sockaddr *)&l, &ll) != 0 ||
	    getpeername(e->fd, (struct sockaddr *)&p, &pl) != 0)
		return false; /* not connected yet */
	e->known = addr_text(&l, e->lip, &e->lport) && addr_text(&p, e->pip, &e->pport);
	return e->known;
}

int tcpsock_find(struct tcpsock_set *s, const char *local_ip, long local_port, const char *peer_ip,
		 long peer_port)
{
	int fd = -1;
	if (!local_ip || !peer_ip || local_port <= 0 || peer_port <= 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && fd < 0; i++) {
		struct entry *e = &s->v[i];
		if (!e->known && !learn(e))
			continue;
		if (e->lport == local_port && e->pport == peer_port &&
		    strcmp(e->lip, local_ip) == 0 && strcmp(e->pip, peer_ip) == 0)
			fd = e->fd;
	}
	pthread_mutex_unlock(&s->lock);
	return fd;
}

void tcpsock_ack_now(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}
