/* Unit tests of the pure functions of agent/layout.c: layout_plan (part size
 * and count of a multipart copy), layout_guess_part_sizes (the source's part
 * size from its size and part count) and layout_check (what a server says of
 * its parts: possible, repeatable). */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "agent/layout.h"
#include "common/util.h"
#include "tests/unit/tap.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)
#define TiB (1ULL << 40)

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* ---- layout_plan ---- */

static void layout_is(uint64_t size, uint64_t part, uint64_t want_part, uint32_t want_count,
		      const char *what)
{
	uint64_t got_part = 0;
	uint32_t got_count = 0;
	layout_plan(size, part, &got_part, &got_count);
	is_int(got_part, want_part, "layout %s: part size", what);
	is_int(got_count, want_count, "layout %s: part count", what);
}

static void test_layout_boundaries(void)
{
	/* Empty and tiny objects still have one part. */
	layout_is(0, 8 * MiB, 8 * MiB, 1, "0 bytes");
	layout_is(1, 8 * MiB, 8 * MiB, 1, "1 byte");
	layout_is(8 * MiB - 1, 8 * MiB, 8 * MiB, 1, "part - 1");
	layout_is(8 * MiB, 8 * MiB, 8 * MiB, 1, "exactly one part");
	layout_is(8 * MiB + 1, 8 * MiB, 8 * MiB, 2, "one part + 1 byte");
	layout_is(3 * 8 * MiB, 8 * MiB, 8 * MiB, 3, "exactly 3 parts");
	layout_is(3 * 8 * MiB + 1, 8 * MiB, 8 * MiB, 4, "3 parts + 1 byte");

	/* 10,000 parts is the most S3 takes: exactly that many keeps the size. */
	layout_is(10000 * 8 * MiB, 8 * MiB, 8 * MiB, 10000, "exactly 10000 x 8 MiB");
	layout_is(10000 * 8 * MiB - 1, 8 * MiB, 8 * MiB, 10000, "10000 x 8 MiB - 1");
	/* One byte more doubles the part size. */
	layout_is(10000 * 8 * MiB + 1, 8 * MiB, 16 * MiB, 5001, "10000 x 8 MiB + 1");
	layout_is(10000 * 16 * MiB, 8 * MiB, 16 * MiB, 10000, "exactly 10000 x 16 MiB");
	layout_is(10000 * 16 * MiB + 1, 8 * MiB, 32 * MiB, 5001, "10000 x 16 MiB + 1");

	/* The 5 MiB minimum. */
	layout_is(100 * MiB, 1 * MiB, 5 * MiB, 20, "1 MiB raised to 5 MiB");
	layout_is(100 * MiB, 0, 5 * MiB, 20, "0 raised to 5 MiB");
	layout_is(100 * MiB, 5 * MiB - 1, 5 * MiB, 20, "5 MiB - 1 raised to 5 MiB");
	layout_is(100 * MiB, 5 * MiB, 5 * MiB, 20, "5 MiB kept");
	layout_is(0, 0, 5 * MiB, 1, "0 bytes, part 0");
	layout_is(10000 * 5 * MiB, 1, 5 * MiB, 10000, "exactly 10000 x 5 MiB from 1 byte");
	layout_is(10000 * 5 * MiB + 1, 1, 10 * MiB, 5001, "10000 x 5 MiB + 1 from 1 byte");

	/* A part size that is not a power of two is doubled as is. */
	layout_is(10000 * 7 * MiB + 1, 7 * MiB, 14 * MiB, 5001, "7 MiB doubled");

	/* 5 TiB, the largest S3 object: 8 MiB doubles to 1 GiB (512 MiB x 10000
	 * is 5000 GiB, short of 5120 GiB); 5 MiB doubles to 640 MiB. */
	layout_is(5 * TiB, 8 * MiB, 1 * GiB, 5120, "5 TiB from 8 MiB");
	layout_is(5 * TiB, 5 * MiB, 640 * MiB, 8192, "5 TiB from 5 MiB");
	layout_is(5 * TiB, 5 * GiB, 5 * GiB, 1024, "5 TiB from 5 GiB");
	/* A part size already larger than the object. */
	layout_is(1 * MiB, 64 * MiB, 64 * MiB, 1, "part larger than the object");
}

