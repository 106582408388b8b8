/* Small helpers shared by the unit tests, header-only like tap.h: a
 * repeatable pseudo-random sequence, a scratch directory under $TMPDIR (or
 * /tmp) and its removal. Every function is static inline, so a test file
 * compiles in only what it calls. Not for use by several threads at once. */
#ifndef DTH_TESTUTIL_H
#define DTH_TESTUTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* The state of rnd(); the same seed gives the same sequence. */
static inline uint64_t *rnd_state(void)
{
	static uint64_t state = 0x9e3779b97f4a7c15ULL;
	return &state;
}

/* Start rnd()'s sequence again from seed (not 0: xorshift stays at 0). */
static inline void rnd_seed(uint64_t seed)
{
	*rnd_state() = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* The next number of a xorshift64 sequence (never 0). */
static inline uint64_t rnd(void)
{
	uint64_t *s = rnd_state();
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Make a new directory "$TMPDIR/NAME-XXXXXX" (TMPDIR unset: /tmp) and write
 * its path to out (cap bytes). 0, or -1 with errno set (-1 and ENAMETOOLONG
 * when the path does not fit). */
static inline int scratch_dir(char *out, size_t cap, const char *name)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(out, cap, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkdtemp(out) ? 0 : -1;
}

static inline int rm_rf_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* Remove path and everything under it (symlinks are not followed). 0, or
 * -1 when something could not be removed. */
static inline int rm_rf(const char *path)
{
	return nftw(path, rm_rf_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
