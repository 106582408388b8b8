/* The task definitions the agent serves from files: the [task NAME]
 * sections of the config file, and the drop-in directory (tasks.d/ next to
 * the config file): every *.conf file in it holds [task NAME] sections, or
 * bare keys for one task named after the file (NAME.conf).
 *
 * A definition that does not parse or check is kept as an entry with its
 * error (file and line), so the agent shows that task in the error state
 * rather than dropping it or refusing to start. */
#ifndef DTH_TASKSET_H
#define DTH_TASKSET_H

#include <stddef.h>

#include "agent/taskdef.h"
#include "common/err.h"

struct config;

struct taskset_entry {
	struct taskdef def; /* name and origin always set; the rest when error is NULL */
	char *error;	    /* NULL, or why the definition cannot be used (owned) */
	const char *field;  /* the setting at fault, or NULL (static) */
};

struct taskset {
	struct taskset_entry *v;
	size_t n;
};

void taskset_init(struct taskset *ts);
void taskset_release(struct taskset *ts);
/* Add the config's [task NAME] sections. */
void taskset_add_config(struct taskset *ts, const struct config *cfg);
/* Add the *.conf files of dir in name order (dir missing: nothing). -errno
 * only when dir exists but cannot be read (err says why). */
int taskset_add_dropin(struct taskset *ts, const char *dir, struct dth_err *err) WUR;
/* Add the definitions in text (one drop-in file; origin is its path). */
void taskset_add_text(struct taskset *ts, const char *text, size_t len, const char *origin,
		      int origin_kind);
/* The entry called name, or NULL. */
const struct taskset_entry *taskset_find(const struct taskset *ts, const char *name);
/* The drop-in directory of config file path: "DIR/tasks.d" (malloc'd), or
 * NULL when there is no config file. */
char *taskset_dropin_dir(const char *config_path);

#endif
