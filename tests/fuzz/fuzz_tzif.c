/* Fuzz target for the TZif reader of agent/schedule.c (RFC 8536 files and
 * their POSIX TZ footers). The input is a zone file's bytes; the schedule
 * ("cron 30 2 * * *", or "cron 0 * * * *" for inputs of odd length) is parsed
 * in it with schedule_parse_tzif.
 *
 * Checks: the file is accepted or refused with -EINVAL, a message naming the
 * zone and no schedule; nothing is read outside the input (ASan: the input is
 * an exact-size copy); an accepted zone gives offsets within RFC 8536's
 * bounds at any instant, and due times strictly after their reference,
 * never later than year 9999, and never earlier for a later reference. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "agent/schedule.h"
#include "common/err.h"
#include "tests/fuzz/fuzz.h"

#define T_MAX 253402300799LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	if (size)
		memcpy(copy, data, size);
	const char *text = size % 2 ? "cron 0 * * * *" : "cron 30 2 * * *";
	struct schedule *s = (struct schedule *)1;
	struct dth_err e;
	err_clear(&e);
	int rc = schedule_parse_tzif(text, "Fuzz/Zone", copy, size, &s, &e);
	if (rc) {
		CHECK(rc == -EINVAL && e.code == rc && s == NULL);
		CHECK(strstr(e.message, "time zone \"Fuzz/Zone\"") && fuzz_printable(e.message));
		free(copy);
		return 0;
	}
	free(copy); /* the schedule keeps nothing of the input */
	uint64_t h = fuzz_hash(data, size);
	static const int64_t at[] = {-62135596800LL, -2000000000,   0, 1711846800, 2147483647,
				     4102444800,     253402300799LL};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]) + 1; i++) {
		int64_t t = i < sizeof(at) / sizeof(at[0]) ? at[i] : (int64_t)(h % 20000000000ULL);
		int32_t off = schedule_utc_offset(s, t);
		CHECK(off >= -89999 && off <= 93599);
	}
	/* due times: after the reference, and not earlier for a later one */
	int64_t prev = INT64_MIN, step = 1 + (int64_t)(h % 50000);
	int64_t ref = 1700000000 + (int64_t)((h >> 20) % 4000000000ULL);
	for (int k = 0; k < 12; k++, ref += step) {
		int64_t n = schedule_next(s, ref, ref);
		CHECK(n > ref && (n == INT64_MAX || n <= T_MAX));
		CHECK(n >= prev);
		prev = n;
	}
	schedule_free(s);
	return 0;
}
