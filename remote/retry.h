/* Retry policy: which failures are worth another attempt, and how long to wait
 * (exponential backoff with full jitter, capped). Pure functions, except the
 * last three, which the remote clients share (thread-safe). */
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

/* True when a request that ended this way may be retried:
 * transport_err: 0 when an HTTP response arrived, else a negative errno from
 *   the transport (-ETIMEDOUT, -ECONNRESET, -ECONNREFUSED, -EPIPE, -EIO ...);
 * http_status: the status when a response arrived;
 * remote_code: the S3 error code from the body ("SlowDown", "RequestTimeout",
 *   "InternalError", ...), or NULL/"".
 * Retryable: 5xx, 429, SlowDown, RequestTimeout, RequestTimeTooSkewed,
 * InternalError, ServiceUnavailable, Throttling*, connection resets/refusals,
 * timeouts. Not retryable: other 4xx (403, 404, 400, 412, ...). */
bool retry_is_retryable(int transport_err, int http_status, const char *remote_code);

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
#endif
