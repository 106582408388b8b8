/* Fair sharing of worker slots between tasks: the agent runs many tasks at
 * once, each with its own pool of transfer workers, but at most `slots`
 * transfers go on together, and a slot that frees goes to the tasks that wait
 * in turn (round robin), whatever their sizes: a task with ten objects waits
 * for one slot at most, however many jobs a task of millions has queued.
 *
 * Each task holds a client; a worker takes a slot before it takes a job and
 * gives it back after. All calls are thread-safe. */
#ifndef DTH_FAIRSHARE_H
#define DTH_FAIRSHARE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

struct fairshare;
struct fairshare_client;

/* slots >= 1. Free with fairshare_free once every client is gone. */
struct fairshare *fairshare_new(unsigned slots);
void fairshare_free(struct fairshare *f);
/* A client for one task. */
struct fairshare_client *fairshare_join(struct fairshare *f);
/* Leave; the client must hold no slot and have no waiter. */
void fairshare_leave(struct fairshare_client *c);

/* Wait for a slot (in turn with the other clients' waiters). */
void fairshare_acquire(struct fairshare_client *c);
void fairshare_release(struct fairshare_client *c);

/* Counters: slots held by c, and slots in use in all. */
unsigned fairshare_held(const struct fairshare_client *c);
unsigned fairshare_in_use(const struct fairshare *f);

/* The most slots given to other clients while one of c's threads waited
 * (in turn: at most the number of other clients with waiters). */
unsigned fairshare_max_wait(const struct fairshare_client *c);

#endif
