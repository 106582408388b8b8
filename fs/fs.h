/* The FUSE view: libfuse3 low-level operations over the inode table
 * (fs/inode.h), directory listings (fs/dir.h), the read cache
 * (fs/readahead.h) and extended attributes (fs/xattr.h). Read-only: every
 * operation that would change something answers EROFS.
 *
 * Lifecycle (so that the process can fork into the background after the
 * mount and before any thread starts): fs_new with the options, create the
 * session with fs_lowlevel_ops() and the fs as userdata, mount, daemonise,
 * then fs_start with the source (this starts the read threads), run the
 * session loop, and fs_free after the loop ends. */
#ifndef DTH_FS_H
#define DTH_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "fs/readahead.h"
#include "remote/s3.h"

struct manifest;
struct fuse_lowlevel_ops;

struct fs_options {
	uint64_t dir_ttl_ms;	  /* listing, attribute and entry cache lifetime */
	size_t dir_cache_entries; /* most directory entries cached (0: 1,000,000) */
	uint64_t cache_memory;	  /* read cache budget */
	uint64_t readahead;	  /* largest readahead window */
	unsigned read_threads;	  /* parallel ranged GETs */
	uid_t uid;
	gid_t gid;
	mode_t file_mode; /* permission bits of files */
	mode_t dir_mode;  /* permission bits of directories */
};

/* Where objects and listings come from; everything borrowed, outliving the fs. */
struct fs_source {
	struct s3_client *s3; /* reads (and listings without a manifest) */
	const char *bucket;
	const char *prefix;    /* key prefix in the bucket of the mount's root ("" or "x/") */
	struct manifest *m;    /* NULL: listings from S3 */
	uint32_t task;	       /* the task's id in m */
	const char *mf_prefix; /* manifest key prefix of the mount's root ("" or "x/") */
	uint64_t known_bytes;  /* for statfs with a manifest: the task's bytes */
	uint64_t known_files;  /* and its object count */
};

struct fs;
/* Copies opts. Free with fs_free. */
struct fs *fs_new(const struct fs_options *opts);
/* The kernel's readahead for this mount: path is
 * "/sys/class/bdi/MAJ:MIN/read_ahead_kb", written with kb on the first open
 * (after the INIT exchange, which would lower an earlier value). Without it
 * the kernel's default (128 KiB) stays. path is copied. */
void fs_set_kernel_readahead(struct fs *fs, const char *path, unsigned kb);
/* Attach the source and start the read threads. 0 or a negative errno. */
int fs_start(struct fs *fs, const struct fs_source *src) WUR;
/* After the session loop has ended. */
void fs_free(struct fs *fs);
/* The operations table for fuse_session_new (userdata: the fs). */
const struct fuse_lowlevel_ops *fs_lowlevel_ops(size_t *size);

struct fs_stats {
	uint64_t listings;	 /* directory listings made (cache misses) */
	uint64_t lookups_remote; /* lookups answered by a request to the source */
	struct ra_stats ra;	 /* the read cache's counters */
	uint64_t inodes;	 /* inodes held now */
};
void fs_get_stats(struct fs *fs, struct fs_stats *out);

#endif
