/* Unit tests of agent/filter.c: glob syntax, anchoring, directory patterns,
 * rule order, malformed patterns, binary keys, pathological patterns, and a
 * randomised comparison with a simple recursive reference matcher. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/filter.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/tap.h"

static bool fm(const struct filter *f, const char *key)
{
	return filter_match(f, key, strlen(key));
}

/* A filter with the one exclude rule pat: match_one() is true when pat matches. */
static bool match_one(const char *pat, const char *key)
{
	struct filter *f = filter_new();
	struct dth_err e;
	err_clear(&e);
	if (filter_add(f, false, pat, &e) != 0) {
		printf("# unexpected: pattern '%s' rejected: %s\n", pat, e.message);
		filter_free(f);
		return false;
	}
	bool hit = !fm(f, key);
	filter_free(f);
	return hit;
}

struct mcase {
	const char *pat, *key;
	bool hit;
};

static void run_cases(const char *group, const struct mcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ok(match_one(c[i].pat, c[i].key) == c[i].hit, "%s: '%s' %s '%s'", group, c[i].pat,
		   c[i].hit ? "matches" : "does not match", c[i].key);
}

static void test_empty(void)
{
	struct filter *f = filter_new();
	ok(f != NULL, "filter_new");
	ok(filter_empty(f), "new filter is empty");
	ok(fm(f, "anything/at/all"), "empty filter includes everything");
	ok(filter_match(f, "", 0), "empty filter includes the empty key");
	struct dth_err e;
	is_int(filter_add(f, false, "x", &e), 0, "add a rule");
	ok(!filter_empty(f), "filter with a rule is not empty");
	filter_free(f);
	filter_free(NULL);
	ok(filter_empty(NULL), "NULL filter counts as empty");
}

static void test_star(void)
{
	static const struct mcase c[] = {
	    {"*.log", "a.log", true},
	    {"*.log", "x/y/a.log", true},
	    {"*.log", ".log", true},
	    {"*.log", "a.log.gz", false},
	    {"*.log", "a.logx", false},
	    {"*.log", "a.log/b", false},
	    {"*", "a", true},
	    {"*", "x/y/z", true},
	    {"*", "dir/", true},
	    {"a*c", "abc", true},
	    {"a*c", "ac", true},
	    {"a*c", "abbbc", true},
	    {"a*c", "ab/c", false},
	    {"a*c", "x/ab/c", false},
	    {"a*c", "x/abc", true},
	    {"a*b*c", "aXbYc", true},
	    {"a*b*c", "aXcYb", false},
	    {"/a*c", "abc", true},
	    {"/a*c", "ab/c", false},
	    {"/*.log", "a.log", true},
	    {"/*.log", "x/a.log", false},
	    {"**", "a", true},
	    {"**", "a/b/c", true},
	    {"/a**c", "ab/c", true},
	    {"/a***c", "ab/x/c", true},
	    {"/a/**", "a/b/c", true},
	    {"/a/**", "a/", true},
	    {"/a/**", "a", false},
	    {"/a/**", "b/a/c", false},
	    {"a/**", "b/a/c", true},
	    {"/a/**/b", "a/x/y/b", true},
	    {"/a/**/b", "a/x/b", true},
	    {"/a/**/b", "a/b", false},
	    {"**/b", "x/b", true},
	    {"**/b", "b", false},
	    {"**.jpg", "a/b/c.jpg", true},
	    {"/**.jpg", "a/b/c.jpg", true},
	    {"/**.jpg", "a/b/c.png", false},
	    {"x/*/z", "x/y/z", true},
	    {"x/*/z", "x/y/w/z", false},
	    {"x/*/z", "p/x/y/z", true},
	    {"x/*/z", "px/y/z", false},
	    {"x/**/z", "x/y/w/z", true},
	};
	run_cases("star", c, ARRAY_SIZE(c));
}

