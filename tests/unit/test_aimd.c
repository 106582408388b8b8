/* Unit tests of agent/aimd.c: the adaptive limit of the small-object lanes. */
#include "common/compat.h"

#include "agent/aimd.h"
#include "tests/unit/tap.h"

/* Completions without a throttle until the limit changes; how many it took. */
static unsigned until_change(struct aimd *a, unsigned most)
{
	for (unsigned i = 1; i <= most; i++)
		if (aimd_done(a, false))
			return i;
	return 0;
}

static void test_halves_and_holds(void)
{
	struct aimd *a = aimd_new(0, 64);
	is_int(aimd_limit(a), 64, "starts at the top");
	is_int(aimd_done(a, false), 0, "at the top, a completion changes nothing");
	is_int(aimd_done(a, true), -32, "a throttle halves the limit");
	is_int(aimd_limit(a), 32, "now 32");
	/* the 64 answers in flight under the old limit do not halve it again */
	int moved = 0;
	for (int i = 0; i < 64; i++)
		moved |= aimd_done(a, true);
	is_int(moved, 0, "throttles among the 64 already in flight are ignored");
	is_int(aimd_done(a, true), -16, "the next throttle halves it again");
	is_int(aimd_low(a), 16, "the lowest so far is kept");
	aimd_free(a);
}

static void test_grows_back_one_per_window(void)
{
	struct aimd *a = aimd_new(0, 8);
	(void)aimd_done(a, true); /* 8 -> 4, holding 8 */
	is_int(until_change(a, 100), 8 + 4, "the 8 held, then 4 clean ones add a lane");
	is_int(aimd_limit(a), 5, "now 5");
	is_int(until_change(a, 100), 5, "then 5 clean ones add the next");
	is_int(until_change(a, 100), 6, "then 6");
	(void)until_change(a, 100);
	is_int(aimd_limit(a), 8, "back at the top");
	is_int(until_change(a, 100), 0, "and never above it");
	is_int(aimd_low(a), 4, "the lowest it reached");
	aimd_free(a);
}

static void test_floor(void)
{
	struct aimd *a = aimd_new(2, 8);
	for (int i = 0; i < 200; i++)
		(void)aimd_done(a, true);
	is_int(aimd_limit(a), 2, "never below the floor however much is throttled");
	ok(until_change(a, 100) > 0 && aimd_limit(a) == 3, "and grows from it (%u)", aimd_limit(a));

	struct aimd *z = aimd_new(0, 4);
	(void)aimd_done(z, true); /* 4 -> 2 */
	(void)until_change(z, 4); /* the held 4 ... */
	for (int i = 0; i < 20; i++)
		(void)aimd_done(z, true);
	is_int(aimd_limit(z), 0, "a floor of 0 closes every lane");
	is_int(until_change(z, 100), 1, "one clean completion (by other workers) reopens one");
	is_int(aimd_limit(z), 1, "now 1");
	aimd_free(z);
	aimd_free(a);

	struct aimd *inv = aimd_new(9, 3);
	is_int(aimd_limit(inv), 3, "a floor above the top is the top");
	is_int(aimd_done(inv, true), 0, "and cannot be halved");
	aimd_free(inv);
}

int main(void)
{
	test_halves_and_holds();
	test_grows_back_one_per_window();
	test_floor();
	return tap_done();
}
