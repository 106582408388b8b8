/* Remote checks for the console's agent view: a round probes every remote
 * of a config (probe.h: one cheap call each, at most one retry) in the
 * background, RCHECK_PARALLEL at a time, and publishes each result as it
 * comes; the API reads the results, never waits for a probe.
 *
 * A result as JSON (rcheck_json):
 *   null                        never checked
 *   {"status": "checking", "started_at": T}
 *   {"status": "ok"|"refused"|"unreachable"|"error", "call", "seconds",
 *    "message" (unless ok), "checked_at": T}
 * (T: unix seconds). Messages are probe's, which never hold a secret.
 *
 * Threads: one round at a time, in a thread of its own (with up to
 * RCHECK_PARALLEL - 1 helpers); rcheck_stop cuts the probes in flight short
 * (http_engine_abort: within about a second) and joins it, so stopping the
 * agent never waits for a slow endpoint. */
#ifndef DTH_RCHECK_H
#define DTH_RCHECK_H

#include <jansson.h>

#include "common/util.h"

#define RCHECK_PARALLEL 4

struct config;
struct rcheck;

struct rcheck *rcheck_new(void);
/* Cut the round going on (if any) short and wait for its thread; no round
 * starts after. */
void rcheck_stop(struct rcheck *c);
/* Stop, then free. NULL is fine. */
void rcheck_free(struct rcheck *c);

/* Start a round over the remotes of cfg, marked "checking" at once (results
 * of remotes cfg no longer has are dropped). cfg is borrowed until the
 * round's thread calls done(ctx), after its last probe (also when the
 * round is cut short by rcheck_stop); done must not call rcheck_*. Returns 0
 * (done will be called), -EALREADY when a round goes on (nothing started),
 * -ECANCELED after rcheck_stop, or -EAGAIN when no thread
 * can be made (done not called either way). */
int rcheck_start(struct rcheck *c, const struct config *cfg, void (*done)(void *ctx),
		 void *ctx) WUR;
/* The check of the remote called name (see above). New reference. */
json_t *rcheck_json(struct rcheck *c, const char *name);

#endif
