/* The memory budget of a run: one byte count shared by every worker, so the
 * bodies held in memory stay within --memory-limit however large the parts
 * are and however many workers there are. A worker takes bytes before it
 * buffers a body and gives them back when it frees it; what does not fit its
 * share is streamed instead (agent/pipe.c). Thread-safe. */
#ifndef DTH_BUDGET_H
#define DTH_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

struct budget;

/* A budget of limit bytes (> 0). */
struct budget *budget_new(uint64_t limit);
void budget_free(struct budget *b);

/* Take n bytes (n <= the limit), waiting while others hold too much. Returns
 * 0, or -ECANCELED when *stop becomes non-zero or budget_cancel is called
 * while waiting (stop may be NULL), or -E2BIG when n exceeds the limit. */
int budget_take(struct budget *b, uint64_t n, volatile int *stop) WUR;
/* Take n bytes only when they are free now. */
bool budget_try_take(struct budget *b, uint64_t n) WUR;
void budget_give(struct budget *b, uint64_t n);
/* Wake every waiter with -ECANCELED (the run stops). */
void budget_cancel(struct budget *b);

uint64_t budget_limit(const struct budget *b);
/* The most ever held at once (for tests and --json). */
uint64_t budget_peak(struct budget *b);

#endif
