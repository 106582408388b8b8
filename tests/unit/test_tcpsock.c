#include "common/compat.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "remote/tcpsock.h"
#include "tests/unit/tap.h"

/* A listening socket on 127.0.0.1 (an ephemeral port); its port in *port. */
static int listener(long *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&a, &al))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static long local_port(int fd)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &al))
		return -1;
	return ntohs(a.sin_port);
}

static void test_find(void)
{
	long lport = 0;
	int l = listener(&lport);
	ok(l >= 0, "a listener on 127.0.0.1");
	struct tcpsock_set *s = tcpsock_set_new();
	int fd = tcpsock_open(s, AF_INET, SOCK_STREAM, IPPROTO_TCP);
	ok(fd >= 0, "a socket opened through the set");
	ok(tcpsock_find(s, "127.0.0.1", 1, "127.0.0.1", lport) < 0,
	   "an unconnected socket is found by no address");
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)lport),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ok(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connected");
	long mine = local_port(fd);
	is_int(tcpsock_find(s, "127.0.0.1", mine, "127.0.0.1", lport), fd,
	       "found by its local and peer addresses");
	ok(tcpsock_find(s, "127.0.0.1", mine, "127.0.0.1", lport + 1) < 0,
	   "not by another peer port");
	ok(tcpsock_find(s, "127.0.0.2", mine, "127.0.0.1", lport) < 0,
	   "not by another local address");
	ok(tcpsock_find(s, NULL, mine, "127.0.0.1", lport) < 0, "not without an address");
	tcpsock_ack_now(fd);
	int v = 0;
	socklen_t vl = sizeof(v);
	ok(getsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &v, &vl) == 0 && v == 1,
	   "TCP_QUICKACK is set by tcpsock_ack_now");
	is_int(tcpsock_close(s, fd), 0, "closed through the set");
	ok(tcpsock_find(s, "127.0.0.1", mine, "127.0.0.1", lport) < 0, "forgotten once closed");
	int u = tcpsock_open(s, AF_UNIX, SOCK_STREAM, 0);
	ok(u >= 0, "a Unix socket opens (and is not recorded)");
	is_int(tcpsock_close(s, u), 0, "and closes");
	tcpsock_set_free(s);
	close(l);
}

int main(void)
{
	test_find();
	return tap_done();
}
