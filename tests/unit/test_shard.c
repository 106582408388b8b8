/* Unit tests of agent/shard.c: spec parsing (I/N, auto from the schedulers'
 * variables, errors), the even cut (identical across calls, strictly
 * increasing, no NUL), exact coverage of the key space for odd keys (empty,
 * equal to a cut, 0xff bytes, control bytes), plan files (round trip of any
 * key bytes, malformed files refused). */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/keysample.h"
#include "agent/shard.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/tap.h"

/* ---- a fake environment ---- */

static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
	for (size_t i = 0; fake_env && fake_env[i]; i += 2)
		if (!strcmp(fake_env[i], name))
			return fake_env[i + 1];
	return NULL;
}

static int parse_env(const char *text, const char *const *env, struct shard_spec *sp,
		     struct dth_err *e)
{
	fake_env = env;
	err_clear(e);
	return shard_spec_parse(text, fake_getenv, sp, e);
}

static void test_spec(void)
{
	struct shard_spec sp;
	struct dth_err e;
	is_int(parse_env("1/4", NULL, &sp, &e), 0, "1/4 parses");
	ok(sp.index == 1 && sp.count == 4, "1/4: index 1 count 4");
	is_int(parse_env("0/1", NULL, &sp, &e), 0, "0/1 parses");
	is_int(parse_env("4095/4096", NULL, &sp, &e), 0, "4095/4096 parses");
	static const char *const bad[] = {"4/4",   "1/0",    "1/4097", "-1/4",	"1/",
					  "/4",	   "a/4",    "1/4x",   "",	"1",
					  "auto/", "auto/0", "1/4/",   "01x/2", "auto/4097"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ok(parse_env(bad[i], NULL, &sp, &e) == -EINVAL && e.message[0], "'%s' refused: %s",
		   bad[i], e.message);
		ok(shard_spec_check(bad[i], &e) == -EINVAL, "'%s' refused by the check", bad[i]);
	}
	ok(shard_spec_check("auto", &e) == 0 && shard_spec_check("auto/8", &e) == 0,
	   "auto and auto/8 pass the check");

	static const char *const slurm[] = {"SLURM_ARRAY_TASK_ID",
					    "7",
					    "SLURM_ARRAY_TASK_MIN",
					    "5",
					    "SLURM_ARRAY_TASK_COUNT",
					    "4",
					    NULL};
	is_int(parse_env("auto", slurm, &sp, &e), 0, "auto from Slurm");
	ok(sp.index == 2 && sp.count == 4, "Slurm: id 7 - min 5 = 2 of 4");
	ok(parse_env("auto/8", slurm, &sp, &e) == -EINVAL && strstr(e.message, "4 shards"),
	   "auto/8 against Slurm's count 4 refused: %s", e.message);
	static const char *const k8s[] = {"JOB_COMPLETION_INDEX", "3", NULL};
	ok(parse_env("auto", k8s, &sp, &e) == -EINVAL && strstr(e.message, "auto/N"),
	   "auto with a Kubernetes index and no count refused: %s", e.message);
	is_int(parse_env("auto/5", k8s, &sp, &e), 0, "auto/5 from JOB_COMPLETION_INDEX");
	ok(sp.index == 3 && sp.count == 5, "Kubernetes: 3 of 5");
	ok(parse_env("auto/3", k8s, &sp, &e) == -EINVAL, "index 3 of 3 refused: %s", e.message);
	static const char *const batch[] = {"AWS_BATCH_JOB_ARRAY_INDEX", "1", "DTH_SHARD_COUNT",
					    "2", NULL};
	is_int(parse_env("auto", batch, &sp, &e), 0, "auto from AWS Batch and DTH_SHARD_COUNT");
	ok(sp.index == 1 && sp.count == 2, "AWS Batch: 1 of 2");
	ok(parse_env("auto", NULL, &sp, &e) == -EINVAL && strstr(e.message, "SLURM_ARRAY_TASK_ID"),
	   "auto without any variable refused: %s", e.message);
	static const char *const junk[] = {"JOB_COMPLETION_INDEX", "x1", NULL};
	ok(parse_env("auto/2", junk, &sp, &e) == -EINVAL, "a non-number index refused: %s",
	   e.message);
}

