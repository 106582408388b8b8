/* A task's time series (see series.h).
 *
 * Invariants: ring[(head + i) % SERIES_SAMPLES] is the i-th oldest of the n
 * samples; last holds the counters as the last sample (or restart) saw them,
 * carry what a run did after its last sample, counted in the next one. */
#include "common/compat.h"

#include "agent/series.h"

#include <stdlib.h>

#include "common/util.h"

struct sample {
	int64_t t;
	struct series_counters d;
};

struct series {
	struct sample ring[SERIES_SAMPLES];
	size_t head, n;
	struct series_counters last, carry;
};

struct series *series_new(void)
{
	return xcalloc(1, sizeof(struct series));
}

void series_free(struct series *s)
{
	free(s);
}

/* now - last, or now when a counter went back (another run). */
static struct series_counters delta(const struct series_counters *now,
				    const struct series_counters *last)
{
	if (now->bytes < last->bytes || now->copied < last->copied || now->failed < last->failed ||
	    now->skipped < last->skipped)
		return *now;
	return (struct series_counters){now->bytes - last->bytes, now->copied - last->copied,
					now->failed - last->failed, now->skipped - last->skipped};
}

static void add(struct series_counters *a, const struct series_counters *b)
{
	a->bytes += b->bytes;
	a->copied += b->copied;
	a->failed += b->failed;
	a->skipped += b->skipped;
}

void series_restart(struct series *s, const struct series_counters *now)
{
	struct series_counters d = delta(now, &s->last);
	add(&s->carry, &d);
	s->last = (struct series_counters){0};
}

void series_sample(struct series *s, int64_t t, const struct series_counters *now)
{
	struct sample sm = {t, delta(now, &s->last)};
	add(&sm.d, &s->carry);
	s->carry = (struct series_counters){0};
	s->last = *now;
	if (s->n < SERIES_SAMPLES) {
		s->ring[(s->head + s->n++) % SERIES_SAMPLES] = sm;
	} else {
		s->ring[s->head] = sm;
		s->head = (s->head + 1) % SERIES_SAMPLES;
	}
}

json_t *series_json(const struct series *s)
{
	json_t *a = json_array();
	for (size_t i = 0; s && i < s->n; i++) {
		const struct sample *sm = &s->ring[(s->head + i) % SERIES_SAMPLES];
		json_array_append_new(
		    a,
		    json_pack("{s:I, s:I, s:I, s:I, s:I}", "t", (json_int_t)sm->t, "bytes",
			      (json_int_t)sm->d.bytes, "copied", (json_int_t)sm->d.copied, "failed",
			      (json_int_t)sm->d.failed, "skipped", (json_int_t)sm->d.skipped));
	}
	return json_pack("{s:i, s:o}", "interval_seconds", SERIES_INTERVAL, "samples", a);
}
