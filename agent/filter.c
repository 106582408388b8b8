/* Include/exclude glob filters. See agent/filter.h.
 *
 * Each pattern is compiled into a list of tokens and matched by simulating the
 * corresponding NFA over the key: state i means "tokens [0, i) matched". A star
 * token loops on itself and may also be skipped (matching nothing). Unanchored
 * patterns re-enter state 0 after every '/', which is how "matches any suffix
 * starting after a '/'" is expressed without trying each suffix separately.
 * Cost: O(key length * tokens), never exponential. */
#include "common/compat.h"

#include "agent/filter.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum tok_kind {
	TOK_LIT,   /* one given byte */
	TOK_ANY,   /* '?': one byte except '/' */
	TOK_CLASS, /* '[...]': one byte in the set ('/' never is) */
	TOK_STAR,  /* '*': any run without '/' */
	TOK_DSTAR, /* '**': any run */
};

struct tok {
	enum tok_kind kind;
	unsigned char c;
	uint32_t set[8]; /* TOK_CLASS: bit b of set[b / 32] */
};

struct rule {
	bool include;
	bool anchored;
	size_t n;
	struct tok *t;
};

struct filter {
	struct rule *rules;
	size_t n, cap;
	bool any_include;
};

#define STACK_STATES 256

struct filter *filter_new(void)
{
	return xcalloc(1, sizeof(struct filter));
}

void filter_free(struct filter *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		free(f->rules[i].t);
	free(f->rules);
	free(f);
}

bool filter_empty(const struct filter *f)
{
	return !f || f->n == 0;
}

static void set_bit(uint32_t *set, unsigned char b)
{
	set[b / 32] |= 1u << (b % 32);
}

static bool has_bit(const uint32_t *set, unsigned char b)
{
	return (set[b / 32] >> (b % 32)) & 1u;
}

static struct tok *push(struct tok **t, size_t *n, size_t *cap, enum tok_kind kind)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*t = xrealloc(*t, *cap * sizeof(**t));
	}
	struct tok *k = &(*t)[(*n)++];
	memset(k, 0, sizeof(*k));
	k->kind = kind;
	return k;
}

/* Parse the class starting just after '[' at *pp; on success *pp points past
 * the closing ']'. */
static int parse_class(const char **pp, const char *end, struct tok *k, const char **why)
{
	const char *p = *pp;
	bool negate = false;
	if (p < end && (*p == '!' || *p == '^')) {
		negate = true;
		p++;
	}
	bool first = true;
	for (;;) {
		if (p >= end) {
			*why = "unclosed '['";
			return -EINVAL;
		}
		if (*p == ']' && !first)
			break;
		first = false;
		unsigned char lo = (unsigned char)*p++;
		if (lo == '\\') {
			if (p >= end) {
				*why = "trailing '\\'";
				return -EINVAL;
			}
			lo = (unsigned char)*p++;
		}
		unsigned char hi = lo;
		if (p + 1 < end && *p == '-' && p[1] != ']') {
			p++;
			hi = (unsigned char)*p++;
			if (hi == '\\') {
				if (p >= end) {
					*why = "trailing '\\'";
					return -EINVAL;
				}
				hi = (unsigned char)*p++;
			}
			if (hi < lo) {
				*why = "reversed range in '[...]'";
				return -EINVAL;
			}
		}
		for (unsigned b = lo; b <= hi; b++)
			set_bit(k->set, (unsigned char)b);
	}
	if (negate)
		for (size_t i = 0; i < ARRAY_SIZE(k->set); i++)
			k->set[i] = ~k->set[i];
	k->set['/' / 32] &= ~(1u << ('/' % 32));
	*pp = p + 1;
	return 0;
}