/* Every key is in exactly one shard's (lo, hi], and shard_plan_find agrees. */
static int check_key(const struct shard_plan *p, const char *key, size_t len)
{
	unsigned n = shard_plan_count(p), holders = 0, which = n;
	for (unsigned i = 0; i < n; i++) {
		const char *lo, *hi;
		shard_plan_range(p, i, &lo, &hi);
		struct buf k = BUF_INIT;
		buf_add(&k, key, len);
		bool above_lo = true, below_hi = true;
		if (lo) {
			size_t ll = strlen(lo), m = len < ll ? len : ll;
			int c = m ? memcmp(key, lo, m) : 0;
			above_lo = c > 0 || (c == 0 && len > ll);
		}
		if (hi) {
			size_t hl = strlen(hi), m = len < hl ? len : hl;
			int c = m ? memcmp(key, hi, m) : 0;
			below_hi = c < 0 || (c == 0 && len <= hl);
		}
		buf_release(&k);
		if (above_lo && below_hi) {
			holders++;
			which = i;
		}
	}
	if (holders != 1)
		return -1;
	return shard_plan_find(p, key, len) == which ? 0 : -2;
}

static void test_even(void)
{
	unsigned counts[] = {1, 2, 3, 4, 7, 16, 100, 1000, 4096};
	for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
		unsigned n = counts[c];
		struct shard_plan *a = shard_plan_even(n), *b = shard_plan_even(n);
		struct buf fa = BUF_INIT, fb = BUF_INIT;
		shard_plan_format(a, &fa);
		shard_plan_format(b, &fb);
		ok(fa.len == fb.len && !memcmp(fa.data, fb.data, fa.len),
		   "even cut of %u: identical across calls", n);
		int bad = 0;
		const char *prev = NULL;
		for (unsigned i = 1; i < n; i++) {
			const char *lo, *hi;
			shard_plan_range(a, i, &lo, &hi);
			if (!lo || strlen(lo) != 2 || (prev && strcmp(prev, lo) >= 0))
				bad++;
			prev = lo;
		}
		is_int(bad, 0, "even cut of %u: %u two-byte cuts, strictly increasing", n, n - 1);
		buf_release(&fa);
		buf_release(&fb);
		shard_plan_free(a);
		shard_plan_free(b);
	}
	ok(shard_plan_even(0) == NULL && shard_plan_even(4097) == NULL, "0 and 4097 refused");
}

static void test_cover(void)
{
	unsigned counts[] = {1, 2, 4, 95, 4096};
	int bad = 0, tried = 0;
	for (size_t c = 0; c < ARRAY_SIZE(counts); c++) {
		struct shard_plan *p = shard_plan_even(counts[c]);
		/* every cut key, and its neighbours */
		for (unsigned i = 1; i < counts[c]; i++) {
			const char *lo, *hi;
			shard_plan_range(p, i, &lo, &hi);
			char k[8];
			size_t l = strlen(lo);
			memcpy(k, lo, l);
			bad += check_key(p, k, l) != 0;
			k[l] = '\xff';
			bad += check_key(p, k, l + 1) != 0;
			k[l] = '\x01';
			bad += check_key(p, k, l + 1) != 0;
			bad += check_key(p, k, 1) != 0;
			tried += 4;
		}
		static const char *const odd[] = {"",  "\xff", "\xff\xff\xff", "\x01", " ",
						  "~", "\x7f", "a/b/c",	       "0",    "zzzz"};
		for (size_t i = 0; i < ARRAY_SIZE(odd); i++, tried++)
			bad += check_key(p, odd[i], strlen(odd[i])) != 0;
		/* random keys */
		unsigned seed = 12345;
		for (int r = 0; r < 2000; r++, tried++) {
			char k[6];
			size_t l = (size_t)(rand_r(&seed) % 6);
			for (size_t j = 0; j < l; j++)
				k[j] = (char)(rand_r(&seed) % 255 + 1);
			bad += check_key(p, k, l) != 0;
		}
		unsigned first = shard_plan_find(p, "", 0);
		ok(first == 0, "the empty key is in shard 0 of %u", counts[c]);
		ok(shard_plan_find(p, "\xff\xff", 2) == counts[c] - 1,
		   "0xff 0xff is in the last of %u", counts[c]);
		shard_plan_free(p);
	}
	is_int(bad, 0, "%d keys each in exactly one shard's range", tried);
}

