/* Change events as senders describe them, turned into the keys a task must
 * look at again:
 *  - S3 event notifications ({"Records": [...]}, AWS's format, as S3 sends
 *    it to SQS or SNS and as MinIO and Ceph radosgw POST it to a webhook), also
 *    inside an SNS envelope ({"Type": "Notification", "Message": "..."});
 *    s3:TestEvent messages hold no record;
 *  - docker-registry notifications ({"events": [...]}): pushes of a tagged
 *    manifest.
 * Parsing is pure (no I/O) and takes any bytes: a body that is not one of
 * these is refused with a reason, never half-read. An event names a key to
 * look at, not a state to apply: the run reads the key's current state at the
 * source, so events that come late, twice or out of order change nothing. */
#ifndef DTH_EVPARSE_H
#define DTH_EVPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

/* Bodies larger than this are refused (a record is about 1 KiB). */
#define EVPARSE_BODY_MAX (4u << 20)

enum evparse_kind { EV_CREATED = 1, EV_REMOVED = 2, EV_PUSHED = 3 };

struct evparse_item {
	enum evparse_kind kind;
	const char *bucket;    /* S3: the bucket; registry: the repository */
	const char *key;       /* S3: the decoded object key; registry: the tag */
	size_t key_len;	       /* a key may hold any byte once decoded */
	const char *sequencer; /* S3: "" when absent */
	const char *host;      /* registry: the request's Host ("" when absent) */
	/* S3 created: the object's size and ETag as the record gives them
	 * (size -1 and etag "" when absent or malformed; the ETag without
	 * quotes) */
	int64_t size;
	const char *etag;
};

/* Calls fn for each S3 record of body (len bytes). Records of other events
 * (s3:ReducedRedundancyLostObject, ObjectRestore, ...) are skipped and
 * counted in *ignored (may be NULL). fn's item is valid for the call; its
 * non-zero return stops and is returned. Returns the number of records given
 * (>= 0; 0 for a test event), or -EINVAL / -EFBIG with err naming what is
 * wrong. */
int evparse_s3(const char *body, size_t len, int (*fn)(void *ctx, const struct evparse_item *it),
	       void *ctx, unsigned *ignored, struct dth_err *err) WUR;

/* The same for a docker-registry notification envelope: one item per push of
 * a tagged manifest (untagged pushes, pulls and deletes are counted in
 * *ignored). */
int evparse_registry(const char *body, size_t len,
		     int (*fn)(void *ctx, const struct evparse_item *it), void *ctx,
		     unsigned *ignored, struct dth_err *err) WUR;

#endif
