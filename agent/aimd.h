/* An adaptive limit on how many of a set of lanes run at once, adapted to
 * throttling the way TCP adapts its congestion window: additive increase,
 * multiplicative decrease. A throttled answer (503 SlowDown, 429) halves the
 * limit; `limit` completions in a row without one add a lane back. The
 * answers to requests already in flight when the limit was halved were sent
 * under the old limit, so throttles among them do not halve it again.
 * Not thread-safe: the caller serialises calls with its own lock. */
#ifndef DTH_AIMD_H
#define DTH_AIMD_H

#include <stdbool.h>

struct aimd;

/* A limit between lo and hi (lo <= hi), starting at hi. Owned by the caller;
 * free with aimd_free. */
struct aimd *aimd_new(unsigned lo, unsigned hi);
void aimd_free(struct aimd *a);

/* One job has completed; throttled: a throttled answer was seen since the
 * previous call. Returns the change of the limit: negative when halved,
 * positive when a lane was added back, 0 when it stays. */
int aimd_done(struct aimd *a, bool throttled);

/* The limit now, and the lowest it has been. */
unsigned aimd_limit(const struct aimd *a);
unsigned aimd_low(const struct aimd *a);

#endif
