/* The inode table of the FUSE view: inode number <-> (parent, name), the
 * object key each inode stands for and its attributes, with the kernel's
 * lookup counts. An inode lives from the lookup (or readdirplus) that creates
 * it until the kernel forgets it, so the table holds only what the kernel
 * holds. Inode 1 is the root (key ""). Thread-safe (one mutex).
 *
 * Keys are relative to the mount's prefix: a directory's key ends in '/'
 * ("a/b/"), a file's does not ("a/b/c"); the root's is "". */
#ifndef DTH_INODE_H
#define DTH_INODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/util.h"

#define INODE_ROOT 1

struct inode_attr {
	bool is_dir;
	uint64_t size;
	int64_t mtime;	  /* Unix seconds */
	const char *etag; /* without quotes; NULL or "" for none (directories) */
};

/* A copy of an inode's state (inode_table_get). */
struct inode_info {
	uint64_t ino;
	uint64_t parent;
	struct buf key; /* owned by the caller's struct: inode_info_release */
	bool is_dir;
	uint64_t size;
	int64_t mtime;
	char etag[128];
	uint64_t attr_until_ms; /* now_mono_ms() until which the attributes are fresh */
};
void inode_info_init(struct inode_info *i);
void inode_info_release(struct inode_info *i);

struct inode_table;
/* The root's mtime is root_mtime. Free with inode_table_free. */
struct inode_table *inode_table_new(int64_t root_mtime);
void inode_table_free(struct inode_table *t);

/* The child called name (name_len bytes, no '/') of directory parent, with
 * attributes a fresh until fresh_until_ms: found or created, its attributes
 * updated, and its lookup count raised by one (as a FUSE lookup reply does).
 * A name whose type changed (file <-> directory) gets a new inode; the old
 * one stays until forgotten. Returns the inode number, or 0 when parent is
 * unknown. */
uint64_t inode_table_link(struct inode_table *t, uint64_t parent, const char *name, size_t name_len,
			  const struct inode_attr *a, uint64_t fresh_until_ms);
/* Copy inode ino into out (initialised by the caller). -ENOENT if unknown. */
int inode_table_get(struct inode_table *t, uint64_t ino, struct inode_info *out) WUR;
/* Update the attributes of ino (after a HEAD). -ENOENT if unknown. */
int inode_table_set_attr(struct inode_table *t, uint64_t ino, const struct inode_attr *a,
			 uint64_t fresh_until_ms) WUR;
/* Lower the lookup count by n; at zero the inode is removed (the root never). */
void inode_table_forget(struct inode_table *t, uint64_t ino, uint64_t n);

/* The ETag the kernel's page cache of ino holds pages of: open() passes the
 * ETag it opens; returns true (keep the cache) when it equals the last one. */
bool inode_table_cache_check(struct inode_table *t, uint64_t ino, const char *etag);

/* Per-inode extended attributes blob, cached: get copies it into out and
 * returns 1 when one is stored and fresh, 0 otherwise. set replaces it. */
int inode_table_xattr_get(struct inode_table *t, uint64_t ino, struct buf *out);
void inode_table_xattr_set(struct inode_table *t, uint64_t ino, const void *blob, size_t len,
			   uint64_t fresh_until_ms);

/* Inodes held now (the root included). */
size_t inode_table_count(struct inode_table *t);

#endif
