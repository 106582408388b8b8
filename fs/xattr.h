/* Extended attributes of the FUSE view, kept as one blob per inode: a
 * sequence of (u32 name length, name, u32 value length, value), lengths in
 * host order. Names: user.s3.etag, user.s3.content_type, user.s3.meta.<name>
 * (from a HEAD of the object) and, for a manifest-backed mount,
 * user.dth.status and user.dth.dest_etag (from the object's record). */
#ifndef DTH_XATTR_H
#define DTH_XATTR_H

#include <stddef.h>

#include "common/buf.h"
#include "common/util.h"

struct s3_object_head;
struct obj_record;

/* Append the attributes of an object to blob: etag (may be NULL or ""), the
 * HEAD's content type and user metadata (h may be NULL), the manifest record's
 * status and destination ETag (rec may be NULL). */
void xattr_build(struct buf *blob, const char *etag, const struct s3_object_head *h,
		 const struct obj_record *rec);
/* Append one attribute (value of vlen bytes). */
void xattr_add(struct buf *blob, const char *name, const void *value, size_t vlen);
/* Append the NUL-terminated names (the listxattr format) to out. -EPROTO if
 * the blob is malformed. */
int xattr_names(const void *blob, size_t len, struct buf *out) WUR;
/* The value of name: *value and *vlen point into blob. -ENODATA if absent. */
int xattr_find(const void *blob, size_t len, const char *name, const void **value,
	       size_t *vlen) WUR;

#endif
