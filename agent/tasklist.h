/* The task list as the API serves it (GET /api/v1/tasks): clients poll it,
 * often many at once, so its JSON text is kept and served again rather than
 * built for each request.
 *
 * Freshness: a change a client makes (a definition, an action, a reload, a
 * drop-in file: whatever bumps service_generation) shows in the next text at
 * once; the scheduler's and the runs' changes (states, live counters) within
 * TASKLIST_MAX_AGE, plus the time a rebuild takes. A text only too old is
 * served as it is while a thread of the list's own builds the next one, so a
 * request never waits for a rebuild that the clock alone asked for.
 * Thread-safe. */
#ifndef DTH_TASKLIST_H
#define DTH_TASKLIST_H

#include "common/buf.h"
#include "common/util.h"

struct service;
struct tasklist;

#define TASKLIST_MAX_AGE 0.25 /* seconds */

/* s is borrowed and must outlive the list. Starts the list's builder
 * thread; without it (it could not start) every rebuild is made by the
 * request that needs it. */
struct tasklist *tasklist_new(struct service *s);
void tasklist_free(struct tasklist *tl);

/* Append the text ({"tasks": [...]} and a newline) to out. -ENOMEM:
 * nothing appended. */
int tasklist_text(struct tasklist *tl, struct buf *out) WUR;

#endif
