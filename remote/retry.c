#include "common/compat.h"

#include "remote/retry.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

bool retry_transport_retryable(int err)
{
	switch (-err) {
	case ETIMEDOUT:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EPIPE:
	case EIO:
	case EAGAIN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
		return true;
	default:
		return false;
	}
}

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;
	if (x == 0)
		x = 0x9E3779B97F4A7C15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

unsigned retry_backoff_ms(const struct retry_policy *p, unsigned attempt, uint64_t *rng)
{
	if (attempt == 0)
		attempt = 1;
	uint64_t ceiling = p->base_ms;
	for (unsigned i = 1; i < attempt && ceiling < p->max_ms; i++)
		ceiling *= 2;
	if (ceiling > p->max_ms)
		ceiling = p->max_ms;
	uint64_t r = xorshift64(rng);
	return (unsigned)(r % (ceiling + 1));
}

unsigned retry_after_ms(const char *value)
{
	if (!value)
		return 0;
	while (*value == ' ' || *value == '\t')
		value++;
	if (*value < '0' || *value > '9')
		return 0;
	uint64_t s = 0;
	const char *p = value;
	while (*p >= '0' && *p <= '9') {
		s = s * 10 + (uint64_t)(*p - '0');
		if (s > 86400 * 7) /* absurd; clamp at a week */
			s = 86400 * 7;
		p++;
	}
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (*p != '\0')
		return 0;
	return (unsigned)(s * 1000);
}

void retry_policy_normalize(struct retry_policy *p)
{
	if (p->max_attempts == 0)
		p->max_attempts = 1;
	if (p->max_ms == 0 && p->base_ms == 0) {
		struct retry_policy def = RETRY_POLICY_DEFAULT;
		p->base_ms = def.base_ms;
		p->max_ms = def.max_ms;
	}
}

static uint64_t *thread_rng(void)
{
	static __thread uint64_t rng;
	if (rng == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rng =
		    ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&rng;
		if (rng == 0)
			rng = 0x2545F4914F6CDD1Dull;
	}
	return &rng;
}

unsigned retry_wait_ms(const struct retry_policy *p, unsigned attempt, const char *retry_after)
{
	unsigned wait = retry_backoff_ms(p, attempt, thread_rng());
	unsigned w = retry_after_ms(retry_after);
	if (w > wait)
		wait = w < p->max_ms ? w : p->max_ms;
	return wait;
}

void retry_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void (*pause_fn)(unsigned ms);

void retry_set_pause_fn(void (*fn)(unsigned ms))
{
	__atomic_store_n(&pause_fn, fn, __ATOMIC_RELEASE);
}

void retry_pause(const struct retry_policy *p, unsigned ms)
{
	(void)p;
	void (*fn)(unsigned) = __atomic_load_n(&pause_fn, __ATOMIC_ACQUIRE);
	if (fn)
		fn(ms);
	else
		retry_sleep_ms(ms);
}