static void test_question(void)
{
	static const struct mcase c[] = {
	    {"a?c", "abc", true},    {"a?c", "ac", false},
	    {"a?c", "abbc", false},  {"a?c", "a/c", false},
	    {"/???", "abc", true},   {"/???", "ab", false},
	    {"/???", "abcd", false}, {"?", "x/y", true},
	    {"/?", "x/y", false},    {"file-??.txt", "d/file-07.txt", true},
	};
	run_cases("question", c, ARRAY_SIZE(c));
}

static void test_class(void)
{
	static const struct mcase c[] = {
	    {"[abc].txt", "a.txt", true},
	    {"[abc].txt", "c.txt", true},
	    {"[abc].txt", "d.txt", false},
	    {"[abc].txt", "ab.txt", false},
	    {"[a-c]x", "bx", true},
	    {"[a-c]x", "dx", false},
	    {"[a-cx-z]", "y", true},
	    {"[a-cx-z]", "m", false},
	    {"[0-9][0-9]", "42", true},
	    {"[0-9][0-9]", "4a", false},
	    {"[!x]", "y", true},
	    {"[!x]", "x", false},
	    {"[^x]", "y", true},
	    {"[^x]", "x", false},
	    {"[!a-z]", "Q", true},
	    {"[!a-z]", "q", false},
	    {"/a[!x]b", "a/b", false},
	    {"/a[/]b", "a/b", false},
	    {"[]]", "]", true},
	    {"[]]", "x", false},
	    {"[!]]", "x", true},
	    {"[!]]", "]", false},
	    {"[]a]", "a", true},
	    {"[a-]", "-", true},
	    {"[a-]", "a", true},
	    {"[a-]", "b", false},
	    {"[\\]]", "]", true},
	    {"[\\-a]", "-", true},
	    {"[\\-a]", "b", false},
	    {"[*?]", "*", true},
	    {"[*?]", "?", true},
	    {"[*?]", "a", false},
	    {"[[]", "[", true},
	};
	run_cases("class", c, ARRAY_SIZE(c));
}

static void test_escape(void)
{
	static const struct mcase c[] = {
	    {"\\*.txt", "*.txt", true}, {"\\*.txt", "a.txt", false}, {"a\\?", "a?", true},
	    {"a\\?", "ab", false},	{"\\[a]", "[a]", true},	     {"\\[a]", "a", false},
	    {"a\\\\b", "a\\b", true},	{"\\a\\b", "ab", true},	     {"/\\/x", "/x", true},
	    {"x\\/", "x/", true},	{"x\\/", "x/y", false},
	};
	run_cases("escape", c, ARRAY_SIZE(c));
}

static void test_dir(void)
{
	static const struct mcase c[] = {
	    {"tmp/", "tmp/a", true},
	    {"tmp/", "tmp/a/b/c", true},
	    {"tmp/", "x/tmp/b/c", true},
	    {"tmp/", "tmp/", true},
	    {"tmp/", "tmp", false},
	    {"tmp/", "xtmp/a", false},
	    {"tmp/", "tmpx/a", false},
	    {"tmp/", "a/tmp", false},
	    {"/tmp/", "tmp/a", true},
	    {"/tmp/", "x/tmp/a", false},
	    {"a/b/", "a/b/c", true},
	    {"a/b/", "x/a/b/c", true},
	    {"/a/b/", "x/a/b/c", false},
	    {"*.d/", "conf.d/x", true},
	    {"*.d/", "etc/conf.d/x/y", true},
	    {"*.d/", "conf.d", false},
	    {"cache-?/", "a/cache-1/f", true},
	    {"**/node_modules/", "a/b/node_modules/c", true},
	};
	run_cases("dir", c, ARRAY_SIZE(c));
}

