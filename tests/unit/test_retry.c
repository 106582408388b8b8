/* Unit tests for remote/retry.c: transport classification, backoff bounds,
 * Retry-After. */
#include "common/compat.h"

#include <errno.h>
#include <stdint.h>

#include "remote/retry.h"
#include "tests/unit/tap.h"

/* Transport failures only: what HTTP answers mean is remote/exec.c's status
 * table (tests/unit/test_exec.c). */
static void test_classify(void)
{
	static const struct {
		int transport;
		bool want;
	} cases[] = {
	    {-ETIMEDOUT, true}, {-ECONNRESET, true},   {-ECONNREFUSED, true}, {-EPIPE, true},
	    {-EIO, true},	{-EHOSTUNREACH, true}, {-EFBIG, false},	      {-EINVAL, false},
	    {-EPROTO, false},	{-ENOMEM, false},      {-EBADMSG, false},     {-EACCES, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = retry_transport_retryable(cases[i].transport);
		ok(got == cases[i].want, "transport_retryable(%d) == %s", cases[i].transport,
		   cases[i].want ? "true" : "false");
	}
}

static void test_backoff(void)
{
	struct retry_policy p = {8, 100, 20000};
	uint64_t rng = 12345;
	/* ceilings: 100, 200, 400, ... capped at 20000 */
	for (unsigned attempt = 1; attempt <= 12; attempt++) {
		uint64_t ceiling = 100ull << (attempt - 1);
		if (ceiling > 20000)
			ceiling = 20000;
		unsigned lo = UINT32_MAX, hi = 0;
		bool in_range = true;
		for (int i = 0; i < 20000; i++) {
			unsigned v = retry_backoff_ms(&p, attempt, &rng);
			if (v > ceiling)
				in_range = false;
			if (v < lo)
				lo = v;
			if (v > hi)
				hi = v;
		}
		ok(in_range, "attempt %u: every draw within [0, %llu]", attempt,
		   (unsigned long long)ceiling);
		/* Full jitter: the draws spread over the whole range. */
		ok(lo <= ceiling / 10 && hi >= ceiling - ceiling / 10,
		   "attempt %u: draws spread over the range (lo %u hi %u)", attempt, lo, hi);
	}
	/* Mean of a uniform draw is about half the ceiling. */
	uint64_t sum = 0;
	for (int i = 0; i < 100000; i++)
		sum += retry_backoff_ms(&p, 3, &rng);
	double mean = (double)sum / 100000.0;
	ok(mean > 180 && mean < 220, "mean of attempt-3 draws near 200 (%.1f)", mean);

	/* Huge attempt numbers do not overflow and stay at the cap. */
	bool capped = true;
	for (int i = 0; i < 1000; i++)
		if (retry_backoff_ms(&p, 1000, &rng) > 20000)
			capped = false;
	ok(capped, "attempt 1000 stays under the cap");

	struct retry_policy big = {8, 3000000000u, 4000000000u};
	bool big_ok = true;
	for (int i = 0; i < 1000; i++)
		if (retry_backoff_ms(&big, 40, &rng) > 4000000000u)
			big_ok = false;
	ok(big_ok, "large base and cap do not overflow");

	/* The rng state advances and different seeds give different sequences. */
	uint64_t a = 1, b = 2;
	unsigned same = 0;
	for (int i = 0; i < 100; i++)
		if (retry_backoff_ms(&p, 8, &a) == retry_backoff_ms(&p, 8, &b))
			same++;
	ok(same < 10, "different seeds give different draws (%u equal)", same);
	ok(a != 1 && b != 2, "rng state is updated");

	/* A zero seed still works. */
	uint64_t z = 0;
	unsigned v1 = retry_backoff_ms(&p, 5, &z);
	ok(z != 0 && v1 <= 1600, "zero seed is replaced by a non-zero state");

	struct retry_policy zero = {1, 0, 0};
	ok(retry_backoff_ms(&zero, 3, &rng) == 0, "base 0 gives 0");
}

static void test_retry_after(void)
{
	is_int(retry_after_ms("5"), 5000, "Retry-After 5");
	is_int(retry_after_ms(" 12 "), 12000, "Retry-After with spaces");
	is_int(retry_after_ms("0"), 0, "Retry-After 0");
	is_int(retry_after_ms(NULL), 0, "absent");
	is_int(retry_after_ms(""), 0, "empty");
	is_int(retry_after_ms("abc"), 0, "not a number");
	is_int(retry_after_ms("-3"), 0, "negative");
	is_int(retry_after_ms("3s"), 0, "trailing junk");
	is_int(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), 0,
	       "HTTP date is not delta seconds");
	is_int(retry_after_ms("99999999999999999999"), 86400u * 7 * 1000, "huge value is clamped");
}

int main(void)
{
	test_classify();
	test_backoff();
	test_retry_after();
	return tap_done();
}
