/* A directory tree listed as an S3 listing would be: regular files only, as
 * keys relative to the root ("a/b.txt", '/' between levels) in byte order
 * of the whole key, so the planner can merge-join it with the manifest like
 * any source listing (the local backend of the object client, s3_local.h,
 * lists with it).
 *
 * Order: a directory's entries are sorted with each subdirectory's name
 * compared as "name/", so the keys under it come exactly where they sort
 * ("a-b" < "a/x" < "a0"). Memory: the sorted entries of the directories on
 * the path being walked, never the whole tree.
 *
 * Symbolic links and special files (devices, sockets, FIFOs) are skipped and
 * counted, never followed (a link out of the tree, or a loop, cannot make the
 * walk read elsewhere). A directory that cannot be read is an error, not an
 * empty directory: a caller that deletes what the source lacks must not
 * take a subtree it could not see for a deleted one. A subdirectory removed
 * between the reading of its parent and its own is taken as gone (its files
 * are). */
#ifndef DTH_DIRLIST_H
#define DTH_DIRLIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct dirlist;

struct dirlist_entry {
	const char *key; /* relative; valid until the next call */
	size_t key_len;
	uint64_t size;
	int64_t mtime_ns; /* modification time, nanoseconds since the epoch */
	uint64_t ino, dev;
};

/* Open root (a directory). On success *out is owned (dirlist_free). */
int dirlist_open(const char *root, struct dirlist **out, struct dth_err *err) WUR;
/* 1 with *e filled, 0 at the end, or a negative errno with err naming the
 * directory (the walk cannot go on). */
int dirlist_next(struct dirlist *d, struct dirlist_entry *e, struct dth_err *err) WUR;
/* Symbolic links and special files skipped so far. */
uint64_t dirlist_skipped(const struct dirlist *d);
void dirlist_free(struct dirlist *d);

#endif
