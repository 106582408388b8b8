/* A pipe copies a byte range of a source object into one write request
 * (PutObject or UploadPart) without holding the range in memory: a thread of
 * its own streams the ranged GET (resumed after a broken transfer, If-Match
 * on the source ETag) into a ring of a fixed size, and the write request
 * reads its body from the ring on the caller's thread (pipe_read, an
 * http_source_fn). Either side failing stops the other. Memory: the ring. */
#ifndef DTH_PIPE_H
#define DTH_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/util.h"

struct s3_client;
struct pipe;

struct pipe_src {
	struct s3_client *c; /* borrowed, as the strings: valid until pipe_finish */
	const char *bucket;
	const char *key;
	uint64_t offset;
	uint64_t length;      /* > 0 */
	const char *if_match; /* the source ETag, or NULL */
	volatile int *stop;   /* set: both sides stop with -ECANCELED (may be NULL) */
};

/* Start the GET thread with a ring of ring_bytes. Each of md5[0] and md5[1]
 * (either may be NULL) is fed every byte the write request takes, in order.
 * NULL with err set when the thread cannot start. */
struct pipe *pipe_start(const struct pipe_src *src, size_t ring_bytes, EVP_MD_CTX *const md5[2],
			struct dth_err *err);
/* http_source_fn: the next bytes of the range for the write request. */
long pipe_read(void *pipe, void *dst, size_t room);
/* Stop the GET when the write ended with write_rc != 0, wait for its thread,
 * free the pipe. Returns the GET's own error (err set to it; the source
 * changed: -ESTALE), or 0: it gave every byte, or it was stopped because the
 * write gave up (whose error is the one that counts). */
int pipe_finish(struct pipe *p, int write_rc, struct dth_err *err);

#endif