/* Invariants over many sizes: count = ceil(size / part), at most 10,000 parts,
 * part >= 5 MiB, part = start * 2^k, and half the part would not have fitted. */
static void test_layout_invariants(void)
{
	static const uint64_t starts[] = {0, 1, 5 * MiB, 8 * MiB, 7 * MiB + 3, 16 * MiB, 100 * MiB};
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	unsigned bad = 0, total = 0;
	for (unsigned i = 0; i < 4000; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		/* Spread sizes over 0 .. 5 TiB, biased towards small ones. */
		unsigned shift = (unsigned)(seed % 43);
		uint64_t size = (seed >> 8) & ((1ULL << shift) - 1);
		if (size > 5 * TiB)
			size = 5 * TiB;
		uint64_t start = starts[i % ARRAY_SIZE(starts)];
		uint64_t p = 0;
		uint32_t n = 0;
		layout_plan(size, start, &p, &n);
		uint64_t base = start < 5 * MiB ? 5 * MiB : start;
		bool good = p >= 5 * MiB && p % base == 0 && ((p / base) & (p / base - 1)) == 0 &&
			    n >= 1 && n <= 10000 && n == (size ? ceil_div(size, p) : 1) &&
			    (p == base || ceil_div(size, p / 2) > 10000);
		total++;
		if (!good) {
			if (bad++ < 5)
				printf("# size %llu start %llu -> part %llu count %u\n",
				       (unsigned long long)size, (unsigned long long)start,
				       (unsigned long long)p, n);
		}
	}
	is_int(bad, 0, "layout invariants hold for %u random sizes", total);
}

/* ---- layout_guess_part_sizes ---- */

#define GMAX 16

/* Every candidate splits size into exactly nparts parts, and none repeats. */
static bool all_fit(uint64_t size, unsigned nparts, const uint64_t *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (c[i] == 0 || ceil_div(size, c[i]) != nparts)
			return false;
		for (unsigned j = 0; j < i; j++)
			if (c[i] == c[j])
				return false;
	}
	return true;
}

static void guess_first_is(uint64_t size, unsigned nparts, uint64_t want, const char *what)
{
	uint64_t c[GMAX];
	memset(c, 0, sizeof(c));
	unsigned n = layout_guess_part_sizes(size, nparts, c, GMAX);
	ok(n >= 1 && n <= GMAX, "guess %s: %u candidates", what, n);
	is_int(n ? c[0] : 0, want, "guess %s: first is the true part size", what);
	ok(all_fit(size, nparts, c, n), "guess %s: every candidate gives %u parts", what, nparts);
}

static void test_guess_three_parts(void)
{
	static const uint64_t parts[] = {5 * MiB, 8 * MiB, 16 * MiB};
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		uint64_t p = parts[i];
		const uint64_t lasts[] = {1, p / 2, p};
		const char *names[] = {"1 byte", "half a part", "a full part"};
		for (size_t j = 0; j < ARRAY_SIZE(lasts); j++) {
			char what[96];
			snprintf(what, sizeof(what), "3 parts of %llu MiB, last %s",
				 (unsigned long long)(p / MiB), names[j]);
			guess_first_is(2 * p + lasts[j], 3, p, what);
		}
	}
}

