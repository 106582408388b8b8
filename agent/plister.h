/* Parallel listing: the source's keys split into ranges at given keys, each
 * range listed by its own thread (ListObjectsV2 with start-after and an end
 * bound), handed out in one ascending stream. Each range buffers at most
 * max_buffered entries, so memory stays bounded; with no split keys it is a
 * plain streamed listing. */
#ifndef DTH_PLISTER_H
#define DTH_PLISTER_H

#include <stddef.h>

#include "common/err.h"
#include "common/util.h"
#include "remote/s3.h"

struct plister;

/* splits: n ascending full keys (borrowed only during the call); range i holds
 * the keys in (splits[i-1], splits[i]]. prefix may be NULL. */
struct plister *plister_new(struct s3_client *c, const char *bucket, const char *prefix,
			    const char *const *splits, unsigned n, size_t max_buffered);
/* As s3_lister_next: 1 with *e (valid until the next call), 0 at the end, or
 * a negative errno. */
int plister_next(struct plister *p, const struct s3_list_entry **e, struct dth_err *err) WUR;
void plister_free(struct plister *p);

#endif
