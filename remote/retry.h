/* Retry policy: how long to wait between attempts (exponential backoff with
 * full jitter, capped, raised to a Retry-After) and which transport failures
 * are worth another attempt. Which HTTP answers are retried, and the errno
 * they end as, is the status table of remote/exec.h. Pure functions, except
 * the last four, which the remote clients share (thread-safe). */
#ifndef DTH_RETRY_H
#define DTH_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
	unsigned max_attempts; /* total attempts including the first; >= 1 */
	unsigned base_ms;      /* first backoff ceiling */
	unsigned max_ms;       /* cap on any single backoff */
};

#define RETRY_POLICY_DEFAULT                                                                       \
	{                                                                                          \
		8, 100, 20000                                                                      \
	}

/* True when a request that failed in transport with err (a negative errno
 * from http_perform) may be sent again: timeouts, connection resets and
 * refusals, a body cut short (-EIO), unreachable hosts and networks. Not: a
 * protocol or TLS failure (-EPROTO), a body too large (-EFBIG), a bad URL,
 * out of memory, or an errno a body consumer chose. */
bool retry_transport_retryable(int err);

/* Backoff before attempt number `attempt` (1 = first retry): a uniformly random
 * value in [0, min(max_ms, base_ms * 2^(attempt-1))], drawn from *rng (any
 * non-zero seed; updated). */
unsigned retry_backoff_ms(const struct retry_policy *p, unsigned attempt, uint64_t *rng);

/* Parse a Retry-After header (delta seconds) into milliseconds; 0 if absent or
 * not a number. */
unsigned retry_after_ms(const char *value);

/* A policy as a client uses it: no attempts given means one; neither base
 * nor cap given means the default backoff. */
void retry_policy_normalize(struct retry_policy *p);
/* The wait before attempt number `attempt`: retry_backoff_ms drawn from a
 * per-thread generator, raised to a Retry-After value (the header's text, or
 * NULL) but never above p->max_ms. */
unsigned retry_wait_ms(const struct retry_policy *p, unsigned attempt, const char *retry_after);
/* Sleep ms milliseconds (resumed after signals). */
void retry_sleep_ms(unsigned ms);
/* Spend a wait of ms between two attempts: retry_sleep_ms, or the function
 * given to retry_set_pause_fn. p is the policy the wait came from. */
void retry_pause(const struct retry_policy *p, unsigned ms);
/* For unit tests: fn is called with every wait instead of sleeping it (the
 * test records the waits); NULL sleeps again. Process-wide. */
void retry_set_pause_fn(void (*fn)(unsigned ms));
#endif