static void test_guess_tool_defaults(void)
{
	/* AWS CLI: 8 MiB parts. */
	guess_first_is(1 * GiB, 128, 8 * MiB, "aws cli 1 GiB");
	guess_first_is(100 * MiB + 3, 13, 8 * MiB, "aws cli 100 MiB + 3");
	guess_first_is(1 * GiB + 1, 129, 8 * MiB, "aws cli 1 GiB + 1");
	/* rclone: 5 MiB parts. */
	guess_first_is(100 * MiB, 20, 5 * MiB, "rclone 100 MiB");
	guess_first_is(1 * GiB + 12345, 205, 5 * MiB, "rclone 1 GiB + 12345");
	/* 100 parts of 50 MiB. */
	guess_first_is(100 * 50 * MiB, 100, 50 * MiB, "100 x 50 MiB");
	guess_first_is(99 * 50 * MiB + 1, 100, 50 * MiB, "99 x 50 MiB + 1");
	guess_first_is(99 * 50 * MiB + 25 * MiB, 100, 50 * MiB, "99.5 x 50 MiB");
	/* 10,000 parts of 5 MiB (the S3 maximum count). */
	guess_first_is(10000 * 5 * MiB, 10000, 5 * MiB, "10000 x 5 MiB");
}

static void test_guess_edges(void)
{
	uint64_t c[GMAX];
	memset(c, 0, sizeof(c));
	is_int(layout_guess_part_sizes(100 * MiB, 1, c, GMAX), 0, "nparts 1: no guess");
	is_int(layout_guess_part_sizes(100 * MiB, 0, c, GMAX), 0, "nparts 0: no guess");
	is_int(layout_guess_part_sizes(1, 1, c, GMAX), 0, "1 byte, nparts 1: no guess");
	is_int(layout_guess_part_sizes(100 * MiB, 20, c, 0), 0, "max 0: no guess");
	/* Fewer bytes than parts: impossible. */
	is_int(layout_guess_part_sizes(1, 2, c, GMAX), 0, "1 byte in 2 parts: no guess");
	is_int(layout_guess_part_sizes(10, 20, c, GMAX), 0, "10 bytes in 20 parts: no guess");
	unsigned n = layout_guess_part_sizes(0, 2, c, GMAX);
	ok(all_fit(0, 2, c, n), "0 bytes in 2 parts: no candidate that does not fit (%u given)", n);

	/* Two bytes in two parts: 1 is the only part size. */
	memset(c, 0, sizeof(c));
	n = layout_guess_part_sizes(2, 2, c, GMAX);
	ok(n == 1 && c[0] == 1, "2 bytes in 2 parts: exactly one candidate, 1 (%u, %llu)", n,
	   (unsigned long long)c[0]);

	/* max is respected: nothing written past it. */
	uint64_t m[4] = {0, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef};
	n = layout_guess_part_sizes(100 * 50 * MiB, 2, m, 1);
	ok(n == 1 && m[1] == 0xdeadbeef, "max 1: one candidate, out[1] untouched");
	ok(all_fit(100 * 50 * MiB, 2, m, n), "max 1: the candidate fits");

	/* Wide ranges give many candidates, capped at max, all fitting. */
	memset(c, 0, sizeof(c));
	n = layout_guess_part_sizes(1 * GiB, 2, c, GMAX);
	ok(n == GMAX, "1 GiB in 2 parts: max candidates (%u)", n);
	ok(all_fit(1 * GiB, 2, c, n), "1 GiB in 2 parts: every candidate fits");
	is_int(c[0], 512 * MiB, "1 GiB in 2 parts: 512 MiB first");

	/* A whole MiB is preferred to a whole MB when both fit. */
	memset(c, 0, sizeof(c));
	n = layout_guess_part_sizes(3 * 1000000, 3, c, GMAX);
	ok(n >= 1 && all_fit(3 * 1000000, 3, c, n), "3 MB in 3 parts: candidates fit (%u)", n);
	is_int(c[0], 1 * MiB, "3 MB in 3 parts: 1 MiB first");
	/* No whole MiB fits: a whole MB, or else the smallest size that fits. */
	memset(c, 0, sizeof(c));
	n = layout_guess_part_sizes(100 * 5000000ULL, 100, c, GMAX);
	ok(n >= 1 && all_fit(100 * 5000000ULL, 100, c, n), "100 x 5 MB: candidates fit (%u)", n);
	is_int(c[0], 5000000, "100 x 5 MB: 5 MB first");
	memset(c, 0, sizeof(c));
	n = layout_guess_part_sizes(3 * 12345, 3, c, GMAX);
	ok(n == 1 && c[0] == 12345, "3 x 12345 bytes in 3 parts: only 12345 (%u, %llu)", n,
	   (unsigned long long)c[0]);
}

