#include "common/compat.h"

/* Secret memory (see secret.h). Each secret_alloc block is a private
 * anonymous mapping of whole pages: a header (the mapping's length and a
 * magic number) at the start of the first page, the caller's bytes after it.
 * One mapping per block keeps the code small and lets secret_free wipe and
 * unmap exactly what it mapped; the blocks are few (credentials, one token
 * per scope) and long-lived, so the extra system calls do not matter. */
#include "common/secret.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/buf.h"

#define SECRET_MAGIC 0x5ec2e7b10c5ec2e7ull

struct secret_head {
	size_t map_len;
	uint64_t magic;
};

_Static_assert(sizeof(struct secret_head) == 16, "the caller's bytes stay 16-byte aligned");

static size_t page_size(void)
{
	long v = sysconf(_SC_PAGESIZE);
	return v > 0 ? (size_t)v : 4096;
}

static void secret_die(const char *what)
{
	fprintf(stderr, "dth: %s\n", what);
	abort();
}

void *secret_alloc(size_t n)
{
	size_t ps = page_size();
	if (n > SIZE_MAX - sizeof(struct secret_head) - ps)
		secret_die("secret memory: size overflow");
	size_t len = (n + sizeof(struct secret_head) + ps - 1) / ps * ps;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		secret_die("out of memory (secret pages)");
	/* Out of core dumps. A kernel without MADV_DONTDUMP (before 3.4) is
	 * no longer supported by anything dth runs on; nothing else to do. */
	(void)madvise(m, len, MADV_DONTDUMP);
	/* Never swapped, where the memlock limit allows; best effort. */
	(void)mlock(m, len);
	struct secret_head *h = m;
	h->map_len = len;
	h->magic = SECRET_MAGIC;
	return h + 1;
}

void secret_free(void *p)
{
	if (!p)
		return;
	struct secret_head *h = (struct secret_head *)p - 1;
	if ((uintptr_t)h % page_size() != 0 || h->magic != SECRET_MAGIC)
		secret_die("secret_free of memory that secret_alloc did not give");
	size_t len = h->map_len;
	explicit_bzero(h, len);
	(void)munlock(h, len);
	munmap(h, len);
}

char *secret_strndup(const char *s, size_t n)
{
	if (!s)
		return NULL;
	size_t l = strnlen(s, n);
	char *d = secret_alloc(l + 1);
	memcpy(d, s, l);
	d[l] = '\0';
	return d;
}

char *secret_strdup(const char *s)
{
	return s ? secret_strndup(s, strlen(s)) : NULL;
}

void secret_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void secret_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void secret_buf_release(struct buf *b)
{
	if (b->cap)
		explicit_bzero(b->data, b->cap);
	buf_release(b);
}

void secret_heap_free(void *p)
{
	if (!p)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

void *secret_heap_realloc(void *p, size_t n)
{
	if (!p)
		return malloc(n);
	if (n == 0)
		n = 1; /* keep realloc's "a valid block" answer; never free here */
	size_t old = malloc_usable_size(p);
	if (n <= old)
		return p; /* fits where it is: no copy is left anywhere */
	void *q = malloc(n);
	if (!q)
		return NULL; /* p stays valid, as with realloc */
	memcpy(q, p, old);
	secret_heap_free(p);
	return q;
}
