/* Fuzz target for agent/filter.h. The input is split into patterns and a key:
 * before the first NUL byte, one pattern per line (at most 8 rules, include or
 * exclude chosen from a hash of the input) and after it the key (any bytes);
 * without a NUL byte the first line is the pattern and the rest the key.
 *
 * Checks: filter_add accepts or rejects with -EINVAL and a message;
 * filter_match never crashes and agrees with
 *   - a slow reference matcher written from the header's description
 *     (backtracking with memoisation) for each rule alone,
 *   - the first-match-decides rule over all the rules,
 *   - the include/exclude mirror (one include rule matches exactly when the
 *     same exclude rule does not let the key through),
 *   - a pattern made of the key with every byte escaped, anchored, which must
 *     match the key and not the key with one more byte. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/filter.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_filter: check failed at line %d: %s\n", __LINE__,    \
				#c);                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_RULES   8
#define REF_MAX_PAT 160
#define REF_MAX_KEY 600

/* ---- reference matcher ---- */

struct ref {
	const unsigned char *pat;
	size_t plen;
	const unsigned char *key;
	size_t klen;
	signed char *memo; /* (plen + 1) x (klen + 1): -1 unknown */
};

/* Parse the class at pat[pi] ('[' included); returns the index after ']'
 * and fills in (or 0 when malformed). */
static size_t ref_class(const struct ref *r, size_t pi, bool in[256])
{
	size_t p = pi + 1;
	bool neg = false, first = true;
	memset(in, 0, 256 * sizeof(bool));
	if (p < r->plen && (r->pat[p] == '!' || r->pat[p] == '^')) {
		neg = true;
		p++;
	}
	for (;;) {
		if (p >= r->plen)
			return 0;
		if (r->pat[p] == ']' && !first)
			break;
		first = false;
		unsigned lo = r->pat[p++];
		if (lo == '\\') {
			if (p >= r->plen)
				return 0;
			lo = r->pat[p++];
		}
		unsigned hi = lo;
		if (p + 1 < r->plen && r->pat[p] == '-' && r->pat[p + 1] != ']') {
			p++;
			hi = r->pat[p++];
			if (hi == '\\') {
				if (p >= r->plen)
					return 0;
				hi = r->pat[p++];
			}
			if (hi < lo)
				return 0;
		}
		for (unsigned b = lo; b <= hi; b++)
			in[b] = true;
	}
	if (neg)
		for (unsigned b = 0; b < 256; b++)
			in[b] = !in[b];
	in['/'] = false;
	return p + 1;
}

/* Does pat[pi..] match key[ki..] entirely? */
static bool ref_at(struct ref *r, size_t pi, size_t ki)
{
	signed char *m = &r->memo[pi * (r->klen + 1) + ki];
	if (*m >= 0)
		return *m;
	bool res = false;
	if (pi == r->plen) {
		res = ki == r->klen;
	} else {
		unsigned char c = r->pat[pi];
		if (c == '*') {
			size_t run = 0;
			while (pi + run < r->plen && r->pat[pi + run] == '*')
				run++;
			for (size_t k = ki; k <= r->klen && !res; k++) {
				res = ref_at(r, pi + run, k);
				if (run == 1 && k < r->klen && r->key[k] == '/')
					break;
			}
		} else if (c == '?') {
			res = ki < r->klen && r->key[ki] != '/' && ref_at(r, pi + 1, ki + 1);
		} else if (c == '[') {
			bool in[256];
			size_t next = ref_class(r, pi, in);
			CHECK(next != 0); /* filter_add accepted it */
			res = ki < r->klen && in[r->key[ki]] && ref_at(r, next, ki + 1);
		} else if (c == '\\') {
			CHECK(pi + 1 < r->plen);
			res = ki < r->klen && r->key[ki] == r->pat[pi + 1] &&
			      ref_at(r, pi + 2, ki + 1);
		} else {
			res = ki < r->klen && r->key[ki] == c && ref_at(r, pi + 1, ki + 1);
		}
	}
	*m = res;
	return res;
}

/* The header's rules: leading '/' anchors; a trailing unescaped '/' means
 * "P/" followed by anything; otherwise the whole key or any suffix after a '/'. */