/* Random sizes and part counts: every candidate fits, and a guess is given
 * whenever some part size fits (checked by the bounds ceil(size/n) and
 * floor((size-1)/(n-1))). */
static void test_guess_random(void)
{
	uint64_t seed = 0x2545f4914f6cdd1dULL;
	unsigned bad = 0, missing = 0, total = 0;
	for (unsigned i = 0; i < 3000; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		unsigned shift = 1 + (unsigned)(seed % 42);
		uint64_t size = 1 + ((seed >> 8) & ((1ULL << shift) - 1));
		unsigned nparts = 2 + (unsigned)((seed >> 50) % 10000);
		uint64_t c[GMAX];
		unsigned n = layout_guess_part_sizes(size, nparts, c, GMAX);
		uint64_t lo = ceil_div(size, nparts), hi = (size - 1) / (nparts - 1);
		bool feasible = lo <= hi && lo > 0;
		total++;
		if (n > GMAX || !all_fit(size, nparts, c, n)) {
			if (bad++ < 5)
				printf("# size %llu nparts %u: a candidate does not fit\n",
				       (unsigned long long)size, nparts);
		}
		if (feasible != (n > 0)) {
			if (missing++ < 5)
				printf("# size %llu nparts %u: feasible %d but %u candidates\n",
				       (unsigned long long)size, nparts, feasible, n);
		}
	}
	is_int(bad, 0, "guess: every candidate fits over %u random cases", total);
	is_int(missing, 0, "guess: a candidate exactly when one exists over %u random cases",
	       total);
}

/* ---- layout_check: what a server tells of its parts ---- */

static void check_is(const uint64_t *sizes, uint32_t n, uint64_t size, int want, const char *what)
{
	const char *why = NULL;
	int rc = layout_check(sizes, n, size, &why);
	is_int(rc, want, "layout_check %s (%s)", what, why ? why : "ok");
}

static void test_check(void)
{
	const uint64_t ok4[] = {8 * MiB, 8 * MiB, 8 * MiB, 4 * MiB};
	check_is(ok4, 4, 28 * MiB, 0, "8, 8, 8, 4 MiB");
	const uint64_t zero[] = {8 * MiB, 0, 8 * MiB, 12 * MiB};
	check_is(zero, 4, 28 * MiB, -EBADMSG, "an empty part");
	/* Exabyte parts whose 64-bit sum wraps round to the object's size. */
	const uint64_t huge[] = {8 * MiB, 0x6000000000000000ULL, 0x6000000000000000ULL,
				 0x4000000000000000ULL + 20 * MiB};
	check_is(huge, 4, 28 * MiB, -EBADMSG, "parts whose sum wraps");
	const uint64_t nosum[] = {8 * MiB, 7 * MiB, 8 * MiB, 6 * MiB};
	check_is(nosum, 4, 28 * MiB, -EBADMSG, "parts that do not add up");
	const uint64_t big[] = {6 * GiB, 1 * MiB};
	check_is(big, 2, 6 * GiB + MiB, -EBADMSG, "a part over 5 GiB");
	const uint64_t small[] = {1 * MiB, 1 * MiB, 1 * MiB};
	check_is(small, 3, 3 * MiB, -EAGAIN, "parts under 5 MiB: possible, not repeatable");
	const uint64_t last_small[] = {5 * MiB, 1};
	check_is(last_small, 2, 5 * MiB + 1, 0, "only the last part small");
	check_is(ok4, 0, 0, -EBADMSG, "no parts");
}

int main(void)
{
	test_check();
	test_layout_boundaries();
	test_layout_invariants();
	test_guess_three_parts();
	test_guess_tool_defaults();
	test_guess_edges();
	test_guess_random();
	return tap_done();
}