static int compile(const char *pat, struct rule *r, const char **why)
{
	size_t plen = strlen(pat);
	const char *p = pat, *end = pat + plen;
	bool dir = false;
	r->anchored = false;
	if (p < end && *p == '/') {
		r->anchored = true;
		p++;
	}
	/* A trailing '/' (not an escaped one) names a directory: "P/" becomes P, "/", "**". */
	if (end > p && end[-1] == '/') {
		size_t bs = 0;
		for (const char *q = end - 1; q > p && q[-1] == '\\'; q--)
			bs++;
		if (bs % 2 == 0) {
			dir = true;
			end--;
		}
	}
	if (p == end) {
		*why = "empty pattern";
		return -EINVAL;
	}
	struct tok *t = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	while (p < end) {
		unsigned char c = (unsigned char)*p++;
		if (c == '*') {
			bool dbl = false;
			while (p < end && *p == '*') {
				dbl = true;
				p++;
			}
			push(&t, &n, &cap, dbl ? TOK_DSTAR : TOK_STAR);
		} else if (c == '?') {
			push(&t, &n, &cap, TOK_ANY);
		} else if (c == '[') {
			struct tok *k = push(&t, &n, &cap, TOK_CLASS);
			rc = parse_class(&p, end, k, why);
			if (rc < 0)
				goto fail;
		} else if (c == '\\') {
			if (p >= end) {
				*why = "trailing '\\'";
				rc = -EINVAL;
				goto fail;
			}
			push(&t, &n, &cap, TOK_LIT)->c = (unsigned char)*p++;
		} else {
			push(&t, &n, &cap, TOK_LIT)->c = c;
		}
	}
	if (dir) {
		push(&t, &n, &cap, TOK_LIT)->c = '/';
		push(&t, &n, &cap, TOK_DSTAR);
	}
	r->t = t;
	r->n = n;
	return 0;
fail:
	free(t);
	return rc;
}

int filter_add(struct filter *f, bool include, const char *pattern, struct dth_err *err)
{
	if (!f || !pattern)
		return err_set(err, -EINVAL, "invalid filter pattern");
	struct rule r = {.include = include};
	const char *why = "invalid pattern";
	int rc = compile(pattern, &r, &why);
	if (rc < 0)
		return err_set(err, rc, "invalid %s pattern '%s': %s",
			       include ? "include" : "exclude", pattern, why);
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 4;
		f->rules = xrealloc(f->rules, f->cap * sizeof(*f->rules));
	}
	f->rules[f->n++] = r;
	if (include)
		f->any_include = true;
	return 0;
}

/* Add state i and, through skippable stars, the states after it. */
static void enter(const struct rule *r, unsigned char *st, size_t i)
{
	while (!st[i]) {
		st[i] = 1;
		if (i < r->n && (r->t[i].kind == TOK_STAR || r->t[i].kind == TOK_DSTAR))
			i++;
		else
			break;
	}
}

static bool rule_match(const struct rule *r, const unsigned char *key, size_t len,
		       unsigned char *cur, unsigned char *next)
{
	size_t m = r->n;
	memset(cur, 0, m + 1);
	enter(r, cur, 0);
	for (size_t pos = 0; pos < len; pos++) {
		unsigned char c = key[pos];
		bool live = false;
		memset(next, 0, m + 1);
		for (size_t i = 0; i < m; i++) {
			if (!cur[i])
				continue;
			const struct tok *k = &r->t[i];
			switch (k->kind) {
			case TOK_LIT:
				if (c == k->c)
					enter(r, next, i + 1);
				break;
			case TOK_ANY:
				if (c != '/')
					enter(r, next, i + 1);
				break;
			case TOK_CLASS:
				if (has_bit(k->set, c))
					enter(r, next, i + 1);
				break;
			case TOK_STAR:
				if (c != '/')
					enter(r, next, i);
				break;
			case TOK_DSTAR:
				enter(r, next, i);
				break;
			}
		}
		if (!r->anchored && c == '/')
			enter(r, next, 0);
		for (size_t i = 0; i <= m && !live; i++)
			live = next[i];
		unsigned char *tmp = cur;
		cur = next;
		next = tmp;
		if (!live) {
			/* nothing can match until the next '/' restarts an unanchored rule */
			if (r->anchored || pos + 1 >= len)
				return false;
			const unsigned char *slash = memchr(key + pos + 1, '/', len - pos - 1);
			if (!slash)
				return false;
			pos = (size_t)(slash - key) - 1; /* the loop goes on at the '/' */
		}
	}
	return cur[m] != 0;
}

bool filter_match(const struct filter *f, const char *rel_key, size_t len)
{
	if (filter_empty(f))
		return true;
	const unsigned char *key = (const unsigned char *)rel_key;
	unsigned char stack[2 * STACK_STATES];
	for (size_t i = 0; i < f->n; i++) {
		const struct rule *r = &f->rules[i];
		unsigned char *states = stack;
		if (r->n + 1 > STACK_STATES)
			states = xmalloc(2 * (r->n + 1));
		bool hit = rule_match(r, key, len, states, states + r->n + 1);
		if (states != stack)
			free(states);
		if (hit)
			return r->include;
	}
	return !f->any_include;
}