static void test_plan_file(void)
{
	const char *cuts[] = {"a", "a\x01", "b c%", "\xc3\xa9t\xc3\xa9", "\xff\xfe"};
	size_t lens[] = {1, 2, 4, 5, 2};
	struct dth_err e;
	err_clear(&e);
	struct shard_plan *p = shard_plan_from_cuts(6, cuts, lens, &e);
	ok(p != NULL, "a plan of 6 from 5 odd cut keys");
	char path[] = "/tmp/dth-test-shard-XXXXXX";
	int fd = mkstemp(path);
	close(fd);
	is_int(shard_plan_save(p, path, &e), 0, "saved");
	struct shard_plan *q = shard_plan_load(path, &e);
	ok(q != NULL, "loaded back: %s", q ? "" : e.message);
	char ia[32], ib[32];
	shard_plan_id(p, ia);
	shard_plan_id(q, ib);
	is_str(ia, ib, "the same plan id after a round trip");
	ok(!strncmp(ia, "plan:", 5), "a plan id names the hash: %s", ia);
	int same = q && shard_plan_count(q) == 6;
	for (unsigned i = 1; same && i < 6; i++) {
		const char *lo, *hi;
		shard_plan_range(q, i, &lo, &hi);
		same = strlen(lo) == lens[i - 1] && !memcmp(lo, cuts[i - 1], lens[i - 1]);
	}
	ok(same, "every cut key's bytes survive the file");
	struct buf text = BUF_INIT;
	shard_plan_format(p, &text);
	ok(strstr(text.data, "dth-shard-plan 1 6\n") == text.data, "header names version and N");
	ok(strstr(text.data, "\nb%20c%25\n") != NULL, "space and %% are percent-encoded");
	buf_release(&text);
	shard_plan_free(q);

	static const char *const bad[] = {
	    "",
	    "dth-shard-plan 1 3\na\n",
	    "dth-shard-plan 1 2\na\nb\n",
	    "dth-shard-plan 2 2\na\n",
	    "dth-shard-plan 1 3\nb\na\n",
	    "dth-shard-plan 1 3\na\na\n",
	    "dth-shard-plan 1 2\n%zz\n",
	    "dth-shard-plan 1 2\na b\n",
	    "dth-shard-plan 1 2\n%00\n",
	    "dth-shard-plan 1 2\n\n",
	    "dth-shard-plan 1 0\n",
	    "dth-shard-plan 1 5000\n",
	    "shard plan\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		FILE *f = fopen(path, "w");
		fputs(bad[i], f);
		fclose(f);
		err_clear(&e);
		struct shard_plan *r = shard_plan_load(path, &e);
		ok(r == NULL && e.message[0], "bad plan %zu refused: %s", i, e.message);
		shard_plan_free(r);
	}
	FILE *f = fopen(path, "w");
	fputs("dth-shard-plan 1 1\n", f);
	fclose(f);
	struct shard_plan *one = shard_plan_load(path, &e);
	ok(one && shard_plan_count(one) == 1, "a plan of one shard has no cut key");
	shard_plan_free(one);
	unlink(path);

	struct shard_bind b;
	is_int(shard_bind_open("1/6", NULL, &b, &e), 0, "bind 1/6 even");
	struct buf note = BUF_INIT;
	shard_bind_note(&b, &note);
	is_str(buf_str(&note), "1/6 even", "its note");
	buf_reset(&note);
	shard_bounds_format(&b, &note);
	struct buf lo = BUF_INIT, hi = BUF_INIT;
	bool hl, hh;
	ok(shard_bounds_parse(note.data, note.len, &lo, &hl, &hi, &hh) == 0 && hl && hh &&
	       !strcmp(buf_str(&lo), b.lo) && !strcmp(buf_str(&hi), b.hi),
	   "bounds kept and read back");
	shard_bind_release(&b);
	is_int(shard_bind_open("0/2", NULL, &b, &e), 0, "bind 0/2");
	buf_reset(&note);
	shard_bounds_format(&b, &note);
	ok(shard_bounds_parse(note.data, note.len, &lo, &hl, &hi, &hh) == 0 && !hl && hh,
	   "shard 0: no low bound");
	ok(shard_bounds_parse("x\n-\n", 4, &lo, &hl, &hi, &hh) == -EPROTO &&
	       shard_bounds_parse("-\n", 2, &lo, &hl, &hi, &hh) == -EPROTO,
	   "bad bounds refused");
	buf_release(&lo);
	buf_release(&hi);
	buf_release(&note);
	shard_bind_release(&b);
	shard_plan_free(p);
}

