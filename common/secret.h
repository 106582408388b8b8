/* Secret memory: where credentials, tokens and the Authorization values built
 * from them live, and how their temporary copies are destroyed.
 *
 * Long-lived secrets (access keys, session tokens, registry passwords, cached
 * bearer tokens) are kept in secret_alloc storage: each block sits on pages
 * of its own, mapped privately and marked MADV_DONTDUMP (a core dump leaves
 * them out: /proc/PID/smaps shows the "dd" VmFlag), locked in RAM when
 * RLIMIT_MEMLOCK allows (never written to swap), and wiped before they are
 * unmapped. The pages are inherited by a fork (dth mount daemonises), so no
 * MADV_DONTFORK or WIPEONFORK.
 *
 * Temporaries on the ordinary heap or stack that hold a secret (a header
 * line, a request or answer body with a token) are wiped with secret_wipe or
 * secret_buf_release before they go. A struct buf that is to hold a secret
 * must be grown to its final size before the secret is added (buf_grow), so
 * that no reallocation leaves a partial copy behind.
 *
 * secret_heap_free and secret_heap_realloc are drop-in free/realloc for
 * libraries that copy secrets into their own heap blocks (libcurl builds the
 * request head, jansson's lexer keeps the raw token text): they wipe the
 * whole block before giving it back. They work on any block from malloc. */
#ifndef DTH_SECRET_H
#define DTH_SECRET_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* n zeroed bytes of secret memory (16-byte aligned); aborts when out of
 * memory, like xmalloc. Free with secret_free. */
void *secret_alloc(size_t n);
/* Wipe and unmap a block from secret_alloc; NULL is fine. */
void secret_free(void *p);
/* Copies of s in secret memory (NULL for NULL); free with secret_free.
 * secret_strndup copies at most n bytes and always terminates. */
char *secret_strdup(const char *s);
char *secret_strndup(const char *s, size_t n);
/* Overwrite n bytes with zeros in a way the compiler keeps. */
void secret_wipe(void *p, size_t n);
/* Wipe a string (up to its NUL) and free() it; NULL is fine. */
void secret_wipe_free(char *s);
/* Wipe every byte b owns (its capacity, not only len), then release it. */
void secret_buf_release(struct buf *b);

/* free/realloc that wipe the block they give back (see above). */
void secret_heap_free(void *p);
void *secret_heap_realloc(void *p, size_t n);

#endif
