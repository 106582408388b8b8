/* The local backend of the object client: a directory tree read as if it
 * were a bucket, so a run copies local files with the same planner and
 * transfer code as S3 objects (s3_client_new_local in s3.h is the way in;
 * only s3.c calls this header).
 *
 * Keys are paths relative to the root, '/' between levels; only regular
 * files are objects (dirlist.h says what is skipped). A key is opened
 * beneath the root only (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a
 * key holding "..", or a symbolic link anywhere on its path, cannot make a
 * read leave the tree.
 *
 * The entity tag of a file is made from its identity, as web servers make
 * theirs: "fs:SECONDS.NANOSECONDS:INODE" of its modification time and inode
 * number. Listing the tree therefore reads no file; a file whose tag is
 * unchanged is not read again, and a read with if_match fails with -ESTALE
 * when the file is no longer that version. A file that changes while it is
 * read (its size, time or inode differ after the read) is -ESTALE too: a
 * file being written is never taken half-written as a version of itself.
 *
 * Errors: -ENOENT (no such file, a directory, a link, or a special file),
 * -EACCES, -EIO, -ESTALE as above; err names the file. */
#ifndef DTH_S3_LOCAL_H
#define DTH_S3_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/http.h"
#include "remote/s3.h"

struct s3_local;

/* Open root, which must be a directory. On success *out is owned
 * (s3_local_free). */
int s3_local_open(const char *root, struct s3_local **out, struct dth_err *err) WUR;
void s3_local_free(struct s3_local *l);
/* The root as given; valid while l lives. */
const char *s3_local_root(const struct s3_local *l);
/* The root is still a directory that can be read (HeadBucket). */
int s3_local_check(struct s3_local *l, struct dth_err *err) WUR;

/* HeadObject: size, tag, time and a Content-Type from the file name's
 * extension (none when unknown). out is initialised by the call. */
int s3_local_head(struct s3_local *l, const char *key, struct s3_object_head *out,
		  struct dth_err *err) WUR;
/* GetObject of [offset, offset+length) (length 0: to the end) appended to out,
 * as s3_get_object. */
int s3_local_get(struct s3_local *l, const char *key, uint64_t offset, uint64_t length,
		 const char *if_match, struct buf *out, struct s3_object_head *head_out,
		 struct dth_err *err) WUR;
/* GetObject of [offset, offset+length) (length > 0) into sink, as
 * s3_get_object_to. */
int s3_local_get_to(struct s3_local *l, const char *key, uint64_t offset, uint64_t length,
		    const char *if_match, http_sink_fn sink, void *sink_ctx,
		    struct dth_err *err) WUR;

/* A listing of the tree in key order, as s3_lister (no delimiter: every file
 * under the prefix). Strings in opts are copied. */
struct s3_local_lister;
struct s3_local_lister *s3_local_lister_new(struct s3_local *l, const struct s3_list_opts *opts);
/* 1 with *e set (valid until the next call), 0 at the end, or a negative
 * errno: a directory of the tree could not be read. */
int s3_local_lister_next(struct s3_local_lister *ll, struct s3_list_entry *e,
			 struct dth_err *err) WUR;
void s3_local_lister_free(struct s3_local_lister *ll);

/* The entity tag of a file of this modification time and inode. */
void s3_local_etag(int64_t mtime_sec, long mtime_nsec, uint64_t ino, char out[S3_ETAG_MAX]);

#endif