static void test_suffix(void)
{
	/* unanchored patterns match the whole key or a suffix after a '/' */
	static const struct mcase c[] = {
	    {"b/c", "b/c", true},      {"b/c", "a/b/c", true},	     {"b/c", "ab/c", false},
	    {"b/c", "b/c/d", false},   {"c", "a/b/c", true},	     {"c", "a/bc", false},
	    {"a.txt", "a.txt", true},  {"a.txt", "x/a.txt", true},   {"a.txt", "xa.txt", false},
	    {"/a.txt", "a.txt", true}, {"/a.txt", "x/a.txt", false}, {"b*/c", "a/bx/c", true},
	    {"b*/c", "a/xb/c", false}, {"a/a/b", "a/a/a/a/b", true}, {"a/a/b", "a/a/a/a/c", false},
	};
	run_cases("suffix", c, ARRAY_SIZE(c));
}

static void test_rules(void)
{
	struct dth_err e;
	struct filter *f = filter_new();
	/* only excludes: anything unmatched is included */
	is_int(filter_add(f, false, "*.tmp", &e), 0, "add exclude *.tmp");
	is_int(filter_add(f, false, "cache/", &e), 0, "add exclude cache/");
	ok(!fm(f, "a.tmp"), "excludes only: a.tmp excluded");
	ok(!fm(f, "cache/x.jpg"), "excludes only: cache/x.jpg excluded");
	ok(fm(f, "x.jpg"), "excludes only: x.jpg included");
	ok(fm(f, "cachex/y"), "excludes only: cachex/y included");
	filter_free(f);

	/* only includes: anything unmatched is excluded */
	f = filter_new();
	is_int(filter_add(f, true, "*.jpg", &e), 0, "add include *.jpg");
	is_int(filter_add(f, true, "/docs/", &e), 0, "add include /docs/");
	ok(fm(f, "a/b.jpg"), "includes only: a/b.jpg included");
	ok(fm(f, "docs/readme.md"), "includes only: docs/readme.md included");
	ok(!fm(f, "x/docs/readme.md"), "includes only: x/docs/readme.md excluded");
	ok(!fm(f, "b.png"), "includes only: b.png excluded");
	filter_free(f);

	/* first match wins: include then exclude everything */
	f = filter_new();
	is_int(filter_add(f, true, "*.jpg", &e), 0, "add include *.jpg");
	is_int(filter_add(f, false, "**", &e), 0, "add exclude **");
	ok(fm(f, "p/a.jpg"), "include-then-exclude: p/a.jpg included");
	ok(!fm(f, "p/a.png"), "include-then-exclude: p/a.png excluded");
	filter_free(f);

	/* first match wins: exclude a directory, then include a type */
	f = filter_new();
	is_int(filter_add(f, false, "secret/", &e), 0, "add exclude secret/");
	is_int(filter_add(f, true, "*.txt", &e), 0, "add include *.txt");
	ok(!fm(f, "secret/a.txt"), "exclude-then-include: secret/a.txt excluded");
	ok(fm(f, "pub/b.txt"), "exclude-then-include: pub/b.txt included");
	ok(!fm(f, "pub/c.bin"), "exclude-then-include: c.bin excluded (includes exist)");
	filter_free(f);

	/* the same rules in the other order give the other answer */
	f = filter_new();
	is_int(filter_add(f, true, "*.txt", &e), 0, "add include *.txt");
	is_int(filter_add(f, false, "secret/", &e), 0, "add exclude secret/");
	ok(fm(f, "secret/a.txt"), "include-then-exclude: secret/a.txt included");
	ok(!fm(f, "secret/a.bin"), "include-then-exclude: secret/a.bin excluded");
	filter_free(f);

	/* an exclude that matches nothing with an include present */
	f = filter_new();
	is_int(filter_add(f, false, "*.bak", &e), 0, "add exclude *.bak");
	is_int(filter_add(f, true, "/2024/**", &e), 0, "add include /2024/**");
	ok(fm(f, "2024/01/a"), "2024/01/a included");
	ok(!fm(f, "2024/01/a.bak"), "2024/01/a.bak excluded");
	ok(!fm(f, "2023/01/a"), "2023/01/a excluded");
	filter_free(f);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
	    "[abc", "[", "[]", "[!]", "a[b", "abc\\", "[z-a]", "[a-\\", "[\\", "", "/", "//",
	};
	struct filter *f = filter_new();
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct dth_err e;
		err_clear(&e);
		int rc = filter_add(f, i % 2 == 0, bad[i], &e);
		is_int(rc, -EINVAL, "malformed pattern '%s' rejected", bad[i]);
		is_int(e.code, -EINVAL, "malformed pattern '%s' sets the error code", bad[i]);
		ok(e.message[0] != '\0', "malformed pattern '%s' has a message: %s", bad[i],
		   e.message);
	}
	ok(filter_empty(f), "rejected patterns add no rule");
	ok(fm(f, "anything"), "filter still includes everything");
	struct dth_err e;
	err_clear(&e);
	(void)!filter_add(f, true, "[abc", &e);
	ok(strstr(e.message, "unclosed") != NULL, "message says unclosed: %s", e.message);
	ok(strstr(e.message, "[abc") != NULL, "message names the pattern");
	is_int(filter_add(f, true, "x", NULL), 0, "NULL err is fine on success");
	is_int(filter_add(f, true, "[x", NULL), -EINVAL, "NULL err is fine on failure");
	is_int(filter_add(f, true, NULL, NULL), -EINVAL, "NULL pattern rejected");
	filter_free(f);
}

