/* Process-wide counts of the requests sent to remotes, by remote and
 * operation: attempts, errors by kind, and retries. The request executor
 * (exec.c) counts every attempt; the agent's /metrics reads them. At most
 * REQSTATS_MAX (remote, operation) pairs are kept; later pairs are counted
 * under the operation "other". Thread-safe. */
#ifndef DTH_REQSTATS_H
#define DTH_REQSTATS_H

#include <stdint.h>

#define REQSTATS_MAX 512

enum reqstats_error {
	REQERR_TRANSPORT = 0, /* no answer: refused, reset, timed out, cut short */
	REQERR_THROTTLED,     /* 429, 503 SlowDown and the like */
	REQERR_SERVER,	      /* other 5xx */
	REQERR_CLIENT,	      /* 4xx (not found, denied, ...) */
	REQERR_GARBLED,	      /* a 2xx answer that could not be read */
	REQERR__COUNT
};
/* "transport", "throttled", "server", "client", "garbled". */
const char *reqstats_error_name(int kind);

struct reqstats_entry {
	const char *remote; /* valid while the entry is (for the process) */
	const char *op;
	uint64_t requests;
	uint64_t errors[REQERR__COUNT];
	uint64_t retries;
};

/* Count an attempt of op at remote (either may be NULL: "?"). error is -1 for
 * none, else an enum reqstats_error; retried: another attempt follows. */
void reqstats_count(const char *remote, const char *op, int error, int retried);
/* Throttled answers (REQERR_THROTTLED) counted so far, at every remote: a
 * caller that remembers the last value sees whether any came since. */
uint64_t reqstats_throttled(void);
/* Call fn with a copy of every entry, in no particular order. */
void reqstats_each(void (*fn)(void *ctx, const struct reqstats_entry *e), void *ctx);

#endif
