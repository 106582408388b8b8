/* A task's time series for the console's charts: what it did in each
 * interval of SERIES_INTERVAL seconds (bytes transferred, objects or images
 * copied, failed, skipped), kept in a fixed ring of SERIES_SAMPLES samples
 * (one hour), so memory is bounded by the number of tasks, never by objects.
 *
 * The agent samples the live counters of each task's run (taskrun.h) every
 * interval; a sample holds the difference from the one before. A run that
 * starts is told (series_restart) with the counters as they stand, so the
 * part of the last run not sampled yet still counts (in the next sample) and
 * the new run counts from zero; counters that go back (a run started
 * without being told) count from zero too. Every interval has its sample,
 * idle ones included, so the time axis is true.
 *
 * Not thread-safe: the caller serialises (the agent: its service lock). */
#ifndef DTH_SERIES_H
#define DTH_SERIES_H

#include <jansson.h>
#include <stdint.h>

#define SERIES_INTERVAL 5   /* seconds */
#define SERIES_SAMPLES	720 /* one hour */

struct series_counters {
	uint64_t bytes, copied, failed, skipped;
};

struct series;

struct series *series_new(void);
void series_free(struct series *s);
/* A sample at unix time t of the run's counters now. */
void series_sample(struct series *s, int64_t t, const struct series_counters *now);
/* A run starts: now is what the counters say before they are zeroed. */
void series_restart(struct series *s, const struct series_counters *now);
/* {"interval_seconds": 5, "samples": [{"t", "bytes", "copied", "failed",
 * "skipped"}, ...]} oldest first. s may be NULL (no sample yet). New
 * reference. */
json_t *series_json(const struct series *s);

#endif
