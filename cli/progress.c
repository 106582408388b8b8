/* The progress line: objects, bytes, rate and ETA, redrawn on stderr while a
 * run goes on (only on a terminal). */
#include "common/compat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "agent/sync.h"
#include "cli/cli.h"
#include "common/util.h"

struct progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	double t0;
	void (*draw)(void *ctx, double elapsed); /* NULL: the dth sync line */
	void *ctx;
};

void progress_fmt_bytes(uint64_t n, char out[32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		xsnprintf(out, 32, "%llu B", (unsigned long long)n);
	else
		xsnprintf(out, 32, "%.1f %s", v, units[u]);
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void draw_sync(struct progress *p)
{
	struct sync_progress *s = sync_progress_get();
	double el = now_mono() - p->t0;
	uint64_t moved = ld(&s->bytes_moved), planned = ld(&s->planned_bytes);
	char b[32], r[32], eta[32] = "?";
	progress_fmt_bytes(moved, b);
	double rate = el > 0 ? (double)moved / el : 0;
	progress_fmt_bytes((uint64_t)rate, r);
	if (s->listing_done && rate > 0 && planned >= moved) {
		double left = (double)(planned - moved) / rate;
		xsnprintf(eta, sizeof(eta), "%dm%02ds", (int)left / 60, (int)left % 60);
	}
	fprintf(stderr,
		"\r\033[Klisted %llu, copied %llu/%llu%s, %s at %s/s, unchanged %llu, failed %llu, "
		"eta %s",
		(unsigned long long)ld(&s->listed), (unsigned long long)ld(&s->transferred),
		(unsigned long long)ld(&s->planned), s->listing_done ? "" : "+", b, r,
		(unsigned long long)ld(&s->skipped), (unsigned long long)ld(&s->failed), eta);
	fflush(stderr);
}

static void draw(struct progress *p)
{
	if (!p->draw) {
		draw_sync(p);
		return;
	}
	fputs("\r\033[K", stderr);
	p->draw(p->ctx, now_mono() - p->t0);
	fflush(stderr);
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		deadline_in_ms(&ts, 250);
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
		if (!p->stop)
			draw(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct progress *progress_start(bool enabled)
{
	return progress_start_with(enabled, NULL, NULL);
}

struct progress *progress_start_with(bool enabled, void (*draw_fn)(void *ctx, double elapsed),
				     void *ctx)
{
	if (!enabled || !isatty(2))
		return NULL;
	struct progress *p = xcalloc(1, sizeof(*p));
	p->draw = draw_fn;
	p->ctx = ctx;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->t0 = now_mono();
	if (pthread_create(&p->thread, NULL, progress_main, p)) {
		free(p);
		return NULL;
	}
	return p;
}

void progress_stop(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->draw) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	} else {
		draw(p);
		fputc('\n', stderr);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

void progress_suspend(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	fputs("\r\033[K", stderr);
	fflush(stderr);
}

void progress_resume(struct progress *p)
{
	if (p)
		pthread_mutex_unlock(&p->lock);
}
