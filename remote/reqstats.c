/* Request counts by remote and operation (see reqstats.h).
 *
 * Locking: one mutex over the table; entries are only added (strings copied
 * once, never freed), so a pointer to a name stays valid for the process.
 * The throttled total is also kept apart, atomically, for readers that poll
 * it after every job without taking the lock. */
#include "common/compat.h"

#include <pthread.h>
#include <string.h>

#include "common/util.h"
#include "remote/reqstats.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct reqstats_entry table[REQSTATS_MAX];
static size_t used;
static uint64_t throttled; /* atomic: read without the lock */

const char *reqstats_error_name(int kind)
{
	static const char *const names[] = {"transport", "throttled", "server", "client",
					    "garbled"};
	return kind >= 0 && kind < REQERR__COUNT ? names[kind] : "?";
}

/* With lock held: the entry of (remote, op), made when new. */
static struct reqstats_entry *entry(const char *remote, const char *op)
{
	for (size_t i = 0; i < used; i++)
		if (!strcmp(table[i].remote, remote) && !strcmp(table[i].op, op))
			return &table[i];
	if (used == REQSTATS_MAX - 1 && strcmp(op, "other"))
		return entry(remote, "other");
	if (used == REQSTATS_MAX)
		return &table[REQSTATS_MAX - 1];
	struct reqstats_entry *e = &table[used++];
	e->remote = xstrdup(remote);
	e->op = xstrdup(op);
	return e;
}

void reqstats_count(const char *remote, const char *op, int error, int retried)
{
	pthread_mutex_lock(&lock);
	struct reqstats_entry *e = entry(remote ? remote : "?", op ? op : "?");
	e->requests++;
	if (error >= 0 && error < REQERR__COUNT)
		e->errors[error]++;
	if (error == REQERR_THROTTLED)
		__atomic_add_fetch(&throttled, 1, __ATOMIC_RELAXED);
	if (retried)
		e->retries++;
	pthread_mutex_unlock(&lock);
}

uint64_t reqstats_throttled(void)
{
	return __atomic_load_n(&throttled, __ATOMIC_RELAXED);
}

void reqstats_each(void (*fn)(void *ctx, const struct reqstats_entry *e), void *ctx)
{
	pthread_mutex_lock(&lock);
	size_t n = used;
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&lock);
		struct reqstats_entry copy = table[i];
		pthread_mutex_unlock(&lock);
		fn(ctx, &copy);
	}
}