static bool ref_match(const char *pattern, const unsigned char *key, size_t klen)
{
	struct buf body = BUF_INIT;
	const char *p = pattern;
	bool anchored = *p == '/';
	if (anchored)
		p++;
	size_t n = strlen(p);
	buf_add(&body, p, n);
	if (n && p[n - 1] == '/') {
		size_t bs = 0;
		for (size_t i = n - 1; i > 0 && p[i - 1] == '\\'; i--)
			bs++;
		if (bs % 2 == 0)
			buf_adds(&body, "**"); /* "P/" means "P/" then "**" */
	}
	struct ref r = {
	    .pat = (const unsigned char *)body.data, .plen = body.len, .key = key, .klen = klen};
	r.memo = xmalloc((r.plen + 1) * (klen + 1));
	memset(r.memo, -1, (r.plen + 1) * (klen + 1));
	bool hit = false;
	for (size_t s = 0; s <= klen && !hit; s++) {
		if (s > 0 && (anchored || key[s - 1] != '/'))
			continue;
		hit = ref_at(&r, 0, s);
	}
	free(r.memo);
	buf_release(&body);
	return hit;
}

/* ---- the target ---- */

static bool one_rule(bool include, const char *pat, const unsigned char *key, size_t klen,
		     bool *hit)
{
	struct filter *f = filter_new();
	struct dth_err e;
	err_clear(&e);
	int rc = filter_add(f, include, pat, &e);
	if (rc) {
		CHECK(rc == -EINVAL && e.code == -EINVAL && e.message[0]);
		CHECK(filter_empty(f));
		CHECK(filter_match(f, (const char *)key, klen));
		filter_free(f);
		return false;
	}
	CHECK(!filter_empty(f));
	bool m = filter_match(f, (const char *)key, klen);
	CHECK(m == filter_match(f, (const char *)key, klen));
	*hit = include ? m : !m;
	filter_free(f);
	return true;
}

static void escaped_key(const unsigned char *key, size_t klen)
{
	if (klen == 0 || klen > 200 || memchr(key, '\0', klen) || key[klen - 1] == '/')
		return;
	struct buf pat = BUF_INIT;
	buf_addch(&pat, '/');
	for (size_t i = 0; i < klen; i++) {
		buf_addch(&pat, '\\');
		buf_addch(&pat, (char)key[i]);
	}
	struct filter *f = filter_new();
	struct dth_err e;
	err_clear(&e);
	CHECK(filter_add(f, true, pat.data, &e) == 0);
	CHECK(filter_match(f, (const char *)key, klen));
	unsigned char longer[202];
	memcpy(longer, key, klen);
	longer[klen] = 'x';
	CHECK(!filter_match(f, (const char *)longer, klen + 1));
	CHECK(!filter_match(f, (const char *)key, klen - 1));
	filter_free(f);
	buf_release(&pat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;

	const uint8_t *nul = memchr(data, '\0', size);
	size_t plen;
	const unsigned char *key;
	size_t klen;
	if (nul) {
		plen = (size_t)(nul - data);
		key = nul + 1;
		klen = size - plen - 1;
	} else {
		const uint8_t *nl = memchr(data, '\n', size);
		plen = nl ? (size_t)(nl - data) : size;
		key = nl ? nl + 1 : data + size;
		klen = nl ? size - plen - 1 : 0;
	}
	/* An exact-size copy of the key so ASan sees any read past it. */
	unsigned char *kcopy = malloc(klen ? klen : 1);
	if (!kcopy)
		return 0;
	if (klen)
		memcpy(kcopy, key, klen);

	char *pats = xstrndup((const char *)data, plen);
	char *rules[MAX_RULES];
	unsigned n = 0;
	for (char *p = pats; p && n < MAX_RULES;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		rules[n++] = p;
		p = nl ? nl + 1 : NULL;
	}

	struct filter *all = filter_new();
	bool any_include = false, decided = false, want = true;
	for (unsigned i = 0; i < n; i++) {
		bool include = (h >> i) & 1;
		bool hit = false, hit2 = false;
		if (!one_rule(include, rules[i], kcopy, klen, &hit))
			continue;
		/* the mirror rule agrees */
		CHECK(one_rule(!include, rules[i], kcopy, klen, &hit2));
		CHECK(hit == hit2);
		/* and so does the reference */
		if (strlen(rules[i]) <= REF_MAX_PAT && klen <= REF_MAX_KEY) {
			bool rh = ref_match(rules[i], kcopy, klen);
			if (rh != hit) {
				fprintf(
				    stderr,
				    "fuzz_filter: pattern '%s' key (%zu bytes) filter %d ref %d\n",
				    rules[i], klen, hit, rh);
				abort();
			}
		}
		struct dth_err e;
		err_clear(&e);
		CHECK(filter_add(all, include, rules[i], &e) == 0);
		any_include |= include;
		if (!decided && hit) {
			decided = true;
			want = include;
		}
	}
	if (!decided)
		want = !any_include;
	CHECK(filter_match(all, (const char *)kcopy, klen) == want);
	filter_free(all);
	free(pats);

	escaped_key(kcopy, klen);
	free(kcopy);
	return 0;
}
