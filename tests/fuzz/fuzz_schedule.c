/* Fuzz target for schedule texts (agent/schedule.h). The input is one C
 * string: the schedule text, and after a newline, if there is one, a time zone
 * name looked up in the system's zoneinfo (most names are refused, which is
 * the point: the name's checks).
 *
 * Checks: parse gives 0, or -EINVAL (or another negative errno for a zone file
 * that cannot be read) with a printable message and no schedule; the
 * canonical text parses to itself and to the same due times; due times obey
 * the header's contract for the kind (once: now, then never; every: the last
 * start + a period of 1 s to 366 d; cron: strictly after the reference, the
 * first match after one second before it is itself, never earlier for a later
 * reference, and whole minutes in UTC). */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "agent/schedule.h"
#include "common/err.h"
#include "tests/fuzz/fuzz.h"

#define T_MAX 253402300799LL

static void check_cron(const struct schedule *s, bool utc, uint64_t h)
{
	static const int64_t refs[] = {0,	   1711846799, 1730613599,
				       1704067199, 4102444800, 253402300000LL};
	int64_t prev = INT64_MIN, prev_next = INT64_MIN;
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]) + 1; i++) {
		int64_t ref = i < sizeof(refs) / sizeof(refs[0])
				  ? refs[i]
				  : (int64_t)(h % 9000000000ULL); /* 1970 to 2255 */
		int64_t n = schedule_next(s, ref, ref);
		CHECK(n > ref);
		CHECK(n == INT64_MAX || n <= T_MAX);
		if (n == INT64_MAX)
			continue;
		if (utc)
			CHECK(n % 60 == 0);
		CHECK(schedule_next(s, n - 1, n - 1) == n);
		int64_t n2 = schedule_next(s, n, n);
		CHECK(n2 > n);
		/* later references never give earlier times */
		if (ref >= prev)
			CHECK(n >= prev_next);
		prev = ref;
		prev_next = n;
		/* never ran: the current minute when it matches */
		CHECK(schedule_next(s, -1, n) == n);
	}
}

static void check(const struct schedule *s, uint64_t h)
{
	int64_t now = 1700000000 + (int64_t)(h % 100000000);
	switch (schedule_kind(s)) {
	case SCHEDULE_ONCE:
		CHECK(schedule_next(s, -1, now) == now);
		CHECK(schedule_next(s, now - 5, now) == INT64_MAX);
		break;
	case SCHEDULE_EVERY: {
		CHECK(schedule_next(s, -1, now) == now);
		int64_t d = schedule_next(s, now, now) - now;
		CHECK(d >= 1 && d <= 366 * 86400);
		CHECK(schedule_next(s, now - 10, now) == now - 10 + d);
		break;
	}
	case SCHEDULE_CRON:
		check_cron(s, strcmp(schedule_tz(s), "UTC") == 0, h);
		break;
	default:
		CHECK(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	char *tz = strchr(text, '\n');
	if (tz)
		*tz++ = '\0';
	uint64_t h = fuzz_hash(data, size);

	struct schedule *s = (struct schedule *)1;
	struct dth_err e;
	err_clear(&e);
	int rc = schedule_parse(text, tz, &s, &e);
	if (rc) {
		CHECK(rc < 0 && e.code == rc && e.message[0] && s == NULL);
		CHECK(fuzz_printable(e.message));
		free(text);
		return 0;
	}
	CHECK(s != NULL && schedule_text(s) && fuzz_printable(schedule_text(s)));
	check(s, h);

	/* the canonical text is a fixed point with the same times */
	struct schedule *s2 = NULL;
	err_clear(&e);
	CHECK(schedule_parse(schedule_text(s), tz, &s2, &e) == 0);
	CHECK(strcmp(schedule_text(s2), schedule_text(s)) == 0);
	CHECK(schedule_kind(s2) == schedule_kind(s));
	int64_t ref = 1600000000 + (int64_t)(h % 1000000000);
	CHECK(schedule_next(s2, ref, ref) == schedule_next(s, ref, ref));
	CHECK(schedule_next(s2, -1, ref) == schedule_next(s, -1, ref));
	schedule_free(s2);
	schedule_free(s);
	free(text);
	return 0;
}