static void test_bytes(void)
{
	struct filter *f = filter_new();
	struct dth_err e;
	is_int(filter_add(f, false, "/a?b", &e), 0, "add /a?b");
	ok(!filter_match(f, "a\0b", 3), "'?' matches a NUL byte inside the key");
	ok(filter_match(f, "a\0bc", 4), "length is honoured past a NUL");
	ok(filter_match(f, "a\0b", 2), "length shorter than the string");
	filter_free(f);

	static const struct mcase c[] = {
	    {"caf?", "caf\xc3\xa9", false},
	    {"caf??", "caf\xc3\xa9", true},
	    {"caf*", "caf\xc3\xa9", true},
	    {"*\xc3\xa9", "d/caf\xc3\xa9", true},
	    {"[\x80-\xff][\x80-\xff]", "x/\xc3\xa9", true},
	    {"[\x80-\xff]", "x/e", false},
	    {"[!a]", "\xff", true},
	    {"\xe6\x97\xa5\xe6\x9c\xac/", "\xe6\x97\xa5\xe6\x9c\xac/x", true},
	};
	run_cases("bytes", c, ARRAY_SIZE(c));
}

static void test_pathological(void)
{
	size_t n = 10000;
	char *s = xmalloc(n + 2);
	memset(s, 'a', n);
	s[n] = '\0';
	ok(!match_one("*a*a*a*a*a*a*b", s), "'*a*a*a*a*a*a*b' vs 10000 'a' does not match");
	ok(match_one("*a*a*a*a*a*a*a", s), "'*a*a*a*a*a*a*a' vs 10000 'a' matches");
	ok(!match_one("**a**a**a**a**a**a**b", s), "'**a**a**a**a**a**a**b' vs 10000 'a'");
	ok(!match_one("/*a*a*a*a*a*a*b", s), "anchored pathological pattern");
	s[n] = 'b';
	s[n + 1] = '\0';
	ok(match_one("*a*a*a*a*a*a*b", s), "'*a*a*a*a*a*a*b' vs 10000 'a' + 'b' matches");
	/* many slashes: the unanchored restart happens at every one */
	for (size_t i = 1; i < n; i += 2)
		s[i] = '/';
	s[n - 1] = '\0'; /* "a/a/.../a/a" */
	ok(!match_one("*a*a*a*b", s), "unanchored pattern vs 'a/a/a/...'");
	ok(!match_one("a/a/a/a/a/b", s), "literal path pattern vs 'a/a/a/...'");
	ok(match_one("a/a/a/a/a", s), "literal path suffix vs 'a/a/a/...'");
	ok(!match_one("**a**a**a**b", s), "double star pattern vs 'a/a/a/...'");
	free(s);

	/* a long key (1 MiB) */
	size_t big = 1 << 20;
	char *k = xmalloc(big + 1);
	memset(k, 'z', big);
	k[big] = '\0';
	ok(match_one("**", k), "'**' matches a 1 MiB key");
	ok(!match_one("**x", k), "'**x' does not match a 1 MiB key of 'z'");
	ok(match_one("z*z", k), "'z*z' matches a 1 MiB key of 'z'");
	free(k);

	/* a pattern of more than 256 tokens (heap state arrays) */
	char pat[401], key[401];
	memset(pat, '?', 400);
	pat[400] = '\0';
	memset(key, 'q', 400);
	key[400] = '\0';
	ok(match_one(pat, key), "400 '?' match 400 bytes");
	key[399] = '\0';
	ok(!match_one(pat, key), "400 '?' do not match 399 bytes");
}

