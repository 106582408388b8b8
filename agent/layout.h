/* Part layouts of multipart copies: dth's own (a part size doubled until the
 * object fits in 10,000 parts), and the source's, read from the server with
 * HEAD ?partNumber=N and checked before it is used, so that a lying server
 * (parts of 0 bytes, parts larger than S3 allows, sizes that do not add up
 * to the object) can neither make a ranged GET read the wrong bytes nor make
 * a buffer huge. Repeating the source's layout makes the destination's ETag
 * equal the source's, which proves the copy end to end. */
#ifndef DTH_LAYOUT_H
#define DTH_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct s3_client;

#define LAYOUT_MAX_PARTS     10000
#define LAYOUT_MIN_PART_SIZE (5ULL << 20) /* every part but the last */
#define LAYOUT_MAX_PART_SIZE (5ULL << 30)
#define LAYOUT_MAX_GUESSES   8

struct layout {
	uint32_t n;	    /* parts */
	uint64_t *size;	    /* size of each part (owned) */
	uint64_t part_size; /* the size of all parts but the last; 0 when irregular */
	/* The server ignored partNumber (Ceph 16): sizes that split the object
	 * into n parts, likeliest first; size[] holds the first. */
	uint64_t guess[LAYOUT_MAX_GUESSES];
	unsigned n_guess;
};
void layout_release(struct layout *l);
/* Lay l out as n parts of part_size bytes (the last one shorter). */
void layout_uniform(struct layout *l, uint64_t size, uint64_t part_size, uint32_t n);

/* dth's own layout of an object of size bytes: the part size (part_size,
 * raised to 5 MiB, doubled until the object fits in 10,000 parts) and count. */
void layout_plan(uint64_t size, uint64_t part_size, uint64_t *out_part_size, uint32_t *out_count);
/* dth's own layout into l. */
void layout_own(struct layout *l, uint64_t size, uint64_t part_size);

/* Part sizes that split an object of size bytes into exactly nparts parts,
 * the likeliest first (round MiB sizes that tools use by default, then other
 * whole MiB, then whole MB). For sources that do not answer HEAD
 * ?partNumber=1. Returns how many were written to out (at most max). */
unsigned layout_guess_part_sizes(uint64_t size, unsigned nparts, uint64_t *out, unsigned max);

/* Whether sizes (n parts) describe an object of size bytes that an S3
 * destination can take in those parts: 0; -EBADMSG when no S3 object can have
 * them (no parts or over 10,000, an empty part, one over 5 GiB, sizes that do
 * not add up to the object); -EAGAIN when they are possible but cannot be
 * repeated (a part under 5 MiB before the last). *why (may be NULL) says what
 * is wrong. */
int layout_check(const uint64_t *sizes, uint32_t n, uint64_t size, const char **why) WUR;

/* The source's layout of key (size bytes, nparts from its "md5-N" ETag).
 * 0 with l filled; -EAGAIN when it cannot be repeated (parts too small, or
 * sizes no guess can find), so the caller copies in its own parts; -EBADMSG
 * when the server's answers are impossible (a lying or broken server: the
 * object is not copied); another negative errno when a HEAD failed. err says
 * why in every case (without the key). */
int layout_of_source(struct s3_client *src, const char *bucket, const char *key, uint64_t size,
		     unsigned nparts, struct layout *l, struct dth_err *err) WUR;

#endif
