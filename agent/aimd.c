#include "common/compat.h"

#include "agent/aimd.h"

#include "common/util.h"

/* Invariants: lo <= limit <= hi; low is the least limit ever held. After a
 * halving, hold counts down the completions of the jobs that were in flight
 * under the old limit (at most that many): throttles among them are ignored.
 * credit counts completions without a throttle since the limit last changed;
 * it reaches the limit (at least 1) to add a lane. */
struct aimd {
	unsigned lo, hi;
	unsigned limit, low;
	unsigned hold;
	unsigned credit;
};

struct aimd *aimd_new(unsigned lo, unsigned hi)
{
	struct aimd *a = xcalloc(1, sizeof(*a));
	a->lo = lo < hi ? lo : hi;
	a->hi = hi;
	a->limit = a->low = hi;
	return a;
}

void aimd_free(struct aimd *a)
{
	free(a);
}

static int halve(struct aimd *a)
{
	unsigned was = a->limit;
	unsigned next = was / 2 > a->lo ? was / 2 : a->lo;
	a->hold = was;
	a->credit = 0;
	if (next == was)
		return 0;
	a->limit = next;
	if (next < a->low)
		a->low = next;
	return -(int)(was - next);
}

int aimd_done(struct aimd *a, bool throttled)
{
	if (a->hold) {
		a->hold--;
		return 0;
	}
	if (throttled)
		return halve(a);
	if (a->limit >= a->hi)
		return 0;
	if (++a->credit < (a->limit ? a->limit : 1))
		return 0;
	a->credit = 0;
	a->limit++;
	return 1;
}

unsigned aimd_limit(const struct aimd *a)
{
	return a->limit;
}

unsigned aimd_low(const struct aimd *a)
{
	return a->low;
}