/* ---- randomised comparison with a recursive reference ---- */

/* Reference semantics over the subset a b / ? * **, written as directly as
 * possible (exponential, only for tiny inputs). */
static bool ref(const char *p, const char *s)
{
	if (!*p)
		return !*s;
	if (p[0] == '*' && p[1] == '*') {
		while (*p == '*')
			p++;
		for (const char *t = s;; t++) {
			if (ref(p, t))
				return true;
			if (!*t)
				return false;
		}
	}
	if (*p == '*') {
		for (const char *t = s;; t++) {
			if (ref(p + 1, t))
				return true;
			if (!*t || *t == '/')
				return false;
		}
	}
	if (*p == '?')
		return *s && *s != '/' && ref(p + 1, s + 1);
	return *s == *p && ref(p + 1, s + 1);
}

static bool ref_rule(const char *pat, const char *key)
{
	char body[64];
	bool anchored = pat[0] == '/';
	str_copy_fit(body, anchored ? pat + 1 : pat, sizeof(body) - 3);
	size_t n = strlen(body);
	if (n && body[n - 1] == '/')
		memcpy(body + n, "**", 3);
	if (ref(body, key))
		return true;
	if (anchored)
		return false;
	for (const char *k = key; *k; k++)
		if (*k == '/' && ref(body, k + 1))
			return true;
	return false;
}

static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

static void test_random(void)
{
	static const char *const ptoks[] = {"a", "b", "/", "?", "*", "**", "a", "b"};
	static const char keych[] = "ab/";
	int mismatches = 0, hits = 0;
	const int rounds = 20000;
	for (int r = 0; r < rounds; r++) {
		char pat[64] = "", key[16];
		size_t pl = 0;
		if (rnd(3) == 0)
			pat[pl++] = '/';
		unsigned nt = 1 + rnd(6);
		for (unsigned i = 0; i < nt; i++) {
			const char *t = ptoks[rnd(ARRAY_SIZE(ptoks))];
			size_t tl = strlen(t);
			memcpy(pat + pl, t, tl);
			pl += tl;
		}
		pat[pl] = '\0';
		unsigned kl = rnd(10);
		for (unsigned i = 0; i < kl; i++)
			key[i] = keych[rnd(3)];
		key[kl] = '\0';
		struct filter *f = filter_new();
		struct dth_err e;
		if (filter_add(f, false, pat, &e) != 0) {
			filter_free(f);
			continue; /* "/" and "//" only */
		}
		bool got = !fm(f, key), want = ref_rule(pat, key);
		filter_free(f);
		hits += want;
		if (got != want) {
			if (mismatches++ < 10)
				printf("# mismatch: pattern '%s' key '%s': got %d want %d\n", pat,
				       key, got, want);
		}
	}
	is_int(mismatches, 0, "%d random pattern/key pairs agree with the reference", rounds);
	ok(hits > rounds / 20, "random test exercised matches too (%d)", hits);
}

int main(void)
{
	test_empty();
	test_star();
	test_question();
	test_class();
	test_escape();
	test_dir();
	test_suffix();
	test_rules();
	test_malformed();
	test_bytes();
	test_pathological();
	test_random();
	return tap_done();
}