/* ---- the listing sample ---- */

/* A listing of n keys "k%09u" in pages of `page` keys (the last of every
 * page but the last flagged), into s. */
static void feed(struct keysample *s, uint64_t from, uint64_t n, uint64_t page, uint64_t total)
{
	char k[32];
	for (uint64_t i = from; i < from + n; i++) {
		int l = snprintf(k, sizeof(k), "k%09llu", (unsigned long long)i);
		keysample_add(s, k, (size_t)l, (i + 1) % page == 0 && i + 1 < total);
	}
}

static unsigned cut_list(const struct keysample *s, unsigned n, bool page_only, char out[][32])
{
	struct buf b = BUF_INIT;
	unsigned got = keysample_cuts(s, n, page_only, &b);
	size_t off = 0;
	for (unsigned i = 0; i < got; i++) {
		str_copy_fit(out[i], b.data + off, 32);
		off += strlen(b.data + off) + 1;
	}
	buf_release(&b);
	return got;
}

static void test_sample_bounded(void)
{
	/* a million keys: the sample (what a rescan's splits read) stays bounded */
	struct keysample *s = keysample_new();
	feed(s, 0, 1000000, 1000, 1000000);
	ok(keysample_total(s) == 1000000 && keysample_pages(s) == 999, "1e6 keys, 999 page ends");
	ok(keysample_entries(s) <= 2 * KEYSAMPLE_CAP, "the sample holds %zu entries (<= %d)",
	   keysample_entries(s), 2 * KEYSAMPLE_CAP);
	struct buf enc = BUF_INIT;
	keysample_encode(s, &enc);
	ok(enc.len < 2 * KEYSAMPLE_CAP * 40, "its record is %zu bytes, bounded by the cap",
	   enc.len);
	struct keysample *d = NULL;
	is_int(keysample_decode(enc.data, enc.len, &d), 0, "decoded");
	char cuts[8][32];
	unsigned got = cut_list(d, 8, true, cuts);
	is_int(got, 7, "7 splits for 8 ranges from the decoded sample alone");
	int aligned = 0;
	for (unsigned i = 0; i < got; i++) {
		unsigned long v = strtoul(cuts[i] + 1, NULL, 10);
		aligned += (v + 1) % 1000 == 0 && v + 1 >= 125000 * (i + 1) - 1000 &&
			   v + 1 <= 125000 * (i + 1) + 1000;
	}
	is_int(aligned, 7, "each split ends a page, within a page of an even split");
	/* three times the keys: the same bound, the same work for the splits */
	struct keysample *big = keysample_new();
	feed(big, 0, 3000000, 1000, 3000000);
	struct buf enc2 = BUF_INIT;
	keysample_encode(big, &enc2);
	ok(keysample_entries(big) <= 2 * KEYSAMPLE_CAP && enc2.len <= enc.len + 64,
	   "3e6 keys: %zu entries, %zu bytes (as for 1e6)", keysample_entries(big), enc2.len);
	buf_release(&enc2);
	keysample_free(big);
	struct keysample *bad = NULL;
	ok(keysample_decode(enc.data, enc.len - 1, &bad) == -EPROTO && !bad,
	   "a cut record is refused");
	ok(keysample_decode("DKS2", 4, &bad) == -EPROTO && !bad, "another format is refused");
	buf_release(&enc);
	keysample_free(d);
	keysample_free(s);
}

