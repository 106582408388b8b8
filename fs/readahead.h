/* The read cache of the FUSE view: object bytes fetched by ranged GETs into
 * blocks, shared by every open handle of the same object version, with a
 * readahead window per open handle that starts at min_window and doubles on
 * each sequential read up to max_window, fetched as several ranges (at most
 * chunk bytes each) in parallel by the cache's own fetch threads. A read that
 * is not sequential fetches only the range it needs (rounded out to
 * RA_ALIGN) and resets the window.
 *
 * Memory: the bytes of all blocks (fetched, in flight and pinned) and the
 * buffers kept for reuse stay within cfg.memory, however many files are open.
 * Readahead is only issued while it fits (least recently used unpinned blocks
 * are evicted to make room); a demand read that does not fit waits for memory
 * to be released, and a single read larger than the whole budget is fetched
 * in budget-sized pieces. Once a quarter of the budget is held, a new
 * whole-chunk fetch reuses the buffer of a block already read through to its
 * end rather than new memory (see readahead.c), so one long sequential read
 * does not fill the whole budget.
 *
 * Consistency: every fetch carries the object's ETag (the caller sends it as
 * If-Match). When a fetch reports -ESTALE the object changed: the read that
 * needed it fails with -ESTALE, every block of that version is dropped, and
 * later reads of the same handle fail with -ESTALE too (never mixed bytes).
 * Other errors of a readahead fetch are not reported to a read that does not
 * need the block; a read that needs a failed block fetches it again once, then
 * fails with the fetch's error.
 *
 * Thread-safe: any number of threads may call ra_read at once (the FUSE
 * session is multi-threaded). */
#ifndef DTH_READAHEAD_H
#define DTH_READAHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/buf.h"
#include "common/util.h"

#define RA_ALIGN ((uint64_t)64 * 1024)

/* Fetch bytes [off, off+len) of object key at version etag, appending exactly
 * len bytes to out (which is empty, with room for len bytes reserved).
 * Returns 0, -ESTALE when the object no longer has that ETag, or another
 * negative errno. Called from the cache's fetch threads, several at once. */
typedef int (*ra_fetch_fn)(void *ctx, const char *key, const char *etag, uint64_t off, uint64_t len,
			   struct buf *out);

struct ra_config {
	uint64_t memory;     /* budget for all block bytes (--cache-memory) */
	uint64_t min_window; /* first readahead window (0: 1 MiB) */
	uint64_t max_window; /* largest readahead window (--readahead; 0: no readahead) */
	uint64_t chunk;	     /* most bytes per fetch (0: 4 MiB - 64 KiB, see readahead.c) */
	unsigned threads;    /* fetch threads (0: 8) */
	ra_fetch_fn fetch;
	void *ctx; /* passed to fetch; borrowed */
};

struct ra_cache;
/* Starts the fetch threads. Copies cfg. Free with ra_cache_free, which also
 * frees handles still open (a FUSE session can end without releasing every
 * file; no view may be held then). NULL with errno set if the threads cannot
 * start. */
struct ra_cache *ra_cache_new(const struct ra_config *cfg);
void ra_cache_free(struct ra_cache *c);

/* One per open handle. ident names the object (e.g. the inode number): handles
 * with the same ident and etag share blocks; a new etag for an ident drops the
 * old version's blocks once no handle uses them. key and etag are copied.
 * Never fails (aborts on out-of-memory). */
struct ra_file;
struct ra_file *ra_file_open(struct ra_cache *c, uint64_t ident, const char *key, const char *etag,
			     uint64_t size);
/* Waits for nothing: in-flight fetches finish in the background. */
void ra_file_close(struct ra_file *f);

/* A read's bytes: slices of pinned blocks, in order. */
#define RA_VIEW_MAX 8
struct ra_view {
	struct iovec iov[RA_VIEW_MAX];
	int n;			 /* slices used; 0 at end of file */
	size_t bytes;		 /* total of iov lengths */
	void *pins[RA_VIEW_MAX]; /* internal */
	int n_pins;		 /* internal */
	void *copy;		 /* internal: owned buffer when the range was copied */
	struct ra_cache *cache;	 /* internal */
};
/* Read up to len bytes at off (clipped to the object's size; off >= size
 * gives n = 0). On 0, view holds pinned slices that stay valid until
 * ra_view_release; the caller replies from them (fuse_reply_iov). A read
 * always returns every byte asked for up to the end of the object (a short
 * read means end of file to the kernel); when the range spans more than
 * RA_VIEW_MAX blocks, its bytes are copied into one buffer the view owns.
 * Returns 0 or a negative errno (-ESTALE: the object changed). */
int ra_read(struct ra_file *f, uint64_t off, size_t len, struct ra_view *view) WUR;
void ra_view_release(struct ra_view *view);

/* Counters for tests and the log: bytes fetched, fetches issued, bytes held
 * now, the most bytes ever held. */
struct ra_stats {
	uint64_t fetched_bytes;
	uint64_t fetches;
	uint64_t held_bytes;
	uint64_t peak_bytes;
};
void ra_cache_stats(struct ra_cache *c, struct ra_stats *out);

#endif
