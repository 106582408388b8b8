/* The tasks' recent history for the console: each task's time series
 * (series.h), sampled by the scheduler, and its ring of recent events
 * (evring.h), filled where events are taken (svc_events.c); both bounded
 * per task.
 *
 * Locking: as in service.c, s->lock guards both (they are atask fields);
 * every function here is called with it held, or takes it. */
#include "common/compat.h"

#include <errno.h>
#include <string.h>

#include "agent/evring.h"
#include "agent/series.h"
#include "agent/service_i.h"

#define LD(p, f) __atomic_load_n(&(p)->f, __ATOMIC_RELAXED)

/* What t's run (the one going on, or the last) has done so far. */
static struct series_counters live_counters(const struct atask *t)
{
	if (t->def.kind == TASKDEF_IMAGE) {
		const struct image_progress *p = &t->live.image;
		return (struct series_counters){LD(p, bytes), LD(p, copied), LD(p, failed),
						LD(p, skipped) + LD(p, filtered)};
	}
	const struct sync_progress *p = &t->live.sync;
	return (struct series_counters){LD(p, bytes_moved), LD(p, transferred), LD(p, failed),
					LD(p, skipped)};
}

static struct series *series_of(struct atask *t)
{
	if (!t->series)
		t->series = series_new();
	return t->series;
}

int64_t svc_series_tick_locked(struct service *s, int64_t now)
{
	if (now < s->next_sample && s->next_sample - now <= SERIES_INTERVAL)
		return s->next_sample;
	for (struct atask *t = s->tasks; t; t = t->next) {
		if (t->removing)
			continue;
		struct series_counters c = live_counters(t);
		series_sample(series_of(t), now, &c);
	}
	s->next_sample = now - now % SERIES_INTERVAL + SERIES_INTERVAL;
	return s->next_sample;
}

void svc_series_restart_locked(struct atask *t)
{
	struct series_counters c = live_counters(t);
	series_restart(series_of(t), &c);
	memset(&t->live, 0, sizeof(t->live));
}

/* fn's view of the task called name (under the lock). */
static int task_view(struct service *s, const char *name, json_t *(*fn)(const struct atask *t),
		     json_t **out)
{
	pthread_mutex_lock(&s->lock);
	struct atask *t = svc_find_locked(s, name);
	if (t)
		*out = fn(t);
	pthread_mutex_unlock(&s->lock);
	return t ? 0 : -ENOENT;
}

static json_t *series_view(const struct atask *t)
{
	return series_json(t->series);
}

static json_t *events_view(const struct atask *t)
{
	return evring_json(t->evlog);
}

int service_task_series(struct service *s, const char *name, json_t **out)
{
	return task_view(s, name, series_view, out);
}

int service_task_events_log(struct service *s, const char *name, json_t **out)
{
	return task_view(s, name, events_view, out);
}