static void test_sample_pages(void)
{
	/* radosgw-like pages of uneven size: the cuts are the pages' own ends */
	struct keysample *s = keysample_new();
	char k[32];
	uint64_t pos = 0;
	static const unsigned sizes[] = {1000, 992, 1000, 1000, 997, 1000, 1000, 1000, 8};
	uint64_t ends[ARRAY_SIZE(sizes)];
	for (size_t p = 0; p < ARRAY_SIZE(sizes); p++) {
		for (unsigned i = 0; i < sizes[p]; i++, pos++) {
			int l = snprintf(k, sizeof(k), "k%09llu", (unsigned long long)pos);
			keysample_add(s, k, (size_t)l,
				      i + 1 == sizes[p] && p + 1 < ARRAY_SIZE(sizes));
		}
		ends[p] = pos - 1;
	}
	char cuts[4][32];
	unsigned got = cut_list(s, 4, true, cuts);
	int on_ends = 0;
	for (unsigned i = 0; i < got; i++) {
		unsigned long v = strtoul(cuts[i] + 1, NULL, 10);
		for (size_t p = 0; p + 1 < ARRAY_SIZE(sizes); p++)
			on_ends += v == ends[p];
	}
	ok(got == 3 && on_ends == 3, "3 cuts, each the end of one of the source's pages");
	ok(got == 3 && strcmp(cuts[0], cuts[1]) < 0 && strcmp(cuts[1], cuts[2]) < 0,
	   "strictly increasing");
	/* two ranges' samples appended: positions follow on */
	struct keysample *a = keysample_new(), *b = keysample_new();
	feed(a, 0, 4000, 1000, 8000);
	feed(b, 4000, 4000, 1000, 8000);
	keysample_append(a, b);
	ok(keysample_total(a) == 8000 && keysample_pages(a) == 7, "appended: 8000 keys, 7 ends");
	got = cut_list(a, 2, true, cuts);
	is_str(got ? cuts[0] : "", "k000003999", "the middle split of the appended sample");
	keysample_free(a);
	keysample_free(b);
	/* few keys: the fine grid; keys with NUL or empty never chosen */
	struct keysample *f = keysample_new();
	keysample_add(f, "", 0, false);
	keysample_add(f, "a\0b", 3, false);
	keysample_add(f, "b", 1, false);
	keysample_add(f, "c", 1, false);
	keysample_add(f, "d", 1, false);
	got = cut_list(f, 3, false, cuts);
	ok(got == 2 && !strcmp(cuts[0], "b") && !strcmp(cuts[1], "c"),
	   "5 keys in 3 ranges: cuts b, c (got %u)", got);
	ok(cut_list(f, 3, true, cuts) == 0, "no page ends: no page cuts");
	got = cut_list(f, 10, false, cuts);
	is_int(got, 3, "10 ranges of 3 usable keys: 3 cuts");
	keysample_free(f);
	keysample_free(s);
}

int main(void)
{
	test_spec();
	test_even();
	test_cover();
	test_plan_file();
	test_sample_bounded();
	test_sample_pages();
	return tap_done();
}
