/* The TCP sockets an HTTP engine opened, found again by a connection's
 * addresses, so that an answer can be acknowledged at once (tcpsock_ack_now).
 *
 * Why: a server that leaves Nagle on (stock radosgw) sends the body of a
 * small answer only once its headers are acknowledged, and on a reused
 * connection Linux delays that ACK by up to 40 ms (the exchange looks
 * interactive): every small GET then waits 40 ms. TCP_QUICKACK sends the due
 * ACK at once, but Linux does not keep it set, so it is set again as each
 * answer's headers arrive. libcurl tells a running transfer its addresses
 * (CURLINFO_LOCAL_IP/PORT, CURLINFO_PRIMARY_IP/PORT) but not its socket
 * (CURLINFO_ACTIVESOCKET answers only after the transfer): the engine opens
 * its sockets through this set (CURLOPT_OPENSOCKETFUNCTION and
 * CLOSESOCKETFUNCTION), and a transfer finds its socket by the addresses.
 *
 * Locking: one mutex guards the set; any thread may call any function.
 * Memory: one entry per open socket (bounded by the connections libcurl
 * keeps open). */
#ifndef DTH_TCPSOCK_H
#define DTH_TCPSOCK_H

#include "common/util.h"

struct tcpsock_set;

struct tcpsock_set *tcpsock_set_new(void);
/* Frees the set; closes nothing (libcurl closes its sockets first). */
void tcpsock_set_free(struct tcpsock_set *s);

/* socket(family, type | SOCK_CLOEXEC, protocol), recorded in s. The fd, or
 * -1 with errno set. */
int tcpsock_open(struct tcpsock_set *s, int family, int type, int protocol);
/* Forget fd and close it. 0, or -1 with errno set (by close). */
int tcpsock_close(struct tcpsock_set *s, int fd);

/* The recorded socket whose local and peer addresses are these (numeric IP
 * text as libcurl gives it, and ports), or -1. The fd is borrowed: valid
 * while the transfer that owns the connection runs. */
int tcpsock_find(struct tcpsock_set *s, const char *local_ip, long local_port, const char *peer_ip,
		 long peer_port);

/* Set TCP_QUICKACK on fd: an ACK that is due goes out now, and ACKs are not
 * delayed until Linux decides again that they may be. Errors are ignored. */
void tcpsock_ack_now(int fd);

#endif
