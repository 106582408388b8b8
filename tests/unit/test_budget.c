/* Unit tests of agent/budget.c: the byte budget shared by the workers. Run
 * under ThreadSanitizer too (tests/run-all.sh). */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>

#include "agent/budget.h"
#include "tests/unit/tap.h"

#define THREADS 8
#define ROUNDS	2000

struct shared {
	struct budget *b;
	uint64_t held; /* what the threads hold, counted by them (atomic) */
	uint64_t worst;
	volatile int stop;
};

static void *taker(void *arg)
{
	struct shared *s = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed;
	for (int i = 0; i < ROUNDS; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t n = 1 + (seed >> 33) % 40;
		if (budget_take(s->b, n, &s->stop))
			break;
		uint64_t now = __atomic_add_fetch(&s->held, n, __ATOMIC_SEQ_CST);
		uint64_t w = __atomic_load_n(&s->worst, __ATOMIC_SEQ_CST);
		while (now > w && !__atomic_compare_exchange_n(&s->worst, &w, now, false,
							       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			;
		__atomic_sub_fetch(&s->held, n, __ATOMIC_SEQ_CST);
		budget_give(s->b, n);
	}
	return NULL;
}

static void test_never_over(void)
{
	struct shared s = {budget_new(100), 0, 0, 0};
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, taker, &s);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ok(s.worst <= 100, "%d threads never held more than the limit (most: %llu of 100)", THREADS,
	   (unsigned long long)s.worst);
	ok(budget_peak(s.b) <= 100 && budget_peak(s.b) > 0, "budget_peak within the limit (%llu)",
	   (unsigned long long)budget_peak(s.b));
	ok(budget_try_take(s.b, 100), "everything was given back");
	budget_give(s.b, 100);
	budget_free(s.b);
}

static void *waiter(void *arg)
{
	struct shared *s = arg;
	long rc = budget_take(s->b, 10, &s->stop);
	return (void *)rc;
}

static void test_limits_and_cancel(void)
{
	struct budget *b = budget_new(10);
	is_int(budget_take(b, 11, NULL), -E2BIG, "more than the limit: -E2BIG");
	ok(budget_try_take(b, 10), "the whole limit");
	ok(!budget_try_take(b, 1), "then nothing more");
	struct shared s = {b, 0, 0, 0};
	pthread_t th;
	pthread_create(&th, NULL, waiter, &s);
	budget_cancel(b);
	void *res;
	pthread_join(th, &res);
	is_int((long)res, -ECANCELED, "a waiter is woken by budget_cancel");
	budget_give(b, 10);
	budget_free(b);

	b = budget_new(10);
	ok(budget_try_take(b, 10), "full again");
	s.b = b;
	s.stop = 1;
	pthread_create(&th, NULL, waiter, &s);
	pthread_join(th, &res);
	is_int((long)res, -ECANCELED, "a waiter sees the stop flag");
	budget_free(b);
}

int main(void)
{
	test_never_over();
	test_limits_and_cancel();
	return tap_done();
}
