/* Failpoints: named places where a test can make dth die by SIGKILL, to
 * prove that a crash at any of them loses nothing (tests/integration/
 * test_crash.py).
 *
 *   DTH_FAILPOINT=NAME[:N]    die at the N-th hit of NAME (default 1)
 *
 * The variable is read once, by failpoint_init() at the start of main, before
 * any thread exists. When it is unset a hit costs one load and one branch
 * that is predicted not taken; nothing else of this module runs. When set,
 * the hits of the armed point are counted (atomically: workers hit points
 * concurrently) and the N-th one writes "dth: failpoint NAME: hit N, killing
 * the process" to stderr and sends SIGKILL to the process itself, so nothing
 * after it runs: no atexit handler, no flush, no cleanup, as with kill -9.
 *
 * A hit is placed right after the step it names has happened at the remote
 * (or in the manifest) and before dth has recorded that it happened: the
 * window a crash must not lose. */
#ifndef DTH_FAILPOINT_H
#define DTH_FAILPOINT_H

#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

enum failpoint {
	FAILPOINT_NONE = 0,
	/* dth sync (agent/sync.c, agent/spool.c, agent/transfer.c) */
	FAILPOINT_KEY_PLANNED,	    /* "key-planned": a listed key was planned (queued,
				       skipped, adopted or spooled for deletion) */
	FAILPOINT_LIST_PAGE,	    /* "list-page": after each 1,000 source keys planned,
				       and when a range's listing is complete */
	FAILPOINT_DELETE_SPOOLED,   /* "delete-spooled": a planned delete was written to the
				       delete spool (none sent yet) */
	FAILPOINT_OBJECT_PUT,	    /* "object-put": a whole-object PUT (or CopyObject) was
				       answered, the object not yet recorded */
	FAILPOINT_UPLOAD_CREATED,   /* "upload-created": CreateMultipartUpload answered,
				       its upload id not yet recorded */
	FAILPOINT_PART_UPLOADED,    /* "part-uploaded": an UploadPart (or UploadPartCopy)
				       answered, the part not yet recorded */
	FAILPOINT_UPLOAD_COMPLETED, /* "upload-completed": CompleteMultipartUpload
				       answered, the object not yet recorded */
	FAILPOINT_DELETE_ANSWERED,  /* "delete-answered": a DeleteObject answered, the
				       deletion not yet recorded */
	/* the manifest writer (manifest/writer.c), for sync and image sync */
	FAILPOINT_COMMIT_BEFORE, /* "commit-before": a batch applied in its LMDB write
				    transaction, just before the commit */
	FAILPOINT_COMMIT_AFTER,	 /* "commit-after": just after a batch's commit */
	/* dth image sync (agent/image.c) */
	FAILPOINT_BLOB_UPLOADED, /* "blob-uploaded": a blob upload finished (201) or a
				    cross-repository mount was answered, the blob not
				    yet recorded as present */
	FAILPOINT_MANIFEST_PUT,	 /* "manifest-put": a manifest PUT answered, the tag (or
				    index) not yet recorded */
	FAILPOINT__COUNT
};

/* The point armed by DTH_FAILPOINT (FAILPOINT_NONE when unset). Written once
 * by failpoint_init, read only afterwards. */
extern int failpoint_armed;

/* Read DTH_FAILPOINT. 0, or -EINVAL with err set when it is set but is not
 * NAME or NAME:N with a known NAME and 1 <= N < 2^63 (a misspelt name must
 * fail loudly, not run a test that never crashes). Call once, at the start
 * of main, before any thread is started. */
int failpoint_init(struct dth_err *err) WUR;

/* Parse a DTH_FAILPOINT value into *fp and *n. 0 or -EINVAL (err set). */
int failpoint_parse(const char *spec, enum failpoint *fp, uint64_t *n, struct dth_err *err) WUR;

/* The name of a point ("part-uploaded"), or NULL for none or out of range. */
const char *failpoint_name(enum failpoint fp);

/* The slow path of failpoint_hit: counts the hit, kills on the N-th. */
void failpoint_reached(enum failpoint fp);

/* One line at each point. */
static inline void failpoint_hit(enum failpoint fp)
{
	if (__builtin_expect(failpoint_armed == (int)fp, 0))
		failpoint_reached(fp);
}

#endif
