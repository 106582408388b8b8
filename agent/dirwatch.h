/* The inotify watcher of a task whose source is a local directory and whose
 * events = inotify: one thread that watches every directory of the tree and
 * keeps the keys of the files that changed in the task's event journal
 * (manifest_events_add), as the SQS poller keeps those of its messages.
 *
 * What counts as a change: a file closed after writing (IN_CLOSE_WRITE), so
 * a file being written is taken once, when it is complete, however long the
 * writing takes; a file moved in, out or within the tree (both its names);
 * a file deleted; its times or mode changed (IN_ATTRIB: the run compares the
 * file's tag, and copies only when its time or inode moved). A directory
 * made or moved into the tree is watched at once, and the files already in
 * it are taken as changed (they may have been written before its watch
 * began). A file made without being written (a hard link) is left to the
 * rescan.
 *
 * Debounce: keys are gathered in a set and kept together once no event has
 * come for DIRWATCH_QUIET_MS (or DIRWATCH_HOLD_MS after the first), so a
 * burst of writes to one file or of many files becomes one batch and one run.
 *
 * Ask for a full rescan instead (the journal's rescan flag) when watching
 * begins (what changed before, while nothing watched, is found so), the kernel
 * dropped events (IN_Q_OVERFLOW), a directory was moved out of the tree or
 * within it (the keys under its old name are not known here), a watch could
 * not be added (fs.inotify.max_user_watches), the set grew past
 * DIRWATCH_PENDING_MAX keys, or a key is longer than the journal takes.
 *
 * Memory: one path per watched directory, and the pending set (bounded). */
#ifndef DTH_DIRWATCH_H
#define DTH_DIRWATCH_H

#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct manifest;
struct intake_counts;
struct dirwatch;

#define DIRWATCH_QUIET_MS    100
#define DIRWATCH_HOLD_MS     1000
#define DIRWATCH_PENDING_MAX 100000

struct dirwatch_opts {
	const char *name;   /* the task's, for messages (copied) */
	const char *root;   /* the source directory, absolute (copied) */
	struct manifest *m; /* borrowed; must outlive the watcher */
	uint32_t task;	    /* the task's manifest id */
	/* Called from the watcher's thread (ctx borrowed) after keys were kept
	 * (c->accepted of them) or a rescan was asked for (c->accepted 0);
	 * c->seen holds the changes seen since the last call (source
	 * "inotify"; kinds put, delete, attrib, rescan), emptied after it. */
	void (*kick)(void *ctx, const struct intake_counts *c, unsigned refused);
	void *ctx;
};

/* Watch the tree and start the thread. NULL with err set when inotify cannot
 * be used or root cannot be watched. */
struct dirwatch *dirwatch_start(const struct dirwatch_opts *o, struct dth_err *err);
/* Ask it to stop (returns at once), then free it (waits for the thread,
 * which keeps the keys it has gathered before it ends). */
void dirwatch_signal(struct dirwatch *w);
void dirwatch_free(struct dirwatch *w);
/* Directories watched now. */
uint64_t dirwatch_watches(const struct dirwatch *w);

#endif
