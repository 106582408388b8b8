/* Include/exclude glob filters for object keys (`dth sync --include GLOB
 * --exclude GLOB`, repeatable; also a task's filters).
 *
 * A pattern is matched against the key relative to the sync prefix, byte by byte:
 *   *      any run of bytes except '/'
 *   **     any run of bytes including '/' (any run of two or more '*')
 *   ?      one byte except '/'
 *   [abc] [a-z] [!x] [^x]   one byte of (or not of) a class; never '/'
 *          (']' first in the class is literal; '\' escapes inside a class too)
 *   \c     the byte c literally
 * A pattern starting with '/' is anchored at the root and must match the whole
 * key; otherwise it matches the whole key or any suffix of it that starts right
 * after a '/' (so "*.log" matches "a.log" and "x/y/a.log"). A pattern ending in
 * '/' names a directory and matches every key under it ("tmp/" matches
 * "tmp/a" and "x/tmp/b/c", not "tmp").
 *
 * Rules are tried in the order added and the first that matches decides. A key
 * no rule matches is excluded when at least one include rule exists, and
 * included otherwise. An empty filter includes everything.
 *
 * Matching runs in O(key length * pattern length) time with no recursion and
 * no allocation for patterns under 256 tokens. A filter is immutable once
 * built, so filter_match() may be called from many threads at once. */
#ifndef DTH_FILTER_H
#define DTH_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/util.h"

struct filter;

/* A new empty filter (includes everything). Never NULL; free with filter_free(). */
struct filter *filter_new(void);
/* Frees f and its rules; NULL is fine. */
void filter_free(struct filter *f);

/* Append a rule. include=true for --include, false for --exclude. pattern is
 * copied. Returns 0, or -EINVAL (err filled) for an empty or malformed pattern:
 * an unclosed '[' ("[]" is one too, as a ']' right after '[' is
 * literal), a reversed range like "[z-a]", or a trailing lone '\'. */
int filter_add(struct filter *f, bool include, const char *pattern, struct dth_err *err) WUR;

/* True when the key (len bytes, any bytes allowed) is to be transferred. */
bool filter_match(const struct filter *f, const char *rel_key, size_t len);

/* True when no rule was added. */
bool filter_empty(const struct filter *f);

#endif
