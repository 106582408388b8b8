/* Directory listings of the FUSE view: the entries of one directory, read
 * from S3 (ListObjectsV2 with delimiter '/') or from a task's LMDB manifest
 * (no requests), held as an immutable, reference-counted snapshot sorted by
 * name, and kept in a cache for a time to live.
 *
 * Names: the part of a key after the directory's key, up to the next '/'.
 * Keys ending in '/' (folder markers) and common prefixes are directories; a
 * name that is both a file and a directory shows as the directory; names that
 * cannot be file names ("", ".", "..", containing NUL, longer than 255 bytes)
 * are skipped and logged once per listing. */
#ifndef DTH_DIR_H
#define DTH_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct s3_client;
struct manifest;

/* Where listings come from. Everything is borrowed and must outlive the
 * source and every cache that uses it. */
struct dir_source {
	struct s3_client *s3; /* S3: the client (used when m is NULL) */
	const char *bucket;
	const char *prefix;    /* the mount's prefix in the bucket ("" or ends in '/') */
	struct manifest *m;    /* manifest: listings from the task's object records */
	uint32_t task;	       /* the task's id in m */
	const char *mf_prefix; /* manifest keys' prefix that is the mount's root ("" or "x/") */
	unsigned page_size;    /* ListObjectsV2 max-keys (0: 1000) */
};

struct dir_entry {
	const char *name; /* not NUL-terminated inside the snapshot; use name_len */
	uint32_t name_len;
	bool is_dir;
	uint8_t status; /* manifest listings: enum obj_status; else 0 */
	uint64_t size;
	int64_t mtime;
	const char *etag; /* NUL-terminated; "" for directories */
};

struct dir_listing;
/* List the directory whose relative key is dir_key ("" for the root, else
 * ending in '/'). *out gets a snapshot with one reference (dir_listing_unref).
 * A directory with no entries is an empty listing (0), not an error: callers
 * decide whether it exists. */
int dir_list(const struct dir_source *src, const char *dir_key, struct dir_listing **out,
	     struct dth_err *err) WUR;
void dir_listing_ref(struct dir_listing *l);
void dir_listing_unref(struct dir_listing *l);
size_t dir_listing_count(const struct dir_listing *l);
/* Borrowed; valid while the caller holds a reference. */
const struct dir_entry *dir_listing_at(const struct dir_listing *l, size_t i);
/* The entry called name, or NULL. */
const struct dir_entry *dir_listing_find(const struct dir_listing *l, const char *name,
					 size_t name_len);
/* now_mono_ms() at which the listing was read. */
uint64_t dir_listing_time(const struct dir_listing *l);

/* The cache: listings by directory key, fresh for ttl_ms, at most
 * max_entries entries held over all cached listings (least recently used
 * listings dropped first; a listing in use by an open directory stays alive
 * through its reference). ttl_ms 0 caches nothing. Thread-safe; concurrent
 * requests for the same uncached directory list it once. */
struct dir_cache;
struct dir_cache *dir_cache_new(const struct dir_source *src, uint64_t ttl_ms, size_t max_entries);
void dir_cache_free(struct dir_cache *c);
/* A fresh listing of dir_key (from the cache or listed now); one reference
 * for the caller. */
int dir_cache_get(struct dir_cache *c, const char *dir_key, struct dir_listing **out,
		  struct dth_err *err) WUR;
/* A cached listing of dir_key if it is fresh, else NULL (no listing is made). */
struct dir_listing *dir_cache_peek(struct dir_cache *c, const char *dir_key);
/* Listings made so far (cache misses). */
uint64_t dir_cache_listings(struct dir_cache *c);

#endif
