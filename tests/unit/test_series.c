/* agent/series: deltas of the live counters, a run's tail carried over a
 * restart, counters that go back, the ring's bound and order, the JSON. */
#include "common/compat.h"

#include "agent/series.h"
#include "tests/unit/tap.h"

static json_t *sample(json_t *doc, size_t i)
{
	return json_array_get(json_object_get(doc, "samples"), i);
}

static long long field(json_t *doc, size_t i, const char *key)
{
	return (long long)json_integer_value(json_object_get(sample(doc, i), key));
}

static void test_deltas(void)
{
	struct series *s = series_new();
	json_t *doc = series_json(s);
	ok(json_array_size(json_object_get(doc, "samples")) == 0, "no sample at first");
	is_int(json_integer_value(json_object_get(doc, "interval_seconds")), SERIES_INTERVAL,
	       "interval_seconds");
	json_decref(doc);

	series_sample(s, 100, &(struct series_counters){0});
	series_sample(s, 105, &(struct series_counters){1000, 2, 0, 1});
	series_sample(s, 110, &(struct series_counters){1500, 3, 1, 1});
	series_sample(s, 115, &(struct series_counters){1500, 3, 1, 1});
	/* the run ends with a tail not sampled yet; another starts */
	series_restart(s, &(struct series_counters){1700, 4, 1, 1});
	series_sample(s, 120, &(struct series_counters){300, 1, 0, 0});
	/* counters that go back without a restart: a new run too */
	series_sample(s, 125, &(struct series_counters){50, 0, 0, 0});
	doc = series_json(s);
	is_int(json_array_size(json_object_get(doc, "samples")), 6, "six samples");
	is_int(field(doc, 0, "t"), 100, "oldest first");
	is_int(field(doc, 1, "bytes"), 1000, "a delta of bytes");
	ok(field(doc, 1, "copied") == 2 && field(doc, 1, "skipped") == 1 &&
	       field(doc, 1, "failed") == 0,
	   "  and of the counts");
	ok(field(doc, 2, "bytes") == 500 && field(doc, 2, "copied") == 1 &&
	       field(doc, 2, "failed") == 1 && field(doc, 2, "skipped") == 0,
	   "the next interval's");
	ok(field(doc, 3, "bytes") == 0 && field(doc, 3, "t") == 115, "an idle interval is kept");
	ok(field(doc, 4, "bytes") == 200 + 300 && field(doc, 4, "copied") == 1 + 1,
	   "after a restart: the last run's tail and the new run's start");
	ok(field(doc, 5, "bytes") == 50, "counters that go back count from zero");
	long long sum = 0;
	for (size_t i = 0; i < 6; i++)
		sum += field(doc, i, "bytes");
	is_int(sum, 1700 + 300 + 50, "the bytes add up to what the runs did");
	json_decref(doc);
	series_free(s);
}

static void test_ring(void)
{
	struct series *s = series_new();
	for (uint64_t i = 1; i <= SERIES_SAMPLES + 10; i++)
		series_sample(s, (int64_t)i * 5, &(struct series_counters){i, 0, 0, 0});
	json_t *doc = series_json(s);
	is_int(json_array_size(json_object_get(doc, "samples")), SERIES_SAMPLES,
	       "the ring keeps %d samples", SERIES_SAMPLES);
	is_int(field(doc, 0, "t"), 11 * 5, "the oldest ones went");
	is_int(field(doc, SERIES_SAMPLES - 1, "t"), (SERIES_SAMPLES + 10) * 5, "the newest last");
	bool ordered = true;
	for (size_t i = 1; i < SERIES_SAMPLES; i++)
		ordered = ordered && field(doc, i, "t") == field(doc, i - 1, "t") + 5 &&
			  field(doc, i, "bytes") == 1;
	ok(ordered, "in order, each interval's delta");
	json_decref(doc);
	series_free(s);
	doc = series_json(NULL);
	ok(json_array_size(json_object_get(doc, "samples")) == 0, "no series: no sample");
	json_decref(doc);
}

int main(void)
{
	test_deltas();
	test_ring();
	return tap_done();
}
